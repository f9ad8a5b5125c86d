import type { DataSource } from 'typeorm';
import { PostgresJobQueue } from '../db/job-queue.ts';
import type { Platform } from '../platform/platform.ts';
import type { OpenSource } from '../source/open-source.ts';
import { Access } from './access-control.ts';
import { ApprovalGate, Approvals, DEFAULT_APPROVAL_TTL_MS, shipThrough } from './approvals.ts';
import { AuditTrail, DEFAULT_AUDIT_RETENTION_DAYS } from './audit-trail.ts';
import { BoardService } from './boards.ts';
import { Cards } from './cards.ts';
import { CommitLogs } from './commit-logs.ts';
import { Ci } from './ci.ts';
import { EngineContext } from './context.ts';
import { HomeViews } from './home-views.ts';
import { Identity } from './identity.ts';
import { Metrics } from './metrics.ts';
import { DEFAULT_LOCK_SETTINGS, DeployLocks, type LockSettings } from './deploy-locks.ts';
import { Dynos } from './dynos.ts';
import { Feeds } from './feeds.ts';
import { DEFAULT_NUDGE_SETTINGS, type NudgeSettings } from './nudge-kinds.ts';
import { Nudges } from './nudges.ts';
import { Operations } from './operations.ts';
import type { Outbox } from './outbox.ts';
import { Pipelines } from './pipelines.ts';
import type { PlacementSettings } from './placement.ts';
import { Recovery } from './recovery.ts';
import { ReleaseExecution } from './release-execution.ts';
import { Releases } from './releases.ts';
import { ReviewApps } from './review-apps.ts';
import { SeenRequests } from './seen-requests.ts';
import { Users } from './users.ts';

export interface EngineOptions {
  /** Opens a pipeline's source (local git, GitHub); the fronts decide which kinds exist. */
  openSource: OpenSource;
  /** The events outbox of this process (its runner id is this process's). */
  outbox: Outbox;
  /** How long deploy locks last (FLOW_LOCK_DEFAULT, FLOW_LOCK_MAX). */
  locks?: LockSettings;
  /** How long an approval request waits (FLOW_APPROVAL_TTL). */
  approvalTtlMs?: number;
  /** How many days audit records are kept (FLOW_AUDIT_RETENTION_DAYS). */
  auditRetentionDays?: number;
  /** How often nudges are looked for, and after how many days staging ahead of production is one (FLOW_NUDGE_*). */
  nudges?: NudgeSettings;
  /** Where new apps run (FLOW_PLATFORM, FLOW_K8S_NAMESPACE, whether Kubernetes is set up). */
  placement?: PlacementSettings;
  /**
   * Postgres: operations are jobs in the database (graphile-worker), claimed by
   * one of the flowops processes sharing it, `concurrency` at a time here
   * (FLOW_WORKER_CONCURRENCY). Unset: operations run in this process.
   */
  jobQueue?: { databaseUrl: string; concurrency: number };
}

/** The services, wired once: each gets the context and the services it builds on, in one direction. */
function wire(
  ctx: EngineContext,
  lockSettings: LockSettings,
  approvalTtlMs: number,
  auditRetentionDays: number,
  nudgeSettings: NudgeSettings,
) {
  const authz = new Access(ctx);
  const locks = new DeployLocks(ctx, authz, lockSettings);
  const pipelines = new Pipelines(ctx, authz, locks);
  const operations = new Operations(ctx, authz);
  const execution = new ReleaseExecution(ctx);
  const gate = new ApprovalGate(ctx, approvalTtlMs);
  const releases = new Releases(ctx, authz, execution, operations, pipelines, locks, gate);
  operations.performWith((op, work, progress) => releases.perform(op, work, progress));
  const approvals = new Approvals(ctx, authz, gate);
  approvals.shipWith(shipThrough(releases));
  const reviewApps = new ReviewApps(ctx, authz, operations, pipelines, releases, locks);
  const ci = new Ci(ctx, authz, execution, releases, reviewApps);
  const users = new Users(ctx, authz);
  const feeds = new Feeds(ctx, authz, pipelines);
  const dynos = new Dynos(ctx, authz);
  const audit = new AuditTrail(ctx, authz, auditRetentionDays);
  const commitLogs = new CommitLogs(ctx);
  const metrics = new Metrics(ctx, authz, commitLogs);
  const nudges = new Nudges(ctx, nudgeSettings, { pipelines, commitLogs, locks, gate, dynos, metrics });
  const recovery = new Recovery(ctx, ci, reviewApps, locks, approvals, dynos, audit, nudges, nudgeSettings.intervalMs);
  const identity = new Identity(ctx);
  const cards = new Cards(ctx, authz, pipelines, operations, locks, gate, commitLogs, nudges);
  const boards = new BoardService(ctx, authz, pipelines, locks, commitLogs);
  const homeViews = new HomeViews(ctx);
  return {
    ctx,
    authz,
    users,
    pipelines,
    feeds,
    operations,
    releases,
    reviewApps,
    ci,
    recovery,
    cards,
    boards,
    homeViews,
    metrics,
    locks,
    identity,
    approvals,
    dynos,
    audit,
    nudges,
  };
}

/** Which service answers each of the facade's methods. */
const ROUTES = {
  recovery: ['register', 'start', 'stop'],
  operations: ['idle', 'operation', 'stopWorker'],
  boards: ['boards', 'countCommits'],
  homeViews: ['homeOpened', 'homePicked', 'homeViewer', 'homeViewers'],
  metrics: ['metrics'],
  cards: ['subjectsOf', 'report', 'operationReport', 'pullRequestReport', 'pushReport', 'approvalReport', 'offers', 'promotePreview'],
  users: [
    'authenticate',
    'ensureAdmin',
    'createUser',
    'access',
    'addAccess',
    'removeAccess',
    'setDefaultAccess',
    'defaultAccess',
    'externalUser',
    'externalIds',
  ],
  feeds: ['subscribe', 'unsubscribe', 'subscriptions', 'ensureStatusMessage', 'recordRefusal'],
  pipelines: [
    'createPipeline',
    'connectPipeline',
    'listPipelines',
    'pipelineInfo',
    'appInfo',
    'listApps',
    'destroyPipeline',
    'createApp',
    'moveApp',
    'destroyApp',
    'sourceOf',
  ],
  releases: ['deploy', 'promote', 'rollback', 'config', 'setConfig', 'unsetConfig', 'releases', 'releaseOutput', 'diff'],
  authz: ['permissionOn', 'mayShareIn'],
  dynos: ['processes', 'scale', 'restartDynos', 'stopDynos', 'logs', 'collectCrashes'],
  locks: ['lock', 'unlock', 'extendLock', 'locks', 'expireLocks'],
  audit: ['audit', 'sweepAuditTrail'],
  nudges: ['runNudges'],
  approvals: ['requireApprovals', 'disableApprovals', 'approvals', 'approval', 'approve', 'reject', 'expireApprovals'],
  identity: ['loginCode', 'login', 'users', 'unlink'],
  ci: ['setCi', 'setAutodeploy', 'testRuns', 'testRunInfo', 'rerunTests', 'cancelTests', 'pushed'],
  reviewApps: ['setReviewApps', 'reviewApps', 'createReviewApp', 'destroyReviewApp', 'pullRequestChanged', 'destroyStaleReviewApps'],
} as const;

type Routed<S extends keyof typeof ROUTES, T> = Pick<T, (typeof ROUTES)[S][number] & keyof T>;

// The facade's methods are its services' own, routed by ROUTES (below the class), so a signature lives in one place.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- the interface declares what the prototype loop below defines
export interface Engine
  extends
    Routed<'recovery', Recovery>,
    Routed<'operations', Operations>,
    Routed<'cards', Cards>,
    Routed<'boards', BoardService>,
    Routed<'homeViews', HomeViews>,
    Routed<'metrics', Metrics>,
    Routed<'users', Users>,
    Routed<'feeds', Feeds>,
    Routed<'pipelines', Pipelines>,
    Routed<'releases', Releases>,
    Routed<'authz', Access>,
    Routed<'locks', DeployLocks>,
    Routed<'approvals', Approvals>,
    Routed<'audit', AuditTrail>,
    Routed<'identity', Identity>,
    Routed<'ci', Ci>,
    Routed<'reviewApps', ReviewApps>,
    Routed<'dynos', Dynos>,
    Routed<'nudges', Nudges> {}

/**
 * The engine's one door for the fronts (CLI API, Slack, GitHub): a thin facade
 * over services, one concern per file (src/engine/*.ts). Every operation takes
 * the acting user and checks permission first; state changes and their events
 * are written in one transaction.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- see the interface above
export class Engine {
  private readonly s: ReturnType<typeof wire>;
  /** Signed requests already taken, so a replay does nothing (the fronts' edges use it). */
  readonly seenRequests: SeenRequests;

  constructor(db: DataSource, platform: Platform, options: EngineOptions) {
    this.s = wire(
      new EngineContext(
        db,
        platform,
        options.openSource,
        options.outbox,
        options.placement,
        options.jobQueue ? new PostgresJobQueue(options.jobQueue.databaseUrl, options.jobQueue.concurrency) : null,
      ),
      options.locks ?? DEFAULT_LOCK_SETTINGS,
      options.approvalTtlMs ?? DEFAULT_APPROVAL_TTL_MS,
      options.auditRetentionDays ?? DEFAULT_AUDIT_RETENTION_DAYS,
      options.nudges ?? DEFAULT_NUDGE_SETTINGS,
    );
    this.seenRequests = new SeenRequests(db);
  }

  /** Calls `listener` after each transaction that wrote events, so a front can deliver them. */
  onEvents(listener: () => void) {
    this.s.ctx.onEvents(listener);
  }

  /**
   * Wakes the event consumers after events were written outside the engine's
   * transactions: the GitHub front records a push and its events in one statement.
   */
  eventsWritten(): void {
    this.s.ctx.notify();
  }
}

for (const [service, methods] of Object.entries(ROUTES)) {
  for (const method of methods) {
    Object.defineProperty(Engine.prototype, method, {
      value(this: { s: Record<string, Record<string, (...args: unknown[]) => unknown>> }, ...args: unknown[]) {
        return this.s[service]![method]!(...args);
      },
    });
  }
}
