import os from 'node:os';
import { In } from 'typeorm';
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

/** A runner whose heartbeat is older than this is taken for dead, wherever it ran. */
const RUNNER_TIMEOUT_MS = 60_000;
const HEARTBEAT_MS = 10_000;
/** This runner among the others: heartbeats, operations interrupted by a dead runner, apps brought back after a restart. */
export class Recovery {
  private heartbeat: NodeJS.Timeout | undefined;
  private staleSweep: NodeJS.Timeout | undefined;
  private lockSweep: NodeJS.Timeout | undefined;
  private nudgeSweep: NodeJS.Timeout | undefined;

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

  /** Registers this runner, ends operations whose runner died, and brings every app back to its current release. */
  async start(): Promise<void> {
    await this.ctx.db
      .getRepository(RunnerEntity)
      .save({ id: this.ctx.runnerId, hostname: os.hostname(), pid: process.pid, heartbeatAt: new Date() });
    await this.interruptOrphans();
    await this.recoverApps();
    // The platform lost its apps (the local runtime died and was started again): tell it again.
    this.ctx.platform.whenRestarted(() => {
      this.recoverApps().catch((err: unknown) => log.error({ err }, 'apps not brought back after the runtime restarted'));
    });
    this.heartbeat = setInterval(() => {
      void this.ctx.db
        .getRepository(RunnerEntity)
        .update({ id: this.ctx.runnerId }, { heartbeatAt: new Date() })
        .then(() => databaseOutage.answered())
        .then(() => this.interruptOrphans())
        // A database outage is logged once, not on every beat; the next beat tries again.
        .catch((err: unknown) =>
          isConnectionError(err) ? databaseOutage.noticed(err, { where: 'heartbeat' }) : log.warn({ err }, 'heartbeat failed'),
        );
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
    void this.audit.sweepAuditTrail();
    // Hourly: stale review apps go, and audit records past FLOW_AUDIT_RETENTION_DAYS.
    this.staleSweep = setInterval(() => {
      this.reviewApps.destroyStaleReviewApps().catch((err: unknown) => log.warn({ err }, 'stale review apps not destroyed'));
      void this.audit.sweepAuditTrail();
    }, 3_600_000);
    this.staleSweep.unref();
    // Locks and approval requests end on time: each minute the ones whose time is up end, and the feeds hear of it.
    this.lockSweep = setInterval(() => {
      void this.locks.expireLocks();
      void this.approvals.expireApprovals();
    }, 60_000);
    this.lockSweep.unref();
    // Nudges: what is due goes out once a day per subject, whichever process looks first (src/engine/nudges.ts).
    this.nudgeSweep = setInterval(() => {
      this.nudges.runNudges().catch((err: unknown) => log.warn({ err }, 'nudges not sent'));
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
    await this.ctx.jobs.onIdle();
    await this.ctx.db.getRepository(RunnerEntity).delete({ id: this.ctx.runnerId });
  }

  /**
   * Finds flowops processes that died (same host and pid gone, or no heartbeat
   * for a minute): their open operations end as interrupted, and the outbox
   * leases they held are freed for the living.
   */
  private async interruptOrphans(): Promise<void> {
    const runners = await this.ctx.db.getRepository(RunnerEntity).find();
    const dead = (runner: (typeof runners)[number]) =>
      runner.id !== this.ctx.runnerId &&
      (Date.now() - runner.heartbeatAt.getTime() > RUNNER_TIMEOUT_MS || (runner.hostname === os.hostname() && !processAlive(runner.pid)));
    const alive = runners.filter((r) => !dead(r)).map((r) => r.id);
    const open = await this.ctx.db.getRepository(OperationEntity).find({ where: { status: In(['pending', 'running']) } });
    for (const op of open.filter((o) => !alive.includes(o.runnerId))) {
      if (await endedMeanwhile(this.interrupt(op))) continue;
      log.warn({ operation: op.id, kind: op.kind }, 'operation interrupted by a restart');
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
    await this.ctx.platform.recover(current, idle);
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
