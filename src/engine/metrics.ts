import type { MetricsView } from '../api/types.ts';
import type { Pipeline } from '../db/entities.ts';
import { InvalidInput } from '../errors.ts';
import type { Actor } from './access.ts';
import type { Access } from './access-control.ts';
import { rangeKey, type CommitLog, type CommitLogs } from './commit-logs.ts';
import type { EngineContext } from './context.ts';
import { deliveryMetrics, deployedRanges, deploymentKey, type ProductionRelease } from './delivery-metrics.ts';

/** The longest window `metrics --days` takes. */
export const MAX_METRICS_DAYS = 365;

interface ReleaseRow {
  app: string;
  version: number;
  kind: ProductionRelease['kind'] | null;
  description: string;
  status: 'succeeded' | 'failed';
  commit: string | null;
  at: Date;
}

/** A release without an operation (none is made that way today): its kind from its description, as Heroku words them. */
function kindOf(row: ReleaseRow): ProductionRelease['kind'] {
  if (row.kind) return row.kind;
  if (row.description.startsWith('Rollback')) return 'rollback';
  if (row.description.startsWith('Promote')) return 'promote';
  if (/^(Set|Remove) /.test(row.description)) return 'config';
  return 'deploy';
}

/**
 * The four DORA keys of a pipeline's production stage (`metrics`), from what
 * flowops recorded: its releases and their operations, and the commit logs it
 * keeps; a range not kept yet is asked of the source once and kept.
 */
export class Metrics {
  constructor(
    private readonly ctx: EngineContext,
    private readonly authz: Access,
    private readonly commitLogs: CommitLogs,
  ) {}

  async metrics(actor: Actor, pipelineName: string, days = 30, now = Date.now()): Promise<MetricsView> {
    if (!Number.isInteger(days) || days < 1 || days > MAX_METRICS_DAYS)
      throw new InvalidInput(`--days is a whole number of days from 1 to ${MAX_METRICS_DAYS}, like --days 30`);
    const pipeline = await this.authz.authorize(actor, pipelineName, 'view', 'metrics');
    return this.metricsOf(pipeline, days, now);
  }

  /** The metrics of a pipeline already authorized, or of flowops' own (the weekly digest to the feeds that asked for it). */
  async metricsOf(pipeline: Pipeline, days: number, now: number): Promise<MetricsView> {
    const since = new Date(now - days * 86_400_000);

    // The production apps' releases that ended in the window, and each app's last good one before it (what it ran then).
    const rows: (ReleaseRow & { has_staging: boolean })[] = await this.ctx.db.query(
      `SELECT a.name AS app, r.version, o.kind, r.description, r.status, r.commit, r.updated_at AS at,
              EXISTS (SELECT 1 FROM apps s WHERE s.pipeline_id = $1 AND s.stage = 'staging') AS has_staging
         FROM releases r
         JOIN apps a ON a.id = r.app_id
         LEFT JOIN operations o ON o.id = r.operation_id
        WHERE a.pipeline_id = $1 AND a.stage = 'production' AND r.status <> 'pending' AND r.updated_at <= $3
          AND (r.updated_at >= $2 OR r.id = (SELECT p.id FROM releases p
                                              WHERE p.app_id = a.id AND p.status = 'succeeded' AND p.updated_at < $2
                                              ORDER BY p.version DESC LIMIT 1))`,
      [pipeline.id, since, new Date(now)],
    );
    const releases: ProductionRelease[] = rows.map((r) => ({
      app: r.app,
      version: r.version,
      kind: kindOf(r),
      status: r.status,
      commit: r.commit,
      at: new Date(r.at).getTime(),
    }));
    const hasStaging = rows[0]?.has_staging ?? false;

    const ranges = deployedRanges(releases).filter((r) =>
      releases.some((x) => x.app === r.app && x.version === r.version && x.at >= +since),
    );
    const keyOf = (r: { base: string | null; head: string }) => rangeKey({ pipelineId: pipeline.id, ...r });
    const logs = await this.commitLogs.lookup(ranges.map((r) => ({ pipelineId: pipeline.id, base: r.base, head: r.head })));
    // Ranges not kept yet: asked of the source a few at a time, and kept for next time.
    const missing = ranges.filter((r) => !logs.has(keyOf(r)));
    for (let i = 0; i < missing.length; i += 4) {
      const batch = missing.slice(i, i + 4);
      const answers = await Promise.all(batch.map((r) => this.commitLogs.get(pipeline, r.base, r.head)));
      batch.forEach((r, j) => answers[j] && logs.set(keyOf(r), answers[j]));
    }
    const oldestCommitAt = new Map<string, number>();
    for (const r of ranges) {
      const at = oldestCommitTime(logs.get(keyOf(r)));
      if (at !== null) oldestCommitAt.set(deploymentKey(r.app, r.version), at);
    }
    return deliveryMetrics({ pipeline: pipeline.name, days, now, releases, hasStaging, oldestCommitAt });
  }
}

/** The commit time of the oldest commit a log lists (it lists the newest few of its range); null for none. */
function oldestCommitTime(log: CommitLog | undefined): number | null {
  const times = (log?.commits ?? []).map((c) => Date.parse(c.date)).filter((t) => Number.isFinite(t));
  return times.length ? Math.min(...times) : null;
}
