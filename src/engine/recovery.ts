import os from 'node:os';
import { In, type EntityManager } from 'typeorm';
import {
  AppEntity,
  OperationEntity,
  PipelineEntity,
  ReleaseEntity,
  RunnerEntity,
  SlugEntity,
  TestRunEntity,
  type Operation,
} from '../db/entities.ts';
import { databaseOutage, isConnectionError } from '../db/outage.ts';
import { processAlive } from '../exec.ts';
import { log } from '../log.ts';
import type { ReleaseSpec } from '../platform/platform.ts';
import { releaseSpecOf } from './release-execution.ts';
import type { EngineContext } from './context.ts';
import type { Ci } from './ci.ts';
import type { ReviewApps } from './review-apps.ts';
import type { DeployLocks } from './deploy-locks.ts';
import type { Approvals } from './approvals.ts';
import type { Dynos } from './dynos.ts';
import type { AuditTrail } from './audit-trail.ts';
import type { Nudges } from './nudges.ts';
import { IllegalTransition, transition, transitionAll } from './transitions.ts';
import { OPERATION_TASK } from './operations.ts';
import { operationJobKey } from './operation-work.ts';

/**
 * A runner whose heartbeat is older than this is taken for dead, wherever it
 * ran: with a beat every HEARTBEAT_MS, another process notices a dead one
 * within RUNNER_TIMEOUT_MS + HEARTBEAT_MS (35 s). On the same host a runner
 * whose pid is gone is dead at once.
 */
const RUNNER_TIMEOUT_MS = 30_000;
const HEARTBEAT_MS = 5_000;
/** The advisory lock around checking who else runs and registering (pg_advisory_xact_lock's key: "flow" in ASCII). */
const RUNNERS_LOCK = 0x666c6f77;

/** Another flowops process is alive on this database, and this one may not run beside it (the local platform). */
export class AnotherRunner extends Error {
  constructor(
    readonly hostname: string,
    readonly pid: number,
  ) {
    super(`another flowops (host ${hostname}, pid ${pid}) runs on this database`);
  }
}

/** A runner row with what the database says of its heartbeat. */
interface RunnerRow {
  id: string;
  hostname: string;
  pid: number;
  fresh: boolean;
}

/** This runner among the others: heartbeats, operations interrupted by a dead runner, apps brought back after a restart, sweeps run once per period. */
export class Recovery {
  private heartbeat: NodeJS.Timeout | undefined;
  private staleSweep: NodeJS.Timeout | undefined;
  private lockSweep: NodeJS.Timeout | undefined;
  private nudgeSweep: NodeJS.Timeout | undefined;
  private registered = false;
  /** When this runner's last heartbeat was written (Date.now()); after a longer gap it judges no one dead on its next beat. */
  private lastBeat = 0;

  constructor(
    private readonly ctx: EngineContext,
    private readonly ci: Ci,
    private readonly reviewApps: ReviewApps,
    private readonly locks: DeployLocks,
    private readonly approvals: Approvals,
    private readonly dynos: Dynos,
    private readonly audit: AuditTrail,
    private readonly nudges: Nudges,
    /** FLOW_NUDGE_INTERVAL. */
    private readonly nudgeIntervalMs: number,
  ) {}

  /**
   * Registers this runner among the flowops processes on the database. With
   * `alone` (the local platform: apps run on this machine), another live one
   * refuses it with AnotherRunner, before anything is changed. The check and
   * the registration hold one advisory lock, so two starting at once cannot
   * both pass.
   */
  async register(options: { alone: boolean } = { alone: false }): Promise<void> {
    await this.ctx.db.transaction(async (m) => {
      await m.query('SELECT pg_advisory_xact_lock($1)', [RUNNERS_LOCK]);
      if (options.alone) {
        const other = (await this.runners(m)).find((r) => r.id !== this.ctx.runnerId && !this.isDead(r));
        if (other) throw new AnotherRunner(other.hostname, other.pid);
      }
      await m.query(
        `INSERT INTO runners (id, hostname, pid, heartbeat_at) VALUES ($1, $2, $3, now())
          ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`,
        [this.ctx.runnerId, os.hostname(), process.pid],
      );
    });
    this.registered = true;
    this.lastBeat = Date.now();
  }

  /** Registers this runner (unless `register` did), ends operations whose runner died, and brings every app back to its current release. */
  async start(): Promise<void> {
    if (!this.registered) await this.register();
    await this.interruptOrphans();
    await this.recoverApps();
    // The platform lost its apps (the local runtime died and was started again): tell it again.
    this.ctx.platform.whenRestarted(() => {
      this.recoverApps().catch((err: unknown) => log.error({ err }, 'apps not brought back after the runtime restarted'));
    });
    await this.ctx.queue?.start();
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
    // Hourly: stale review apps go, and audit records past FLOW_AUDIT_RETENTION_DAYS; the first audit sweep at start.
    void this.sweep('audit', 3_600_000, () => this.audit.sweepAuditTrail());
    this.staleSweep = setInterval(() => {
      void this.sweep('review-apps', 3_600_000, () => this.reviewApps.destroyStaleReviewApps());
      void this.sweep('audit', 3_600_000, () => this.audit.sweepAuditTrail());
    }, 3_600_000);
    this.staleSweep.unref();
    // Locks and approval requests end on time: each minute the ones whose time is up end, and the feeds hear of it.
    this.lockSweep = setInterval(() => {
      void this.sweep('locks', 60_000, () => this.locks.expireLocks());
      void this.sweep('approvals', 60_000, () => this.approvals.expireApprovals());
    }, 60_000);
    this.lockSweep.unref();
    // Nudges: what is due goes out once a day per subject (src/engine/nudges.ts), looked for once per interval among the processes.
    this.nudgeSweep = setInterval(() => {
      void this.sweep('nudges', this.nudgeIntervalMs, () => this.nudges.runNudges());
    }, this.nudgeIntervalMs);
    this.nudgeSweep.unref();
    this.dynos.watch();
  }

  async stop(): Promise<void> {
    await this.dynos.unwatch();
    clearInterval(this.heartbeat);
    clearInterval(this.staleSweep);
    clearInterval(this.lockSweep);
    clearInterval(this.nudgeSweep);
    await this.nudges.settled();
    await this.ctx.queue?.stop();
    await this.ctx.jobs.onIdle();
    await this.ctx.db.getRepository(RunnerEntity).delete({ id: this.ctx.runnerId });
  }

  /** Writes this runner's heartbeat (the database's clock, so hosts' clocks need not agree), then looks for dead runners. */
  private async beat(): Promise<void> {
    try {
      const gap = Date.now() - this.lastBeat;
      // Written again if another process took this one for dead (a long pause) and removed it.
      await this.ctx.db.query(
        `INSERT INTO runners (id, hostname, pid, heartbeat_at) VALUES ($1, $2, $3, now())
          ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`,
        [this.ctx.runnerId, os.hostname(), process.pid],
      );
      this.lastBeat = Date.now();
      databaseOutage.answered();
      // Back from an outage (or a pause): the others could not beat either; give them a beat before judging them.
      if (gap > RUNNER_TIMEOUT_MS) return;
      await this.interruptOrphans();
    } catch (err) {
      // A database outage is logged once, not on every beat; the next beat tries again.
      if (isConnectionError(err)) databaseOutage.noticed(err, { where: 'heartbeat' });
      else log.warn({ err }, 'heartbeat failed');
    }
  }

  /**
   * Runs a periodic sweep unless another process (or this one) ran it less
   * than a period ago: claimed by moving `sweeps.ran_at` on in one statement,
   * so replicas run it once per period between them.
   */
  private async sweep(name: string, periodMs: number, work: () => Promise<unknown>): Promise<void> {
    try {
      // 90% of the period: timers drift; a sweep a little early beats one skipped for a period.
      const claimed: unknown[] = await this.ctx.db.query(
        `INSERT INTO sweeps (name, ran_at) VALUES ($1, now())
          ON CONFLICT (name) DO UPDATE SET ran_at = now() WHERE sweeps.ran_at <= now() - make_interval(secs => $2)
          RETURNING name`,
        [name, (periodMs * 0.9) / 1000],
      );
      if (claimed.length) await work();
    } catch (err) {
      log.warn({ err, sweep: name }, 'sweep failed');
    }
  }

  private async runners(m: EntityManager): Promise<RunnerRow[]> {
    return m.query('SELECT id, hostname, pid, heartbeat_at > now() - make_interval(secs => $1) AS fresh FROM runners', [
      RUNNER_TIMEOUT_MS / 1000,
    ]);
  }

  private isDead(runner: RunnerRow): boolean {
    return !runner.fresh || (runner.hostname === os.hostname() && !processAlive(runner.pid));
  }

  /**
   * Finds flowops processes that died (same host and pid gone, or no heartbeat
   * for RUNNER_TIMEOUT_MS): their open operations end as interrupted, and the
   * outbox leases they held are freed for the living. An operation still
   * waiting in the job queue is left for a living process to claim; one
   * claimed but not started for as long, or whose job failed, is interrupted.
   */
  private async interruptOrphans(): Promise<void> {
    const runners = await this.runners(this.ctx.db.manager);
    const alive = runners.filter((r) => r.id === this.ctx.runnerId || !this.isDead(r)).map((r) => r.id);
    const open = await this.ctx.db.getRepository(OperationEntity).find({ where: { status: In(['pending', 'running']) } });
    const queued = this.ctx.queue ? await this.ctx.queue.jobs(this.ctx.db.manager, OPERATION_TASK, RUNNER_TIMEOUT_MS / 1000) : null;
    for (const op of open) {
      const job = queued?.get(operationJobKey(op.id));
      if (op.status === 'pending' && job) {
        // A job that failed (no replica could read it) is never tried again: its operation would wait for ever.
        if (!job.claimedLongAgo && !job.failed) continue;
      } else if (alive.includes(op.runnerId)) continue;
      if (await endedMeanwhile(this.interrupt(op))) continue;
      log.warn({ operation: op.id, kind: op.kind }, 'operation interrupted: its flowops process stopped');
    }
    const orphanRuns = await this.ctx.db.getRepository(TestRunEntity).find({ where: { status: In(['pending', 'building', 'running']) } });
    for (const run of orphanRuns.filter((r) => !alive.includes(r.runnerId ?? ''))) {
      const pipeline = await this.ctx.db.getRepository(PipelineEntity).findOneBy({ id: run.pipelineId });
      if (pipeline)
        await endedMeanwhile(
          this.ci.setTestRunStatus(pipeline, run, 'errored', 'interrupted: flowops stopped while this test run was under way', run.output),
        );
    }
    await this.ctx.db.query(
      'UPDATE outbox_cursors SET leased_by = NULL, leased_until = NULL WHERE leased_by IS NOT NULL AND NOT (leased_by = ANY($1))',
      [alive],
    );
    const gone = runners.filter((r) => !alive.includes(r.id)).map((r) => r.id);
    if (gone.length) await this.ctx.db.getRepository(RunnerEntity).delete({ id: In(gone) });
  }

  private async interrupt(op: Operation): Promise<void> {
    const reason = 'interrupted: flowops stopped while this operation was running';
    await this.ctx.transaction(async (m) => {
      const targets = op.targets.map((t) => (t.status === 'pending' ? { ...t, status: 'failed' as const, error: 'interrupted' } : t));
      await transition(m, 'operation', op.id, 'failed', { error: reason, targets });
      await transitionAll(m, 'release', 'operation_id = :id', { id: op.id }, 'pending', 'failed', {
        output: () => `output || '\n${reason}\n'`,
      });
      await transitionAll(m, 'build', 'operation_id = :id', { id: op.id }, 'pending', 'failed');
      await m.update(AppEntity, { lockedBy: op.id }, { lockedBy: null });
      // Its job, claimed by the dead process, is removed: no process runs it again.
      await this.ctx.queue?.drop(m, operationJobKey(op.id));
      const pipeline = op.pipelineId ? await m.findOneBy(PipelineEntity, { id: op.pipelineId }) : null;
      await this.ctx.emit(m, {
        type: `${op.kind}.failed`,
        pipeline: pipeline?.name ?? null,
        operationId: op.id,
        actor: null,
        via: 'system',
        message: `${op.description}: ${reason}`,
      });
    });
  }

  private async recoverApps(): Promise<void> {
    // A deploy may go live while this picture is read (the runtime restarted mid-deploy): the platform keeps what is newer.
    const asOf = Date.now();
    const apps = await this.ctx.db.getRepository(AppEntity).find();
    const current: ReleaseSpec[] = [];
    const idle: string[] = [];
    for (const app of apps) {
      const release = app.currentReleaseId ? await this.ctx.db.getRepository(ReleaseEntity).findOneBy({ id: app.currentReleaseId }) : null;
      const slug = release?.slugId ? await this.ctx.db.getRepository(SlugEntity).findOneBy({ id: release.slugId }) : null;
      if (release && slug) {
        current.push(releaseSpecOf(app, release, slug));
      } else {
        idle.push(app.name);
      }
    }
    await this.ctx.platform.recover(current, idle, asOf);
  }
}

/**
 * Runs an interruption; true when the record had ended meanwhile (its runner
 * was slow, not dead), which leaves it as it ended.
 */
async function endedMeanwhile(interruption: Promise<unknown>): Promise<boolean> {
  try {
    await interruption;
    return false;
  } catch (err) {
    if (!(err instanceof IllegalTransition)) throw err;
    log.warn({ kind: err.kind, from: err.from }, 'not interrupted: it ended meanwhile');
    return true;
  }
}
