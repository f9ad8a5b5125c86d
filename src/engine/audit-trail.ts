import { InvalidInput } from '../errors.ts';
import { parseSince } from './since.ts';
import { log } from '../log.ts';
import { REQUIRED, type Actor } from './access.ts';
import type { Access } from './access-control.ts';
import type { EngineContext } from './context.ts';
import type { AuditRecordView, AuditView } from './views.ts';

/** How far back `audit` looks without `--since`. */
export const DEFAULT_SINCE = '7d';
/** The most records one answer holds: the newest, with how many earlier ones matched too. */
export const MAX_AUDIT_RECORDS = 500;
/** FLOW_AUDIT_RETENTION_DAYS' default: a year. */
export const DEFAULT_AUDIT_RETENTION_DAYS = 365;

interface RecordRow {
  id: string;
  created_at: Date;
  pipeline: string;
  actor: string;
  via: string;
  action: string;
  target: string;
  outcome: AuditRecordView['outcome'];
  detail: string | null;
  subject: string | null;
  repeats: number;
  last_at: Date | null;
  total: string;
}

function recordView(row: RecordRow): AuditRecordView {
  const [kind, id] = (row.subject ?? '').split(':');
  return {
    id: String(row.id),
    at: new Date(row.created_at).toISOString(),
    pipeline: row.pipeline,
    actor: row.actor,
    via: row.via,
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    detail: row.detail,
    repeats: Number(row.repeats),
    lastAt: row.last_at ? new Date(row.last_at).toISOString() : null,
    operation: kind === 'op' ? Number(id) : null,
    request: kind === 'approval' ? Number(id) : null,
  };
}

/**
 * The audit trail: who did what to a pipeline, when, from which front, and how
 * it ended (records written by EngineContext with each change, and refusals);
 * readable by the pipeline's managers; records older than the retention go.
 */
export class AuditTrail {
  constructor(
    private readonly ctx: EngineContext,
    private readonly authz: Access,
    private readonly retentionDays: number,
  ) {}

  /** A pipeline's records since `since` (default 7d), of one person if `user` is given: manage. */
  async audit(actor: Actor, pipelineName: string, options: { since?: string; user?: string } = {}): Promise<AuditView> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.audit, `audit ${pipelineName}`);
    const since = parseSince(options.since ?? DEFAULT_SINCE);
    const user = options.user ?? null;
    if (user !== null) await this.assertKnown(pipeline.name, user);
    const rows: RecordRow[] = await this.ctx.db.query(
      `SELECT id, created_at, pipeline, actor, via, action, target, outcome, detail, subject, repeats, last_at, count(*) OVER () AS total
         FROM audit_records
        WHERE pipeline = $1 AND created_at >= $2 AND created_at >= $5 AND ($3::text IS NULL OR actor = $3)
        ORDER BY id DESC LIMIT $4`,
      // From the pipeline's own creation on: a pipeline made again under a destroyed one's name does not inherit its trail.
      [pipeline.name, since, user, MAX_AUDIT_RECORDS, pipeline.createdAt],
    );
    const total = rows.length ? Number(rows[0]!.total) : 0;
    return {
      pipeline: pipeline.name,
      since: since.toISOString(),
      user,
      records: rows.reverse().map(recordView),
      omitted: total - rows.length,
    };
  }

  /** `--user` names a flowops user, or someone the pipeline's trail knows (a GitHub pusher, flowops itself). */
  private async assertKnown(pipeline: string, user: string): Promise<void> {
    const known: unknown[] = await this.ctx.db.query(
      'SELECT 1 FROM users WHERE name = $1 UNION ALL (SELECT 1 FROM audit_records WHERE pipeline = $2 AND actor = $1 LIMIT 1) LIMIT 1',
      [user, pipeline],
    );
    if (!known.length)
      throw new InvalidInput(
        `no user "${user.slice(0, 60)}" here: --user takes a flowops user name (in Slack, a mention), or a GitHub login the trail names`,
      );
  }

  /** Deletes the records older than the retention (FLOW_AUDIT_RETENTION_DAYS); how many went. */
  async sweepAuditTrail(): Promise<number> {
    try {
      const [, deleted] = (await this.ctx.db.query(`DELETE FROM audit_records WHERE created_at < now() - make_interval(days => $1::int)`, [
        this.retentionDays,
      ])) as [unknown, number];
      if (deleted) log.info({ deleted, retentionDays: this.retentionDays }, 'audit records past their retention deleted');
      return deleted;
    } catch (err) {
      log.warn({ err }, 'audit records past their retention not deleted');
      return 0;
    }
  }
}
