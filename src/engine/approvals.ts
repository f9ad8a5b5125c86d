import type { EntityManager } from 'typeorm';
import { UserEntity, type App, type Pipeline, type Stage } from '../db/entities.ts';
import { Conflict, FlowError, InvalidInput, NotFound } from '../errors.ts';
import { log } from '../log.ts';
import { until } from '../format.ts';
import { REQUIRED, SYSTEM, type Actor } from './access.ts';
import type { Access } from './access-control.ts';
import type { EngineContext } from './context.ts';
import type { Force } from './deploy-locks.ts';
import { isCount } from './input.ts';
import { parseStage } from './stages.ts';
import { subjectKey } from './subjects.ts';
import type { Releases } from './releases.ts';
import type { ApprovalRuleView, ApprovalView, OperationDetails, OperationView } from './views.ts';

/** How long a request waits for its approvals (FLOW_APPROVAL_TTL). */
export const DEFAULT_APPROVAL_TTL_MS = 4 * 3_600_000;

/** The stages whose releases a person ships by hand; review apps come and go with pull requests. */
const GATED_STAGES: Stage[] = ['development', 'staging', 'production'];

/** What an approved request runs, pinned: the commit a deploy builds, the release a promotion copies, the version a rollback goes to. */
export type PinnedRequest =
  | { kind: 'deploy'; sha: string; stage: Stage; app?: string }
  | { kind: 'promote'; fromApp: string; version: number; toApps: string[]; note?: string }
  | { kind: 'rollback'; app: string; version: number; again?: boolean };

/** An operation as asked for, before it needs approving. */
export interface Asked {
  request: PinnedRequest;
  stage: Stage;
  description: string;
  targets: App[];
  details: OperationDetails;
  cause?: string | null;
}

/** How an approved request runs: the operation it was, as its requester (set once the releases exist). */
export type Ship = (requester: Actor, pipeline: Pipeline, request: PinnedRequest, approved: number) => Promise<OperationView>;

interface RequestRow {
  id: number;
  pipeline_id: number;
  pipeline: string;
  stage: Stage;
  kind: PinnedRequest['kind'];
  requester_id: number;
  requester: string | null;
  /** The requester's chat account (`slack:<team>:<user>`), for a mention. */
  requester_external_id: string | null;
  requester_admin: boolean;
  via: Actor['via'];
  description: string;
  targets: string[];
  request: PinnedRequest & { by?: string };
  details: OperationDetails;
  needed: number;
  status: ApprovalView['status'];
  operation_id: number | null;
  decided_by: string | null;
  reason: string | null;
  cause: string | null;
  created_at: Date;
  expires_at: Date;
}

/** One approval of a request, as read back. */
export interface Approver {
  name: string;
  via: string;
  created_at: Date;
  external_id: string | null;
}

const SELECT = `SELECT r.*, p.name AS pipeline, u.name AS requester, u.external_id AS requester_external_id FROM approval_requests r
  JOIN pipelines p ON p.id = r.pipeline_id LEFT JOIN users u ON u.id = r.requester_id`;

/** The first key of the advisory locks that serialize a pipeline's requests (the second is the pipeline id). */
const REQUESTS_NAMESPACE = 0xa99;

const requesterName = (row: RequestRow) => row.requester ?? row.request.by ?? 'flowops';

/**
 * The gate in front of deploys, promotions and rollbacks: where a stage needs
 * approvals, the operation becomes a request (pinned to what it ships) instead
 * of running, and runs once approved. Releases asks here before it creates an
 * operation; Approvals (below) decides requests.
 */
export class ApprovalGate {
  constructor(
    private readonly ctx: EngineContext,
    private readonly ttlMs: number,
  ) {}

  /** How many approvals shipping to `targets` needs now (0: none), by the rules of their stages. */
  async needed(pipeline: Pipeline, targets: App[]): Promise<number> {
    const stages = [...new Set(targets.map((t) => t.stage))];
    const rows: { approvers: number }[] = await this.ctx.db.query(
      'SELECT approvers FROM approval_rules WHERE pipeline_id = $1 AND stage = ANY($2) ORDER BY approvers DESC LIMIT 1',
      [pipeline.id, stages],
    );
    return rows[0]?.approvers ?? 0;
  }

  /**
   * Files `asked` as a request that needs `needed` approvals: one event (its
   * message in the channel and the feeds). Refused while another request for
   * any of its apps waits: a newer release never silently replaces one.
   */
  async file(actor: Actor, pipeline: Pipeline, asked: Asked, needed: number): Promise<ApprovalView> {
    const names = asked.targets.map((t) => t.name);
    const id = await this.ctx.transaction(async (m) => {
      await m.query('SELECT pg_advisory_xact_lock($1, $2)', [REQUESTS_NAMESPACE, pipeline.id]);
      const waiting: RequestRow[] = await m.query(
        `${SELECT} WHERE r.pipeline_id = $1 AND r.status IN ('pending', 'approved') AND r.expires_at > now() AND r.targets && $2 ORDER BY r.id LIMIT 1`,
        [pipeline.id, names],
      );
      const other = waiting[0];
      if (other)
        throw new Conflict(
          `request ${other.id} (${requesterName(other)}: ${other.description}) already waits for approval there; approve or reject it first (\`approvals ${pipeline.name}\`), then ask again`,
        );
      const [row] = (await m.query(
        `INSERT INTO approval_requests (pipeline_id, stage, kind, requester_id, requester_admin, via, description, targets, request, details, needed, cause, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`,
        [
          pipeline.id,
          asked.stage,
          asked.request.kind,
          actor.id,
          actor.admin,
          actor.via,
          asked.description,
          names,
          JSON.stringify({ ...asked.request, by: actor.name }),
          JSON.stringify(asked.details),
          needed,
          asked.cause ?? null,
          new Date(Date.now() + this.ttlMs),
        ],
      )) as [{ id: number }];
      await this.ctx.emit(m, {
        type: 'approval.requested',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} asks to ${asked.description.charAt(0).toLowerCase()}${asked.description.slice(1)}: it needs ${needed} approval${needed === 1 ? '' : 's'} (request ${row.id})`,
        data: { request: row.id, action: asked.request.kind, stage: asked.stage, needed, apps: names, description: asked.description },
      });
      return row.id;
    });
    return (await this.view(id))!;
  }

  /**
   * In the transaction that creates the operation of approved request `id`:
   * marks it shipped as that operation, once (a second run finds it shipped
   * and is refused).
   */
  async shipped(m: EntityManager, id: number, operationId: number): Promise<void> {
    const [, affected] = (await m.query(
      "UPDATE approval_requests SET status = 'shipped', operation_id = $2, updated_at = now() WHERE id = $1 AND status = 'approved'",
      [id, operationId],
    )) as [unknown, number];
    if (!affected) throw new Conflict(`request ${id} is not approved (or has shipped already)`);
  }

  /** A force past a stage's approvals (manage, with a reason), announced in the feeds and the audit trail. */
  async bypassed(m: EntityManager, actor: Actor, pipeline: Pipeline, description: string, force: Force): Promise<void> {
    await this.ctx.emit(m, {
      type: 'approval.bypassed',
      pipeline: pipeline.name,
      actor: actor.name,
      via: actor.via,
      message: `${actor.name} shipped without approval with --force (${description}): ${force.reason}`,
      data: { description, reason: force.reason },
    });
  }

  /** The cause an approved request's operation carries: its messages are the request's. */
  causeOf(id: number): string {
    return subjectKey({ kind: 'approval', request: id });
  }

  async row(id: number, m: EntityManager | null = null): Promise<RequestRow | null> {
    const rows: RequestRow[] = await (m ?? this.ctx.db).query(`${SELECT} WHERE r.id = $1`, [id]);
    return rows[0] ?? null;
  }

  async view(id: number): Promise<ApprovalView | null> {
    const row = await this.row(id);
    return row && this.toView(row);
  }

  /** Who approved request `id`, in order, with their chat account (for mentions). */
  async approvers(id: number): Promise<Approver[]> {
    return this.ctx.db.query(
      `SELECT coalesce(u.name, a.name) AS name, a.via, a.created_at, u.external_id FROM approvals a LEFT JOIN users u ON u.id = a.user_id
        WHERE a.request_id = $1 ORDER BY a.created_at, a.name`,
      [id],
    );
  }

  /**
   * Requests still waiting for approvals at `now` that were asked for by
   * `before`, each with the chat accounts of the people who may approve it:
   * deploy or more on its pipeline by a grant, or admins; not its requester,
   * nor those who approved it already. (`access:default` gives deploy to a whole
   * workspace: those people are not told one by one.)
   */
  async waitingSince(before: Date, now: Date): Promise<{ request: ApprovalView; approverAccounts: string[] }[]> {
    const rows: RequestRow[] = await this.ctx.db.query(
      `${SELECT} WHERE r.status = 'pending' AND r.expires_at > $2 AND r.created_at <= $1 ORDER BY r.id`,
      [before, now],
    );
    const waiting: { request: ApprovalView; approverAccounts: string[] }[] = [];
    for (const row of rows) {
      const people: { external_id: string }[] = await this.ctx.db.query(
        `SELECT u.external_id FROM users u
          WHERE u.external_id IS NOT NULL AND u.id <> $2
            AND (u.admin OR EXISTS (SELECT 1 FROM grants g WHERE g.user_id = u.id AND g.pipeline_id = $1 AND g.permission IN ('deploy', 'operate', 'manage')))
            AND NOT EXISTS (SELECT 1 FROM approvals a WHERE a.request_id = $3 AND a.user_id = u.id)
          ORDER BY u.name LIMIT 20`,
        [row.pipeline_id, row.requester_id, row.id],
      );
      waiting.push({ request: await this.toView(row), approverAccounts: people.map((p) => p.external_id) });
    }
    return waiting;
  }

  /** The request as the fronts see it; `approvals` when the caller has read them already. */
  async toView(row: RequestRow, approvals?: Approver[]): Promise<ApprovalView> {
    approvals ??= await this.approvers(row.id);
    // A pending request past its time is expired, even before the sweep says so.
    const expired = row.status === 'pending' && new Date(row.expires_at).getTime() <= Date.now();
    return {
      kind: 'approval',
      id: row.id,
      pipeline: row.pipeline,
      stage: row.stage,
      action: row.kind,
      description: row.description,
      targets: row.targets,
      requester: requesterName(row),
      status: expired ? 'expired' : row.status,
      needed: row.needed,
      approvals: approvals.map((a) => ({ user: a.name, at: new Date(a.created_at).toISOString() })),
      decidedBy: expired ? 'flowops' : row.decided_by,
      reason: row.reason,
      operation: row.operation_id,
      createdAt: new Date(row.created_at).toISOString(),
      expiresAt: new Date(row.expires_at).toISOString(),
    };
  }
}

/**
 * The two-person rule: `approvals:require` on a stage, then `approve` and
 * `reject` on the requests its deploys, promotions and rollbacks become. An
 * approver has deploy on the pipeline and is not the requester; with enough
 * distinct approvals the request runs as its requester, shipping exactly what
 * was asked for.
 */
export class Approvals {
  private ship: Ship | null = null;

  constructor(
    private readonly ctx: EngineContext,
    private readonly authz: Access,
    private readonly gate: ApprovalGate,
  ) {}

  /** Wires how an approved request runs (Releases, built after this service). */
  shipWith(ship: Ship): void {
    this.ship = ship;
  }

  async requireApprovals(actor: Actor, pipelineName: string, stageName: string, approvers = 1): Promise<ApprovalRuleView> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.manageApps, `approvals:require ${pipelineName}`);
    const stage = parseStage(stageName);
    if (!GATED_STAGES.includes(stage))
      throw new InvalidInput(`${stage} cannot need approvals: review apps follow their pull requests; choose ${GATED_STAGES.join(', ')}`);
    if (!Number.isInteger(approvers) || approvers < 1 || approvers > 5)
      throw new InvalidInput('--approvers is how many people must approve: 1 to 5');
    await this.ctx.transaction(async (m) => {
      await m.query(
        `INSERT INTO approval_rules (pipeline_id, stage, approvers, created_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (pipeline_id, stage) DO UPDATE SET approvers = EXCLUDED.approvers, created_by = EXCLUDED.created_by, created_at = now()`,
        [pipeline.id, stage, approvers, actor.name],
      );
      await this.ctx.emit(m, {
        type: 'approvals.required',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} made ${pipeline.name}:${stage} need ${approvers} approval${approvers === 1 ? '' : 's'} for every deploy, promotion and rollback`,
        data: { stage, approvers },
      });
    });
    return { pipeline: pipeline.name, stage, approvers };
  }

  /** Ends a stage's rule (manage). Requests already waiting keep waiting, to be approved, rejected or to expire. */
  async disableApprovals(actor: Actor, pipelineName: string, stageName: string): Promise<ApprovalRuleView> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.manageApps, `approvals:disable ${pipelineName}`);
    const stage = parseStage(stageName);
    await this.ctx.transaction(async (m) => {
      const [, affected] = (await m.query('DELETE FROM approval_rules WHERE pipeline_id = $1 AND stage = $2 RETURNING stage', [
        pipeline.id,
        stage,
      ])) as [unknown, number];
      if (!affected)
        throw new NotFound(`${pipeline.name}:${stage} does not need approvals; \`approvals ${pipeline.name}\` lists its rules`);
      await this.ctx.emit(m, {
        type: 'approvals.disabled',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} stopped requiring approvals on ${pipeline.name}:${stage}`,
        data: { stage },
      });
    });
    return { pipeline: pipeline.name, stage, approvers: 0 };
  }

  /** The rules and the waiting requests of the pipelines the actor can see (or of one). */
  async approvals(actor: Actor, pipelineName?: string): Promise<{ rules: ApprovalRuleView[]; requests: ApprovalView[] }> {
    const ids = pipelineName
      ? [(await this.authz.authorize(actor, pipelineName, REQUIRED.read, `approvals ${pipelineName}`)).id]
      : await this.authz.visiblePipelineIds(actor);
    if (!ids.length) return { rules: [], requests: [] };
    const rules: { pipeline: string; stage: Stage; approvers: number }[] = await this.ctx.db.query(
      `SELECT p.name AS pipeline, r.stage, r.approvers FROM approval_rules r JOIN pipelines p ON p.id = r.pipeline_id
        WHERE r.pipeline_id = ANY($1) ORDER BY p.name, r.stage`,
      [ids],
    );
    const rows: RequestRow[] = await this.ctx.db.query(
      `${SELECT} WHERE r.pipeline_id = ANY($1) AND r.status IN ('pending', 'approved') AND r.expires_at > now() ORDER BY r.id`,
      [ids],
    );
    return { rules, requests: await Promise.all(rows.map((r) => this.gate.toView(r))) };
  }

  /** The request, if the actor can see its pipeline (the CLI polls it while it waits). */
  async approval(actor: Actor, id: number): Promise<ApprovalView> {
    const { row } = await this.visible(actor, id, REQUIRED.read, 'approvals');
    return this.gate.toView(row);
  }

  /**
   * Approves request `id` (deploy on its pipeline, not its requester). With
   * its number of distinct approvals, it runs at once as its requester; if it
   * cannot start (the requester lost deploy, a lock, an app gone) it ends
   * failed, saying why.
   */
  async approve(actor: Actor, id: number): Promise<ApprovalView> {
    const { row, pipeline } = await this.visible(actor, id, REQUIRED.deploy, `approve ${id}`);
    if (row.requester_id === actor.id && actor.id !== SYSTEM.id) {
      await this.ctx.refused(actor, row.pipeline, 'approve', `request ${id}`, 'their own request (the two-person rule)');
      throw new InvalidInput(
        `you asked for request ${id}; someone else with deploy on ${row.pipeline} approves it (the two-person rule). To drop it: \`reject ${id} --reason "…"\``,
      );
    }
    const complete = await this.ctx.transaction(async (m) => {
      const fresh = await this.open(m, id);
      const added: unknown[] = await m.query(
        'INSERT INTO approvals (request_id, user_id, name, via) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING user_id',
        [id, actor.id, actor.name, actor.via],
      );
      if (!added.length) throw new Conflict(`you have approved request ${id} already; it needs ${fresh.needed} distinct approvals`);
      const [{ count }] = (await m.query('SELECT count(*)::int AS count FROM approvals WHERE request_id = $1', [id])) as [
        { count: number },
      ];
      const done = count >= fresh.needed;
      if (done) await m.query("UPDATE approval_requests SET status = 'approved', updated_at = now() WHERE id = $1", [id]);
      await this.ctx.emit(m, {
        type: 'approval.approved',
        pipeline: row.pipeline,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} approved request ${id} (${row.description})${done ? '' : `: ${count} of ${fresh.needed}`}`,
        data: { request: id, count, needed: fresh.needed },
      });
      return done;
    });
    if (complete) await this.run(row, pipeline);
    return (await this.gate.view(id))!;
  }

  /** Rejects request `id` with a reason (deploy on its pipeline); its requester may withdraw it the same way. */
  async reject(actor: Actor, id: number, reason: string | undefined): Promise<ApprovalView> {
    const mine = (r: RequestRow) => r.requester_id === actor.id && actor.id !== SYSTEM.id;
    // Its requester withdraws it with view; anyone else rejects it with deploy.
    const { row } = await this.visible(actor, id, (r) => (mine(r) ? REQUIRED.read : REQUIRED.deploy), `reject ${id}`);
    const withdrawing = mine(row);
    const why = reason?.trim();
    if (!why) throw new InvalidInput(`say why: \`reject ${id} --reason "…"\` (the requester and the channel read it)`);
    if (why.length > 500) throw new InvalidInput('a reason is at most 500 characters');
    await this.ctx.transaction(async (m) => {
      await this.open(m, id);
      const status = withdrawing ? 'withdrawn' : 'rejected';
      await m.query('UPDATE approval_requests SET status = $2, decided_by = $3, reason = $4, updated_at = now() WHERE id = $1', [
        id,
        status,
        actor.name,
        why,
      ]);
      await this.ctx.emit(m, {
        type: `approval.${status}`,
        pipeline: row.pipeline,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} ${withdrawing ? 'withdrew' : 'rejected'} request ${id} (${row.description}): ${why}`,
        data: { request: id, reason: why },
      });
    });
    return (await this.gate.view(id))!;
  }

  /**
   * Ends requests whose time is up, each with an `approval.expired` event; and
   * requests approved but never started (flowops stopped in between), as failed.
   */
  async expireApprovals(): Promise<void> {
    try {
      await this.ctx.transaction(async (m) => {
        const [expired] = (await m.query(
          `UPDATE approval_requests SET status = 'expired', decided_by = 'flowops', updated_at = now()
            WHERE status = 'pending' AND expires_at <= now() RETURNING id`,
        )) as [{ id: number }[], number];
        const [stuck] = (await m.query(
          `UPDATE approval_requests SET status = 'failed', decided_by = 'flowops', updated_at = now(),
                  reason = 'flowops stopped after it was approved and before it started; ask again'
            WHERE status = 'approved' AND operation_id IS NULL AND updated_at < now() - interval '5 minutes' RETURNING id`,
        )) as [{ id: number }[], number];
        for (const { id } of [...expired, ...stuck]) {
          const row = (await this.gate.row(id, m))!;
          const lapsed = row.status === 'expired';
          await this.ctx.emit(m, {
            type: lapsed ? 'approval.expired' : 'approval.failed',
            pipeline: row.pipeline,
            via: 'system',
            message: lapsed
              ? `Request ${id} (${requesterName(row)}: ${row.description}) expired without its approvals at ${until(new Date(row.expires_at).toISOString())}`
              : `Request ${id} (${row.description}) did not start: ${row.reason}`,
            data: { request: id },
          });
        }
      });
    } catch (err) {
      log.warn({ err }, 'expired approval requests not swept');
    }
  }

  /** Runs an approved request as its requester; a refusal to start ends it failed, with the reason. */
  private async run(row: RequestRow, pipeline: Pipeline): Promise<void> {
    const user = row.requester_id ? await this.ctx.db.getRepository(UserEntity).findOneBy({ id: row.requester_id }) : null;
    const requester: Actor = user
      ? { id: user.id, name: user.name, admin: user.admin || row.requester_admin, via: row.via }
      : { ...SYSTEM, name: requesterName(row), via: row.via };
    try {
      if (!this.ship) throw new Error('approvals cannot ship: no releases wired');
      await this.ship(requester, pipeline, row.request, row.id);
    } catch (err) {
      const why = err instanceof Error ? err.message.split('\n')[0]!.slice(0, 500) : String(err);
      if (!(err instanceof FlowError)) log.warn({ err, request: row.id }, 'approved request did not start');
      await this.ctx.transaction(async (m) => {
        const [, affected] = (await m.query(
          "UPDATE approval_requests SET status = 'failed', decided_by = 'flowops', reason = $2, updated_at = now() WHERE id = $1 AND status = 'approved'",
          [row.id, why],
        )) as [unknown, number];
        if (!affected) return;
        await this.ctx.emit(m, {
          type: 'approval.failed',
          pipeline: row.pipeline,
          via: 'system',
          message: `Request ${row.id} (${row.description}) was approved but did not start: ${why}`,
          data: { request: row.id, reason: why },
        });
      });
    }
  }

  /** The request, locked in `m`, if it still waits; otherwise a refusal saying how it ended. */
  private async open(m: EntityManager, id: number): Promise<RequestRow> {
    await m.query('SELECT id FROM approval_requests WHERE id = $1 FOR UPDATE', [id]);
    const row = (await this.gate.row(id, m))!;
    if (row.status === 'pending' && new Date(row.expires_at).getTime() <= Date.now())
      throw new Conflict(`request ${id} expired at ${until(new Date(row.expires_at).toISOString())}; ask again`);
    if (row.status !== 'pending') {
      const how =
        row.status === 'shipped' || row.status === 'approved'
          ? 'was approved already'
          : row.status === 'failed'
            ? `was approved but did not start (${row.reason ?? 'no reason recorded'})`
            : `was ${row.status}${row.decided_by && row.decided_by !== 'flowops' ? ` by ${row.decided_by}` : ''}`;
      throw new Conflict(`request ${id} ${how}; nothing changed`);
    }
    return row;
  }

  /**
   * Request `id` and its pipeline, if the actor holds what `needed` says for
   * it there; "not found" for a pipeline they cannot see.
   */
  private async visible(
    actor: Actor,
    id: number,
    needed: 'view' | 'deploy' | ((row: RequestRow) => 'view' | 'deploy'),
    command: string,
  ): Promise<{ row: RequestRow; pipeline: Pipeline }> {
    const missing = `no approval request ${String(id).slice(0, 30)}; \`approvals\` lists the ones waiting`;
    const row = isCount(id) ? await this.gate.row(id) : null;
    if (!row) throw new NotFound(missing);
    try {
      const pipeline = await this.authz.authorize(actor, row.pipeline, typeof needed === 'function' ? needed(row) : needed, command);
      return { row, pipeline };
    } catch (err) {
      throw err instanceof NotFound ? new NotFound(missing) : err;
    }
  }
}

/** How an approved request runs through Releases: the operation it asked for, pinned, as its requester. */
export function shipThrough(releases: Releases): Ship {
  return async (requester, pipeline, request, approved) => {
    const result =
      request.kind === 'deploy'
        ? await releases.deploy(requester, { pipeline: pipeline.name, ref: request.sha, stage: request.stage, app: request.app, approved })
        : request.kind === 'promote'
          ? await releases.promote(requester, {
              pipeline: pipeline.name,
              fromApp: request.fromApp,
              toApps: request.toApps,
              version: request.version,
              note: request.note,
              approved,
            })
          : await releases.rollback(requester, request.app, request.version, { again: request.again, approved });
    if (result.kind === 'approval') throw new Error(`request ${approved} was filed again instead of shipping`);
    return result;
  };
}
