import { createHash, randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import PQueue from 'p-queue';
import { In, type DataSource, type EntityManager } from 'typeorm';
import {
  AppEntity,
  BuildEntity,
  EventEntity,
  GrantEntity,
  OperationEntity,
  PipelineEntity,
  ReleaseEntity,
  RunnerEntity,
  SlugEntity,
  SubscriptionEntity,
  TestRunEntity,
  ReviewAppEntity,
  type ReviewApp,
  type ReviewAppSettings,
  type TestRun,
  TokenEntity,
  UserEntity,
  type App,
  type FlowEvent,
  type Operation,
  type OperationKind,
  type OperationTarget,
  type Permission,
  type Pipeline,
  type Release,
  type Stage,
  type User,
} from '../db/entities.ts';
import { databaseOutage, isConnectionError, untilDatabaseAnswers } from '../db/outage.ts';
import { processAlive } from '../exec.ts';
import { log } from '../log.ts';
import type { Platform, ReleaseSpec } from '../platform/platform.ts';
import { isGitUrl } from '../source/local-git.ts';
import type { OpenSource } from '../source/open-source.ts';
import { assertRef, hasCommitStatuses, type Source } from '../source/source.ts';
import { short } from '../format.ts';
import { DOWNSTREAM, STAGE_ORDER, parseStage } from './stages.ts';
import { releaseView, testRunView, type AppView, type DiffView, type OperationReport, type OperationView, type ReleaseView, type ReportTarget, type ReviewAppView, type TestRunView } from './views.ts';
import { parseAppJson, reviewConfig, type AppJson } from './app-json.ts';
import { REQUIRED, isPermission, permits, type Actor } from './access.ts';
import { AppLocks } from './app-lock.ts';
import { Outbox } from './outbox.ts';
import { SeenRequests } from './seen-requests.ts';
import { Conflict, InvalidInput, NotFound, PermissionDenied, StaleRelease, Unauthenticated } from '../errors.ts';
import { CONFIG_KEY, MAX_CONFIG_BYTES, checkConfigValue, configSize, formatBytes, isCount } from './input.ts';

const NAME = /^[a-z][a-z0-9-]{2,29}$/;
const USER_NAME = /^[a-z][a-z0-9._-]{1,38}$/;
/** A Slack channel id (public, private, direct): what a feed is kept by. */
const CHANNEL = /^[CGD][A-Z0-9]{2,20}$/;
/** What `config` shows in place of a value the reader may not see: the same for every value, so not even its length shows. */
export const MASKED_VALUE = '********';
/** A runner whose heartbeat is older than this is taken for dead, wherever it ran. */
const RUNNER_TIMEOUT_MS = 60_000;
const HEARTBEAT_MS = 10_000;

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');


/** The acting identity of flowops itself (the notifier, recovery): an admin that is nobody. */
export const SYSTEM: Actor = { id: 0, name: 'flowops', admin: true, via: 'system' };

/** What a feed can follow; a subscription without a list follows all of them. */
export const FEED_EVENTS = ['deploy', 'promote', 'rollback', 'config', 'ci', 'pulls'] as const;

/** Which feed event kind an event belongs to, for events that are not operations. */
export function feedKindOf(type: string): (typeof FEED_EVENTS)[number] | null {
  if (/^testrun\.(succeeded|failed|errored)$/.test(type) || /^autodeploy\.(skipped|failed)$/.test(type)) return 'ci';
  if (/^pullrequest\.(opened|merged|closed)$/.test(type) || /^reviewapp\.(created|errored)$/.test(type)) return 'pulls';
  if (type === 'github.status_refused') return 'ci';
  if (type === 'github.deployment_refused') return 'deploy';
  return null;
}



/** The commit status context flowops' test runs report under. */
export const CI_CONTEXT = 'flowops/ci';



interface NewRelease {
  slugId: string | null;
  commit: string | null;
  description: string;
  /** Config of the release; default: the app's config vars. Rollback restores an old one. */
  config?: Record<string, string>;
}

/** A progress line for an operation; the CLI and Slack show these as they arrive. */
type Progress = (message: string, app?: string) => Promise<void>;

export interface EngineOptions {
  /** Opens a pipeline's source (local git, GitHub); the fronts decide which kinds exist. */
  openSource: OpenSource;
}

/**
 * The shared engine: pipelines, apps, deploys, promotions, releases, config vars,
 * diff and access. Every public method takes the acting user and checks
 * permission before it reads or changes anything. State changes and the events
 * that describe them are written in one transaction.
 */
export class Engine {
  readonly runnerId = randomUUID();
  readonly outbox: Outbox;
  /** Signed requests already taken, so a replay does nothing (the fronts' edges use it). */
  readonly seenRequests: SeenRequests;
  private readonly locks: AppLocks;
  private readonly jobs = new PQueue({ concurrency: 64 });
  private readonly builds = new PQueue({ concurrency: 2 });
  private readonly sources = new Map<string, Promise<Source>>();
  private heartbeat: NodeJS.Timeout | undefined;
  private staleSweep: NodeJS.Timeout | undefined;
  private readonly eventListeners = new Set<() => void>();
  private readonly testAborts = new Map<number, AbortController>();
  private readonly finished = new Map<number, Promise<void>>();

  constructor(
    readonly db: DataSource,
    readonly platform: Platform,
    private readonly options: EngineOptions,
  ) {
    this.locks = new AppLocks(db);
    this.outbox = new Outbox(db, this.runnerId);
    this.seenRequests = new SeenRequests(db);
  }

  // ---------------------------------------------------------------- lifecycle

  /** Registers this runner, ends operations whose runner died, and brings every app back to its current release. */
  async start(): Promise<void> {
    await this.db.getRepository(RunnerEntity).save({ id: this.runnerId, hostname: os.hostname(), pid: process.pid, heartbeatAt: new Date() });
    await this.interruptOrphans();
    await this.recoverApps();
    this.heartbeat = setInterval(() => {
      void this.db
        .getRepository(RunnerEntity)
        .update({ id: this.runnerId }, { heartbeatAt: new Date() })
        .then(() => databaseOutage.answered())
        .then(() => this.interruptOrphans())
        // A database outage is logged once, not on every beat; the next beat tries again.
        .catch((err: unknown) => (isConnectionError(err) ? databaseOutage.noticed(err, { where: 'heartbeat' }) : log.warn({ err }, 'heartbeat failed')));
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
    this.staleSweep = setInterval(() => {
      this.destroyStaleReviewApps().catch((err: unknown) => log.warn({ err }, 'stale review apps not destroyed'));
    }, 3_600_000);
    this.staleSweep.unref();
  }

  /** Calls `listener` after each transaction that wrote events, so a front can deliver them. */
  onEvents(listener: () => void): void {
    this.eventListeners.add(listener);
  }

  private notify(): void {
    for (const listener of this.eventListeners) listener();
  }

  /** Waits for running jobs (tests, shutdown). */
  async idle(): Promise<void> {
    await this.jobs.onIdle();
  }

  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    clearInterval(this.staleSweep);
    await this.jobs.onIdle();
    await this.db.getRepository(RunnerEntity).delete({ id: this.runnerId });
  }

  /**
   * Finds flowops processes that died (same host and pid gone, or no heartbeat
   * for a minute): their open operations end as interrupted, and the outbox
   * leases they held are freed for the living.
   */
  private async interruptOrphans(): Promise<void> {
    const runners = await this.db.getRepository(RunnerEntity).find();
    const dead = (runner: (typeof runners)[number]) =>
      runner.id !== this.runnerId &&
      (Date.now() - runner.heartbeatAt.getTime() > RUNNER_TIMEOUT_MS || (runner.hostname === os.hostname() && !processAlive(runner.pid)));
    const alive = runners.filter((r) => !dead(r)).map((r) => r.id);
    const open = await this.db.getRepository(OperationEntity).find({ where: { status: In(['pending', 'running']) } });
    for (const op of open.filter((o) => !alive.includes(o.runnerId))) {
      await this.interrupt(op);
      log.warn({ operation: op.id, kind: op.kind }, 'operation interrupted by a restart');
    }
    const orphanRuns = await this.db.getRepository(TestRunEntity).find({ where: { status: In(['pending', 'building', 'running']) } });
    for (const run of orphanRuns.filter((r) => !alive.includes(r.runnerId ?? ''))) {
      const pipeline = await this.db.getRepository(PipelineEntity).findOneBy({ id: run.pipelineId });
      if (pipeline) await this.setTestRunStatus(pipeline, run, 'errored', 'interrupted: flowops stopped while this test run was under way', run.output);
    }
    await this.db.query('UPDATE outbox_cursors SET leased_by = NULL, leased_until = NULL WHERE leased_by IS NOT NULL AND NOT (leased_by = ANY($1))', [alive]);
    const gone = runners.filter((r) => !alive.includes(r.id)).map((r) => r.id);
    if (gone.length) await this.db.getRepository(RunnerEntity).delete({ id: In(gone) });
  }

  private async interrupt(op: Operation): Promise<void> {
    const reason = 'interrupted: flowops stopped while this operation was running';
    await this.transaction(async (m) => {
      const targets = op.targets.map((t) => (t.status === 'pending' ? { ...t, status: 'failed' as const, error: 'interrupted' } : t));
      await m.update(OperationEntity, { id: op.id }, { status: 'failed', error: reason, targets });
      await m
        .createQueryBuilder()
        .update(ReleaseEntity)
        .set({ status: 'failed', output: () => `output || '\n${reason}\n'` })
        .where('operation_id = :id AND status = :pending', { id: op.id, pending: 'pending' })
        .execute();
      await m.update(BuildEntity, { operationId: op.id, status: 'pending' }, { status: 'failed' });
      await m.update(AppEntity, { lockedBy: op.id }, { lockedBy: null });
      const pipeline = op.pipelineId ? await m.findOneBy(PipelineEntity, { id: op.pipelineId }) : null;
      await this.emit(m, {
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
    const apps = await this.db.getRepository(AppEntity).find();
    const current: ReleaseSpec[] = [];
    const idle: string[] = [];
    for (const app of apps) {
      const release = app.currentReleaseId ? await this.db.getRepository(ReleaseEntity).findOneBy({ id: app.currentReleaseId }) : null;
      const slug = release?.slugId ? await this.db.getRepository(SlugEntity).findOneBy({ id: release.slugId }) : null;
      if (release && slug) {
        current.push({ app: app.name, releaseId: release.id, version: release.version, slugId: slug.id, procfile: slug.procfile, config: release.config });
      } else {
        idle.push(app.name);
      }
    }
    await this.platform.recover(current, idle);
  }

  // ---------------------------------------------------------------- users and access

  /** The user a bearer token belongs to. */
  async authenticate(token: string | undefined, via: Actor['via']): Promise<Actor> {
    if (!token) throw new Unauthenticated('no token: set FLOW_TOKEN to your flowops token (an admin creates one with `users:create <you>`)');
    const found = await this.db.getRepository(TokenEntity).findOneBy({ hash: hashToken(token) });
    const user = found ? await this.db.getRepository(UserEntity).findOneBy({ id: found.userId }) : null;
    if (!user) {
      // Worth an audit line, which says nothing of the token: a near miss would give most of it away.
      log.warn({ via }, 'authentication failed: unknown token');
      throw new Unauthenticated('this token is not valid: check FLOW_TOKEN (an admin can issue a new one with `users:create <you>`)');
    }
    return { id: user.id, name: user.name, admin: user.admin, via };
  }

  /** Makes sure the admin user exists and answers to `token` (besides any token it had). */
  async ensureAdmin(token: string): Promise<void> {
    await this.db.transaction(async (m) => {
      await m.upsert(UserEntity, { name: 'admin', admin: true }, ['name']);
      const admin = await m.findOneByOrFail(UserEntity, { name: 'admin' });
      await m.upsert(TokenEntity, { hash: hashToken(token), userId: admin.id }, ['hash']);
    });
  }

  async createUser(actor: Actor, name: string): Promise<{ name: string; token: string }> {
    if (!actor.admin) throw new PermissionDenied('`users:create` needs an admin; ask one to run it for you');
    if (!USER_NAME.test(name)) throw new InvalidInput(`"${name}" is not a valid user name: use lowercase letters, digits, ".", "_" or "-", starting with a letter`);
    const token = `flo_${randomBytes(24).toString('base64url')}`;
    await this.transaction(async (m) => {
      if (await m.existsBy(UserEntity, { name })) throw new Conflict(`user ${name} exists already`);
      const user = await m.save(UserEntity, m.create(UserEntity, { name, admin: false }));
      await m.insert(TokenEntity, { hash: hashToken(token), userId: user.id });
      await this.emit(m, { type: 'user.created', actor: actor.name, via: actor.via, message: `${actor.name} created user ${name}` });
    });
    return { name, token };
  }

  async access(actor: Actor, pipelineName: string): Promise<{ user: string; permission: Permission }[]> {
    const pipeline = await this.authorize(actor, pipelineName, REQUIRED.read, `access ${pipelineName}`);
    const rows: { user: string; permission: Permission }[] = await this.db.query(
      'SELECT u.name AS "user", g.permission FROM grants g JOIN users u ON u.id = g.user_id WHERE g.pipeline_id = $1 ORDER BY u.name',
      [pipeline.id],
    );
    return rows;
  }

  async addAccess(actor: Actor, pipelineName: string, userName: string, permission: string): Promise<{ user: string; permission: Permission }> {
    const pipeline = await this.authorize(actor, pipelineName, REQUIRED.manageAccess, `access:add ${pipelineName}`);
    if (!isPermission(permission)) throw new InvalidInput(`"${permission}" is not a permission: use view, deploy, operate or manage`);
    const user = await this.findUser(userName);
    await this.transaction(async (m) => {
      await m.upsert(GrantEntity, { pipelineId: pipeline.id, userId: user.id, permission }, ['pipelineId', 'userId']);
      await this.emit(m, {
        type: 'access.added',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} gave ${user.name} ${permission} on ${pipeline.name}`,
        data: { user: user.name, permission },
      });
    });
    return { user: user.name, permission };
  }

  async removeAccess(actor: Actor, pipelineName: string, userName: string): Promise<{ user: string }> {
    const pipeline = await this.authorize(actor, pipelineName, REQUIRED.manageAccess, `access:remove ${pipelineName}`);
    const user = await this.findUser(userName);
    await this.transaction(async (m) => {
      const removed = await m.delete(GrantEntity, { pipelineId: pipeline.id, userId: user.id });
      if (!removed.affected) throw new NotFound(`${user.name} has no access to ${pipeline.name}`);
      await this.emit(m, { type: 'access.removed', pipeline: pipeline.name, actor: actor.name, via: actor.via, message: `${actor.name} removed ${user.name} from ${pipeline.name}`, data: { user: user.name } });
    });
    return { user: user.name };
  }

  /**
   * The flowops user behind an account on a chat front (`slack:<team>:<user>`),
   * created on first contact with no grants. `admin` comes from the front's
   * settings (FLOW_SLACK_ADMINS) and is applied on every contact.
   */
  async externalUser(input: { externalId: string; name: string; admin: boolean; via: Actor['via'] }): Promise<Actor> {
    const users = this.db.getRepository(UserEntity);
    let user = await users.findOneBy({ externalId: input.externalId });
    // First contact may come twice at once (a command and a click): insert-or-ignore, then read.
    const base = input.name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z]+/, '').slice(0, 30) || 'user';
    const suffix = input.externalId.split(':').pop()!.toLowerCase();
    for (const name of [base, `${base}-${suffix}`.slice(0, 39)]) {
      if (user || !USER_NAME.test(name)) continue;
      await this.transaction(async (m) => {
        const inserted = await m.createQueryBuilder().insert().into(UserEntity).values({ name, admin: input.admin, externalId: input.externalId }).orIgnore().returning('id').execute();
        if ((inserted.raw as unknown[]).length) {
          await this.emit(m, { type: 'user.created', actor: name, via: input.via, message: `${name} joined from ${input.externalId.split(':')[0]}` });
        }
      });
      user = await users.findOneBy({ externalId: input.externalId });
    }
    if (!user) throw new Conflict(`could not create a flowops user for ${input.name}; an admin can create one with \`users:create\``);
    if (user.admin !== input.admin) {
      await users.update({ id: user.id }, { admin: input.admin });
      user.admin = input.admin;
    }
    return { id: user.id, name: user.name, admin: user.admin, via: input.via };
  }

  /** Makes `channel` a feed of the pipeline for the given operation kinds (all when none). */
  async subscribe(actor: Actor, pipelineName: string, channel: string, events: string[]): Promise<{ pipeline: string; channel: string; events: string[] }> {
    const pipeline = await this.authorize(actor, pipelineName, 'operate', `subscribe ${pipelineName}`);
    assertChannel(channel);
    const unknown = events.filter((e) => !(FEED_EVENTS as readonly string[]).includes(e));
    if (unknown.length) throw new InvalidInput(`${unknown.join(', ')} ${unknown.length === 1 ? 'is' : 'are'} not a feed event: use ${FEED_EVENTS.join(', ')}, or none for all`);
    const chosen = events.length ? [...new Set(events)] : [...FEED_EVENTS];
    await this.transaction(async (m) => {
      await m.upsert(SubscriptionEntity, { pipelineId: pipeline.id, channel, events: chosen }, ['pipelineId', 'channel']);
      await this.emit(m, { type: 'subscription.added', pipeline: pipeline.name, actor: actor.name, via: actor.via, message: `${actor.name} made ${channel} a feed of ${pipeline.name}`, data: { channel, events: chosen } });
    });
    return { pipeline: pipeline.name, channel, events: chosen };
  }

  async unsubscribe(actor: Actor, pipelineName: string, channel: string): Promise<{ pipeline: string; channel: string }> {
    const pipeline = await this.authorize(actor, pipelineName, 'operate', `unsubscribe ${pipelineName}`);
    assertChannel(channel);
    await this.transaction(async (m) => {
      const removed = await m.delete(SubscriptionEntity, { pipelineId: pipeline.id, channel });
      if (!removed.affected) throw new NotFound(`this channel is not a feed of ${pipeline.name}`);
      await this.emit(m, { type: 'subscription.removed', pipeline: pipeline.name, actor: actor.name, via: actor.via, message: `${actor.name} stopped the ${pipeline.name} feed in ${channel}`, data: { channel } });
    });
    return { pipeline: pipeline.name, channel };
  }

  /** The feeds of a channel, among the pipelines the actor can see. */
  async subscriptions(actor: Actor, channel: string): Promise<{ pipeline: string; events: string[] }[]> {
    assertChannel(channel);
    const visible = new Set((await this.listPipelines(actor)).map((p) => p.name));
    const rows: { pipeline: string; events: string[] }[] = await this.db.query(
      'SELECT p.name AS pipeline, s.events FROM subscriptions s JOIN pipelines p ON p.id = s.pipeline_id WHERE s.channel = $1 ORDER BY p.name',
      [channel],
    );
    return rows.filter((r) => visible.has(r.pipeline));
  }

  /**
   * Records that `channel` shows operation `operationId` in one message, kept up to
   * date by the front's notifier. Idempotent.
   */
  async ensureStatusMessage(operationId: number, channel: string): Promise<void> {
    await this.outbox.addStatusMessage(operationId, channel);
    this.notify();
  }

  /**
   * Records a webhook delivery from a source host once: false when this
   * delivery id was seen before (a redelivery), and then nothing changes.
   * A push is written as an event of each pipeline connected to the repository.
   */
  async receiveDelivery(delivery: { id: string; event: string; repository: string | null; push?: { branch: string; sha: string; pusher: string } }): Promise<boolean> {
    // One statement, so one round trip and atomic: the delivery is recorded and,
    // only if it is new, each connected pipeline gets its push event.
    const push = delivery.push;
    const rows: { first: boolean }[] = await this.db.query(
      `WITH delivery AS (
         INSERT INTO github_deliveries (id, event, repository) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING id
       ), pushed AS (
         INSERT INTO events (type, pipeline, actor, via, message, data)
         SELECT 'github.push', p.name, $4, 'github', $5, $6::jsonb
           FROM pipelines p
          WHERE $7 AND p.repo = 'github:' || $3 AND EXISTS (SELECT 1 FROM delivery)
         RETURNING id
       )
       SELECT EXISTS (SELECT 1 FROM delivery) AS first, (SELECT count(*) FROM pushed) AS events`,
      [
        delivery.id,
        delivery.event,
        delivery.repository,
        push?.pusher ?? null,
        push ? `${push.pusher} pushed ${short(push.sha)} to ${push.branch}` : '',
        JSON.stringify(push ? { branch: push.branch, sha: push.sha, delivery: delivery.id } : {}),
        !!push && !!delivery.repository,
      ],
    );
    this.notify();
    return rows[0]!.first;
  }

  // ---------------------------------------------------------------- pipelines and apps

  async createPipeline(actor: Actor, input: { name: string; repo: string; branch?: string }): Promise<Pipeline> {
    if (!actor.admin) throw new PermissionDenied('`pipelines:create` needs an admin: a pipeline runs code from a repository on this server; ask an admin to create it');
    if (!NAME.test(input.name)) throw new InvalidInput(`"${input.name}" is not a valid pipeline name: 3 to 30 lowercase letters, digits or "-", starting with a letter`);
    if (input.repo.startsWith('-')) throw new InvalidInput(`--repo cannot start with "-" (git would read it as an option): give a path like ./${input.repo.slice(0, 60)} or a git URL`);
    // The repository is shown to everyone with view and kept in the audit trail: no password in it.
    if (/^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i.test(input.repo)) {
      throw new InvalidInput('--repo must not carry a password (user:password@): everyone who can view the pipeline sees its repository. Use an SSH URL with a deploy key, a git credential helper, or github:owner/name with GITHUB_TOKEN');
    }
    const branch = input.branch ?? 'main';
    assertRef(branch);
    const source = await this.options.openSource(input.repo);
    const repo = input.repo.startsWith('github:') || isGitUrl(input.repo) ? input.repo : path.resolve(input.repo);
    await source.resolve(branch).catch((err: unknown) => {
      throw err instanceof NotFound ? new InvalidInput(`the repository has no branch "${branch}"; name its main branch with --branch`) : err;
    });
    return this.transaction(async (m) => {
      if (await m.existsBy(PipelineEntity, { name: input.name })) throw new Conflict(`pipeline ${input.name} exists already`);
      const pipeline = await m.save(PipelineEntity, m.create(PipelineEntity, { name: input.name, repo, branch }));
      await this.emit(m, { type: 'pipeline.created', pipeline: pipeline.name, actor: actor.name, via: actor.via, message: `${actor.name} created pipeline ${pipeline.name}`, data: { repo, branch } });
      return pipeline;
    });
  }

  /** Points an existing pipeline at a GitHub repository (`owner/name`). */
  async connectPipeline(actor: Actor, pipelineName: string, repository: string): Promise<{ name: string; repo: string; branch: string }> {
    const pipeline = await this.authorize(actor, pipelineName, REQUIRED.read, `pipelines:connect ${pipelineName}`);
    // Where the code comes from decides what runs on this server: as with pipelines:create, only an admin says so.
    if (!actor.admin) {
      log.warn({ pipeline: pipeline.name, actor: actor.name }, 'pipelines:connect denied');
      throw new PermissionDenied(`\`pipelines:connect ${pipeline.name}\` needs an admin: the pipeline's repository is code that runs on this server; ask an admin to connect it`);
    }
    if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(repository)) throw new InvalidInput(`"${repository}" is not a GitHub repository: write owner/name`);
    const repo = `github:${repository}`;
    const source = await this.options.openSource(repo);
    await source.resolve(pipeline.branch).catch((err: unknown) => {
      throw err instanceof NotFound ? new InvalidInput(`${repository} has no branch "${pipeline.branch}"`) : err;
    });
    await this.transaction(async (m) => {
      await m.update(PipelineEntity, { id: pipeline.id }, { repo });
      await this.emit(m, { type: 'pipeline.connected', pipeline: pipeline.name, actor: actor.name, via: actor.via, message: `${actor.name} connected ${pipeline.name} to ${repository}`, data: { from: pipeline.repo, repo } });
    });
    this.sources.delete(pipeline.repo);
    return { name: pipeline.name, repo, branch: pipeline.branch };
  }

  async listPipelines(actor: Actor): Promise<{ name: string; repo: string; branch: string; apps: number }[]> {
    const rows: { name: string; repo: string; branch: string; apps: string }[] = await this.db.query(
      `SELECT p.name, p.repo, p.branch, (SELECT count(*) FROM apps a WHERE a.pipeline_id = p.id) AS apps
         FROM pipelines p
        WHERE $1 OR EXISTS (SELECT 1 FROM grants g WHERE g.pipeline_id = p.id AND g.user_id = $2)
        ORDER BY p.name`,
      [actor.admin, actor.id],
    );
    return rows.map((r) => ({ ...r, apps: Number(r.apps) }));
  }

  async pipelineInfo(actor: Actor, name: string): Promise<{ name: string; repo: string; branch: string; apps: AppView[]; sandbox: Platform['isolation'] }> {
    const pipeline = await this.authorize(actor, name, REQUIRED.read, `pipelines:info ${name}`);
    const apps = await this.db.getRepository(AppEntity).findBy({ pipelineId: pipeline.id });
    const releases = await this.currentReleases(apps);
    const views = apps
      .map((app) => this.appView(app, pipeline, releases.get(app.id) ?? null))
      .sort((a, b) => STAGE_ORDER[a.stage] - STAGE_ORDER[b.stage] || a.name.localeCompare(b.name));
    return { name: pipeline.name, repo: pipeline.repo, branch: pipeline.branch, apps: views, sandbox: this.platform.isolation };
  }

  async destroyPipeline(actor: Actor, name: string, confirm: string | undefined): Promise<{ name: string; apps: string[] }> {
    const pipeline = await this.authorize(actor, name, REQUIRED.manageApps, `pipelines:destroy ${name}`);
    const apps = await this.db.getRepository(AppEntity).findBy({ pipelineId: pipeline.id });
    if (confirm !== pipeline.name) {
      const what = apps.length ? ` and its ${apps.length} app${apps.length === 1 ? '' : 's'} (${apps.map((a) => a.name).join(', ')})` : '';
      throw new InvalidInput(`this destroys ${pipeline.name}${what}; run again with --confirm ${pipeline.name}`);
    }
    for (const app of apps) await this.removeApp(actor, app, pipeline);
    await this.transaction(async (m) => {
      await m.delete(PipelineEntity, { id: pipeline.id });
      await this.emit(m, { type: 'pipeline.destroyed', pipeline: pipeline.name, actor: actor.name, via: actor.via, message: `${actor.name} destroyed pipeline ${pipeline.name}` });
    });
    return { name: pipeline.name, apps: apps.map((a) => a.name) };
  }

  async createApp(actor: Actor, input: { name: string; pipeline: string; stage: string }): Promise<AppView> {
    const pipeline = await this.authorize(actor, input.pipeline, REQUIRED.manageApps, `apps:create ${input.name}`);
    if (!NAME.test(input.name)) throw new InvalidInput(`"${input.name}" is not a valid app name: 3 to 30 lowercase letters, digits or "-", starting with a letter`);
    const stage = parseStage(input.stage);
    const app = await this.transaction(async (m) => {
      if (await m.existsBy(AppEntity, { name: input.name })) throw new Conflict(`app ${input.name} exists already`);
      const app = await m.save(AppEntity, m.create(AppEntity, { name: input.name, pipelineId: pipeline.id, stage, config: {} }));
      await this.emit(m, { type: 'app.created', pipeline: pipeline.name, app: app.name, actor: actor.name, via: actor.via, message: `${actor.name} created ${app.name} in ${stage}`, data: { stage } });
      return app;
    });
    return this.appView(app, pipeline, null);
  }

  async moveApp(actor: Actor, name: string, stageName: string): Promise<AppView> {
    const { app, pipeline } = await this.authorizeApp(actor, name, REQUIRED.manageApps, `apps:move ${name}`);
    const stage = parseStage(stageName);
    await this.transaction(async (m) => {
      await m.update(AppEntity, { id: app.id }, { stage });
      await this.emit(m, { type: 'app.moved', pipeline: pipeline.name, app: app.name, actor: actor.name, via: actor.via, message: `${actor.name} moved ${app.name} from ${app.stage} to ${stage}`, data: { from: app.stage, to: stage } });
    });
    const releases = await this.currentReleases([app]);
    return this.appView({ ...app, stage }, pipeline, releases.get(app.id) ?? null);
  }

  async destroyApp(actor: Actor, name: string, confirm: string | undefined): Promise<{ name: string }> {
    const { app, pipeline } = await this.authorizeApp(actor, name, REQUIRED.manageApps, `apps:destroy ${name}`);
    if (confirm !== app.name) throw new InvalidInput(`this stops ${app.name} and deletes its releases; run again with --confirm ${app.name}`);
    await this.removeApp(actor, app, pipeline);
    return { name: app.name };
  }

  private async removeApp(actor: Actor, app: App, pipeline: Pipeline): Promise<void> {
    if (app.lockedBy) throw new Conflict(`${app.name} is busy with operation ${app.lockedBy}; try again when it is done`);
    await this.platform.destroy(app.name);
    await this.transaction(async (m) => {
      await m.delete(AppEntity, { id: app.id });
      await this.emit(m, { type: 'app.destroyed', pipeline: pipeline.name, app: app.name, actor: actor.name, via: actor.via, message: `${actor.name} destroyed ${app.name}` });
    });
  }

  // ---------------------------------------------------------------- deploy, promote, rollback

  /** Builds `ref` (default: the pipeline's branch) and releases it to every app of `stage`, or to one app of it. */
  async deploy(actor: Actor, input: { pipeline: string; ref?: string; stage: string; app?: string }): Promise<OperationView> {
    const pipeline = await this.authorize(actor, input.pipeline, REQUIRED.deploy, `deploy ${input.pipeline}`);
    const stage = parseStage(input.stage);
    const targets = await this.stageApps(pipeline, stage, input.app);
    const source = await this.source(pipeline);
    const sha = await source.resolve(input.ref ?? pipeline.branch);
    const op = await this.createOperation(actor, pipeline, 'deploy', `Deploy ${short(sha)} to ${describeTargets(targets, stage)}`, targets);
    this.launch(op, async (progress) => {
      const slug = await this.builds.add(() => this.build(op, pipeline, source, sha, progress));
      await Promise.all(targets.map((app) => this.release(op, app, () => ({ slugId: slug, commit: sha, description: `Deploy ${short(sha)}` }), progress)));
    });
    return this.operationView(op, pipeline);
  }

  /**
   * Copies the slug the source app runs now, unchanged, to every app of the
   * downstream stage (or the named apps). The targets' config vars stay theirs.
   */
  async promote(actor: Actor, input: { pipeline: string; fromStage?: string; fromApp?: string; toStage?: string; toApps?: string[]; ifVersion?: number }): Promise<OperationView> {
    const pipeline = await this.authorize(actor, input.pipeline, REQUIRED.promote, `promote ${input.pipeline}`);
    const fromStage = parseStage(input.fromStage ?? 'staging');
    const [source] = input.fromApp ? await this.stageApps(pipeline, fromStage, input.fromApp) : await this.stageApps(pipeline, fromStage);
    if (!source) throw new NotFound(`no app in ${fromStage} of ${pipeline.name}`);
    const downstream = DOWNSTREAM[source.stage];
    if (!downstream) {
      throw new InvalidInput(
        `${source.name} is in ${source.stage}, which has no downstream stage to promote to; promote from development or staging (\`promote ${pipeline.name}\` promotes staging to production)`,
      );
    }
    let targets: App[];
    if (input.toApps?.length) {
      targets = await Promise.all(input.toApps.map((name) => this.pipelineApp(pipeline, name)));
      if (targets.some((t) => t.id === source.id)) throw new InvalidInput(`${source.name} cannot be promoted to itself`);
    } else {
      const toStage = parseStage(input.toStage ?? downstream);
      targets = await this.stageApps(pipeline, toStage);
    }
    const release = source.currentReleaseId ? await this.db.getRepository(ReleaseEntity).findOneBy({ id: source.currentReleaseId }) : null;
    if (!release?.slugId) throw new InvalidInput(`${source.name} has no release to promote yet; deploy first: \`deploy ${pipeline.name} to ${source.stage}\``);
    if (input.ifVersion !== undefined && release.version !== input.ifVersion) {
      throw new StaleRelease(`${source.name} has moved on since: it now runs v${release.version} (${short(release.commit)}), not v${input.ifVersion}.`, { app: source.name, version: release.version, commit: release.commit });
    }
    const description = `Promote ${source.name} v${release.version} ${short(release.commit)}`;
    const op = await this.createOperation(actor, pipeline, 'promote', `${description} to ${describeTargets(targets, targets[0]!.stage)}`, targets);
    this.launch(op, async (progress) => {
      await Promise.all(targets.map((app) => this.release(op, app, () => ({ slugId: release.slugId, commit: release.commit, description }), progress)));
    });
    return this.operationView(op, pipeline);
  }

  /** A new release with an earlier release's slug and config (default: the last succeeded one before the current). */
  async rollback(actor: Actor, appName: string, version?: number, options: { ifCurrent?: number } = {}): Promise<OperationView> {
    const { app, pipeline } = await this.authorizeApp(actor, appName, REQUIRED.rollback, `rollback ${appName}`);
    const releases = this.db.getRepository(ReleaseEntity);
    if (options.ifCurrent !== undefined) {
      const now = app.currentReleaseId ? await releases.findOneBy({ id: app.currentReleaseId }) : null;
      if (!now) throw new InvalidInput(`${app.name} has no release to roll back`);
      if (now.version !== options.ifCurrent) throw new StaleRelease(`${app.name} has moved on since: it now runs v${now.version}, not v${options.ifCurrent}.`, { app: app.name, version: now.version, commit: now.commit });
    }
    let target: Release | null;
    if (version !== undefined) {
      target = await releases.findOneBy({ appId: app.id, version });
      if (!target) throw new NotFound(`${app.name} has no release v${version}; see \`releases ${app.name}\``);
      if (target.status !== 'succeeded') throw new InvalidInput(`v${version} of ${app.name} ${target.status === 'failed' ? 'failed' : 'has not finished'}; roll back to a release that succeeded (see \`releases ${app.name}\`)`);
    } else {
      const current = app.currentReleaseId ? await releases.findOneBy({ id: app.currentReleaseId }) : null;
      if (!current) throw new InvalidInput(`${app.name} has no release yet, so nothing to roll back`);
      target = await releases
        .createQueryBuilder('r')
        .where('r.app_id = :app AND r.status = :ok AND r.version < :v', { app: app.id, ok: 'succeeded', v: current.version })
        .orderBy('r.version', 'DESC')
        .getOne();
      if (!target) throw new InvalidInput(`${app.name} has no earlier release that succeeded to roll back to`);
    }
    const rollbackTo = target;
    const op = await this.createOperation(actor, pipeline, 'rollback', `Rollback ${app.name} to v${rollbackTo.version}`, [app]);
    this.launch(op, async (progress) => {
      await this.release(op, app, () => ({ slugId: rollbackTo.slugId, commit: rollbackTo.commit, description: `Rollback to v${rollbackTo.version}`, config: rollbackTo.config }), progress);
    });
    return this.operationView(op, pipeline);
  }

  // ---------------------------------------------------------------- config vars

  /**
   * An app's config vars. Values need deploy on the pipeline (as setting them
   * does); with less, and always in a chat front, every value is MASKED_VALUE
   * and `hidden` says why.
   */
  async config(actor: Actor, appName: string): Promise<{ vars: Record<string, string>; hidden: string | null }> {
    const { app, pipeline } = await this.authorizeApp(actor, appName, REQUIRED.read, `config ${appName}`);
    const held = await this.permissionOf(actor, pipeline.id);
    let hidden: string | null = null;
    if (!permits(held, REQUIRED.config)) {
      hidden = `Values are masked: they need ${REQUIRED.config} on ${pipeline.name}; you have ${held}. Ask an admin: \`access:add ${pipeline.name} ${actor.name} ${REQUIRED.config}\``;
    } else if (actor.via === 'slack') {
      // Chat messages outlive the moment and travel through Slack: secrets stay out of them.
      hidden = `Values are masked: flowops never shows config values in Slack; use the CLI: \`flowops config ${app.name}\``;
    }
    const vars = hidden ? Object.fromEntries(Object.keys(app.config).map((key) => [key, MASKED_VALUE])) : app.config;
    return { vars, hidden };
  }

  /** Sets config vars: stored at once, then a new release runs with them. */
  async setConfig(actor: Actor, appName: string, vars: Record<string, string>): Promise<OperationView> {
    const { app, pipeline } = await this.authorizeApp(actor, appName, REQUIRED.config, `config:set ${appName}`);
    const keys = Object.keys(vars);
    if (!keys.length) throw new InvalidInput('give at least one KEY=value: `config:set ' + app.name + ' KEY=value`');
    const bad = keys.find((k) => !CONFIG_KEY.test(k));
    if (bad !== undefined) throw new InvalidInput(`"${bad.slice(0, 60)}" is not a valid config var name: letters, digits and "_", not starting with a digit`);
    for (const key of keys) checkConfigValue(key, vars[key]!);
    return this.changeConfig(actor, app, pipeline, `Set ${keys.join(', ')} config vars`, async (m) => {
      // Measured on the row as locked in this transaction, so concurrent config:sets cannot add up past the limit.
      const [row] = (await m.query('SELECT config FROM apps WHERE id = $1 FOR UPDATE', [app.id])) as [{ config: Record<string, string> }];
      const size = configSize({ ...row.config, ...vars });
      if (size > MAX_CONFIG_BYTES) {
        throw new InvalidInput(
          `config vars are limited to 32 KB per app (${formatBytes(MAX_CONFIG_BYTES)}, keys and values together); ${app.name} uses ${formatBytes(configSize(row.config))} and this would make it ${formatBytes(size)}. Nothing was changed: unset vars you no longer need (\`config:unset ${app.name} KEY\`), or keep large files out of config`,
        );
      }
      await m.createQueryBuilder().update(AppEntity).set({ config: () => 'config || :vars::jsonb' }).setParameter('vars', JSON.stringify(vars)).where('id = :id', { id: app.id }).execute();
    });
  }

  async unsetConfig(actor: Actor, appName: string, keys: string[]): Promise<OperationView> {
    const { app, pipeline } = await this.authorizeApp(actor, appName, REQUIRED.config, `config:unset ${appName}`);
    if (!keys.length) throw new InvalidInput('name at least one config var: `config:unset ' + app.name + ' KEY`');
    // Own keys only: `toString` or `__proto__` is "in" any object, but not set on the app.
    const missing = keys.filter((k) => !Object.hasOwn(app.config, k));
    if (missing.length) throw new NotFound(`${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set on ${app.name}; see \`config ${app.name}\``);
    return this.changeConfig(actor, app, pipeline, `Remove ${keys.join(', ')} config vars`, (m) =>
      m.createQueryBuilder().update(AppEntity).set({ config: () => 'config - :keys::text[]' }).setParameter('keys', keys).where('id = :id', { id: app.id }).execute(),
    );
  }

  private async changeConfig(actor: Actor, app: App, pipeline: Pipeline, description: string, change: (m: EntityManager) => Promise<unknown>): Promise<OperationView> {
    const op = await this.createOperation(actor, pipeline, 'config', `${description} on ${app.name}`, [app], change);
    this.launch(op, async (progress) => {
      await this.release(op, app, (current) => ({ slugId: current?.slugId ?? null, commit: current?.commit ?? null, description }), progress);
    });
    return this.operationView(op, pipeline);
  }

  // ---------------------------------------------------------------- releases and diff

  async releases(actor: Actor, appName: string): Promise<ReleaseView[]> {
    const { app } = await this.authorizeApp(actor, appName, REQUIRED.read, `releases ${appName}`);
    const releases = await this.db.getRepository(ReleaseEntity).find({ where: { appId: app.id }, order: { version: 'DESC' }, take: 100 });
    return releases.map((r) => releaseView(r, app.currentReleaseId));
  }

  async releaseOutput(actor: Actor, appName: string, version?: number): Promise<{ version: number; status: Release['status']; description: string; output: string }> {
    const { app } = await this.authorizeApp(actor, appName, REQUIRED.read, `releases:output ${appName}`);
    const repo = this.db.getRepository(ReleaseEntity);
    const release = version === undefined ? await repo.findOne({ where: { appId: app.id }, order: { version: 'DESC' } }) : await repo.findOneBy({ appId: app.id, version });
    if (!release) throw new NotFound(version === undefined ? `${app.name} has no releases yet` : `${app.name} has no release v${version}; see \`releases ${app.name}\``);
    return { version: release.version, status: release.status, description: release.description, output: release.output };
  }

  /** For each stage and its downstream: the commits the upstream app runs that the downstream app does not. */
  async diff(actor: Actor, pipelineName: string): Promise<DiffView[]> {
    const pipeline = await this.authorize(actor, pipelineName, REQUIRED.read, `diff ${pipelineName}`);
    const apps = await this.db.getRepository(AppEntity).find({ where: { pipelineId: pipeline.id }, order: { name: 'ASC' } });
    const releases = await this.currentReleases(apps);
    const source = await this.source(pipeline);
    const result: DiffView[] = [];
    for (const [up, down] of Object.entries(DOWNSTREAM) as [Stage, Stage][]) {
      for (const upstream of apps.filter((a) => a.stage === up)) {
        const head = releases.get(upstream.id)?.commit;
        if (!head) continue;
        for (const downstream of apps.filter((a) => a.stage === down)) {
          const base = releases.get(downstream.id)?.commit ?? null;
          const { ahead, commits } = await source.log(base, head, 50);
          result.push({ upstream: upstream.name, downstream: downstream.name, ahead, commits });
        }
      }
    }
    return result;
  }

  // ---------------------------------------------------------------- operations

  async operation(actor: Actor, id: number, afterEvent = '0'): Promise<{ operation: OperationView; events: FlowEvent[] }> {
    // Ids are Postgres integers, event ids bigints: a larger number names nothing (and would fail the query).
    if (!isCount(id)) throw new NotFound(`no operation ${String(id).slice(0, 30)}`);
    if (!/^\d{1,18}$/.test(afterEvent)) throw new InvalidInput('`after` is an event id: a whole number of at most 18 digits');
    const op = await this.db.getRepository(OperationEntity).findOneBy({ id });
    if (!op) throw new NotFound(`no operation ${id}`);
    const pipeline = op.pipelineId ? await this.db.getRepository(PipelineEntity).findOneBy({ id: op.pipelineId }) : null;
    if (!actor.admin && op.actorId !== actor.id) {
      if (!pipeline || !permits(await this.permissionOf(actor, pipeline.id), 'view')) throw new NotFound(`no operation ${id}`);
    }
    const events = await this.db
      .getRepository(EventEntity)
      .createQueryBuilder('e')
      .where('e.operation_id = :id AND e.id > :after', { id, after: afterEvent })
      .orderBy('e.id', 'ASC')
      .getMany();
    return { operation: this.operationView(op, pipeline), events };
  }

  /**
   * Everything a status message shows of an operation: who started it, and per
   * target its stage, version, commit and status. For the fronts' notifiers.
   */
  async operationReport(id: number): Promise<OperationReport | null> {
    const op = await this.db.getRepository(OperationEntity).findOneBy({ id });
    if (!op) return null;
    const pipeline = op.pipelineId ? await this.db.getRepository(PipelineEntity).findOneBy({ id: op.pipelineId }) : null;
    const started = await this.db.getRepository(EventEntity).findOne({ where: { operationId: id, type: `${op.kind}.started` } });
    const apps = await this.db.getRepository(AppEntity).findBy({ name: In(op.targets.map((t) => t.app)) });
    const targets: ReportTarget[] = [];
    for (const t of op.targets) {
      const app = apps.find((a) => a.name === t.app);
      const release = app && t.version ? await this.db.getRepository(ReleaseEntity).findOneBy({ appId: app.id, version: t.version }) : null;
      targets.push({ app: t.app, stage: app?.stage ?? 'destroyed', version: t.version, commit: release?.commit ?? null, status: t.status, releasing: t.version !== null, error: t.error, output: release?.output ?? '', current: !!release && app?.currentReleaseId === release.id });
    }
    return { operation: this.operationView(op, pipeline), actor: started?.actor ?? null, via: started?.via ?? 'system', targets };
  }

  /** The actor's permission on a pipeline (null: none), for fronts that show only the buttons a user may use. */
  async permissionOn(actor: Actor, pipelineName: string): Promise<Permission | null> {
    const pipeline = await this.db.getRepository(PipelineEntity).findOneBy({ name: pipelineName });
    return pipeline ? this.permissionOf(actor, pipeline.id) : null;
  }

  private async createOperation(
    actor: Actor,
    pipeline: Pipeline,
    kind: OperationKind,
    description: string,
    targets: App[],
    alsoInTransaction?: (m: EntityManager) => Promise<unknown>,
  ): Promise<Operation> {
    return this.transaction(async (m) => {
      await alsoInTransaction?.(m);
      const op = await m.save(
        OperationEntity,
        m.create(OperationEntity, {
          kind,
          pipelineId: pipeline.id,
          status: 'pending',
          actorId: actor.id,
          description,
          targets: targets.map((t) => ({ app: t.name, version: null, status: 'pending' as const })),
          runnerId: this.runnerId,
        }),
      );
      await this.emit(m, { type: `${kind}.started`, pipeline: pipeline.name, operationId: op.id, actor: actor.name, via: actor.via, message: `${actor.name}: ${description}` });
      return op;
    });
  }

  /**
   * Runs an operation's work as a job; its outcome (and each target's) is
   * recorded with an event. The job's writes wait out a database outage, so an
   * operation ends with its real outcome once the database is back, and the
   * job never rejects (nobody awaits it but tests).
   */
  private launch(op: Operation, work: (progress: Progress) => Promise<void>): void {
    const progress: Progress = async (message, app) => {
      await untilDatabaseAnswers({ operation: op.id, step: 'progress' }, () =>
        this.transaction((m) => this.emit(m, { type: 'operation.progress', operationId: op.id, app: app ?? null, via: 'system', message })),
      );
    };
    const job = this.jobs.add(async () => {
      let error: string | null = null;
      try {
        await untilDatabaseAnswers({ operation: op.id, step: 'start' }, () => this.db.getRepository(OperationEntity).update({ id: op.id }, { status: 'running' }));
        await work(progress);
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
        log.warn({ operation: op.id, err }, 'operation failed');
      }
      await untilDatabaseAnswers({ operation: op.id, step: 'outcome' }, () => this.transaction(async (m) => {
        const fresh = await m.findOneByOrFail(OperationEntity, { id: op.id });
        const targets = fresh.targets.map((t) => (t.status === 'pending' ? { ...t, status: 'failed' as const, error: error ?? 'not released' } : t));
        const ok = !error && targets.every((t) => t.status === 'succeeded');
        await m.update(OperationEntity, { id: op.id }, { status: ok ? 'succeeded' : 'failed', targets, error });
        const pipeline = op.pipelineId ? await m.findOneBy(PipelineEntity, { id: op.pipelineId }) : null;
        await this.emit(m, {
          type: `${op.kind}.${ok ? 'succeeded' : 'failed'}`,
          pipeline: pipeline?.name ?? null,
          operationId: op.id,
          via: 'system',
          message: `${op.description}: ${ok ? 'done' : 'failed'}${error ? ` (${error.split('\n')[0]})` : ''}`,
          data: { targets },
        });
      }));
    }).catch((err: unknown) => log.error({ operation: op.id, err }, 'operation outcome not recorded'));
    this.finished.set(op.id, job.then(() => undefined));
    void job.finally(() => setTimeout(() => this.finished.delete(op.id), 60_000).unref());
  }

  /** Waits for an operation this process runs, and returns how it ended. */
  private async outcome(operationId: number): Promise<Operation> {
    await this.finished.get(operationId);
    return this.db.getRepository(OperationEntity).findOneByOrFail({ id: operationId });
  }

  private async build(op: Operation, pipeline: Pipeline, source: Source, sha: string, progress: Progress): Promise<string> {
    const builds = this.db.getRepository(BuildEntity);
    const durably = <T>(step: string, work: () => Promise<T>) => untilDatabaseAnswers({ operation: op.id, step }, work);
    const build = await durably('build', () => builds.save(builds.create({ pipelineId: pipeline.id, commit: sha, status: 'pending', operationId: op.id })));
    await progress(`Building ${short(sha)}...`);
    let output = '';
    // The build log's step lines ("-----> Building dependencies") and their indented details are the build's progress.
    let partial = '';
    let steps = Promise.resolve();
    try {
      const slug = await this.platform.build(
        source,
        sha,
        (chunk) => {
        output += chunk;
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!;
        for (const line of lines.filter((l) => /^(----->| {7})\s*\S/.test(l))) steps = steps.then(() => progress(line.startsWith('-----> ') ? line.slice(7) : `  ${line.trim()}`));
        },
        pipeline.repo,
      );
      await steps;
      await durably('build', () =>
        this.transaction(async (m) => {
          await m.upsert(SlugEntity, { id: slug.id, size: String(slug.size), commit: sha, procfile: slug.procfile }, ['id']);
          await m.update(BuildEntity, { id: build.id }, { status: 'succeeded', output, slugId: slug.id });
          await this.emit(m, { type: 'build.succeeded', pipeline: pipeline.name, operationId: op.id, via: 'system', message: `Built ${short(sha)} into slug ${slug.id.slice(0, 12)}`, data: { slug: slug.id, size: slug.size } });
        }),
      );
      return slug.id;
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      await durably('build', () => builds.update({ id: build.id }, { status: 'failed', output: `${output}\n${why}` }));
      throw new Error(`build of ${short(sha)} failed: ${why}`);
    }
  }

  /**
   * One release on one app, under the app's lock: a new version, the release
   * phase, then the processes. The app keeps its current release unless every
   * step succeeds.
   */
  private async release(op: Operation, target: App, make: (current: Release | null) => NewRelease, progress: Progress): Promise<void> {
    const setTarget = async (m: EntityManager, patch: Partial<OperationTarget>) => {
      const fresh = await m.findOneByOrFail(OperationEntity, { id: op.id });
      await m.update(OperationEntity, { id: op.id }, { targets: fresh.targets.map((t) => (t.app === target.name ? { ...t, ...patch } : t)) });
    };
    // Each step waits out a database outage: a release phase that ran must not end up `pending` for want of a connection.
    const durably = <T>(step: string, work: () => Promise<T>) => untilDatabaseAnswers({ operation: op.id, app: target.name, step }, work);
    await this.locks.withLock(target.id, op.id, async () => {
      const pipeline = await durably('release', () => this.db.getRepository(PipelineEntity).findOneByOrFail({ id: target.pipelineId }));
      const app = await durably('release', () => this.db.getRepository(AppEntity).findOneByOrFail({ id: target.id }));
      const current = app.currentReleaseId ? await durably('release', () => this.db.getRepository(ReleaseEntity).findOneBy({ id: app.currentReleaseId! })) : null;
      const spec = make(current);
      const release = await durably('release', () => this.transaction(async (m) => {
        const [{ last_version: version }] = (await m.query('UPDATE apps SET last_version = last_version + 1 WHERE id = $1 RETURNING last_version', [app.id]))[0] as [{ last_version: number }];
        if (spec.config) await m.update(AppEntity, { id: app.id }, { config: spec.config });
        const release = await m.save(
          ReleaseEntity,
          m.create(ReleaseEntity, { appId: app.id, version, slugId: spec.slugId, commit: spec.commit, config: spec.config ?? app.config, description: spec.description, status: 'pending', operationId: op.id }),
        );
        await setTarget(m, { version });
        await this.emit(m, { type: 'release.created', pipeline: pipeline.name, app: app.name, operationId: op.id, via: 'system', message: `${app.name} v${version}: ${spec.description}`, data: { version, commit: spec.commit, stage: app.stage } });
        return release;
      }));

      let output = '';
      const fail = async (why: string) => {
        await durably('release outcome', () =>
          this.transaction(async (m) => {
            await m.update(ReleaseEntity, { id: release.id }, { status: 'failed', output });
            await setTarget(m, { status: 'failed', error: why });
            await this.emit(m, { type: 'release.failed', pipeline: pipeline.name, app: app.name, operationId: op.id, via: 'system', message: `${app.name} v${release.version} failed: ${why}`, data: { version: release.version, commit: release.commit, stage: app.stage } });
          }),
        );
      };
      const slug = spec.slugId ? await durably('release', () => this.db.getRepository(SlugEntity).findOneByOrFail({ id: spec.slugId! })) : null;
      if (slug) {
        const releaseSpec: ReleaseSpec = { app: app.name, releaseId: release.id, version: release.version, slugId: slug.id, procfile: slug.procfile, config: release.config };
        if (slug.procfile.release) await progress(`Running release phase for ${app.name} v${release.version}...`, app.name);
        let phase: { code: number };
        try {
          phase = await this.platform.releasePhase(releaseSpec, (chunk) => {
            output += chunk;
          });
        } catch (err) {
          // The release phase could not even start (no slug tree, no sandbox): the release fails, it is never left pending.
          output += `\n${err instanceof Error ? err.message : String(err)}\n`;
          return fail(`the release phase could not start; see \`releases:output ${app.name} v${release.version}\``);
        }
        if (phase.code !== 0) return fail(`release phase exited with ${phase.code}; see \`releases:output ${app.name} v${release.version}\``);
        await progress(`Starting ${app.name} v${release.version}...`, app.name);
        try {
          await this.platform.start(releaseSpec, (chunk) => {
            output += chunk;
          });
        } catch (err) {
          output += `\n${err instanceof Error ? err.message : String(err)}\n`;
          return fail(`processes did not start; see \`releases:output ${app.name} v${release.version}\``);
        }
      }
      await durably('release outcome', () =>
        this.transaction(async (m) => {
          await m.update(ReleaseEntity, { id: release.id }, { status: 'succeeded', output });
          await m.update(AppEntity, { id: app.id }, { currentReleaseId: release.id });
          await setTarget(m, { status: 'succeeded' });
          await this.emit(m, { type: 'release.succeeded', pipeline: pipeline.name, app: app.name, operationId: op.id, via: 'system', message: `${app.name} v${release.version} is live`, data: { version: release.version, commit: release.commit, stage: app.stage, url: this.platform.url(app.name) } });
        }),
      );
    });
  }

  // ---------------------------------------------------------------- CI and auto-deploy

  async setCi(actor: Actor, pipelineName: string, enabled: boolean): Promise<{ pipeline: string; ci: boolean }> {
    const pipeline = await this.authorize(actor, pipelineName, REQUIRED.manageApps, `ci:${enabled ? 'enable' : 'disable'} ${pipelineName}`);
    await this.transaction(async (m) => {
      await m.update(PipelineEntity, { id: pipeline.id }, { ciEnabled: enabled });
      await this.emit(m, { type: `ci.${enabled ? 'enabled' : 'disabled'}`, pipeline: pipeline.name, actor: actor.name, via: actor.via, message: `${actor.name} turned CI ${enabled ? 'on' : 'off'} for ${pipeline.name}` });
    });
    return { pipeline: pipeline.name, ci: enabled };
  }

  async setAutodeploy(actor: Actor, pipelineName: string, setting: { branch: string; stage?: string; waitForCi?: boolean } | null): Promise<{ pipeline: string; autodeploy: Pipeline['autodeploy'] }> {
    const pipeline = await this.authorize(actor, pipelineName, REQUIRED.manageApps, `autodeploy:${setting ? 'enable' : 'disable'} ${pipelineName}`);
    if (setting) assertRef(setting.branch);
    const autodeploy = setting ? { branch: setting.branch, stage: parseStage(setting.stage ?? 'staging'), waitForCi: !!setting.waitForCi } : null;
    if (autodeploy?.waitForCi && !pipeline.ciEnabled) throw new InvalidInput(`--wait-for-ci needs CI on ${pipeline.name}: run \`ci:enable ${pipeline.name}\` first`);
    await this.transaction(async (m) => {
      await m.update(PipelineEntity, { id: pipeline.id }, { autodeploy });
      await this.emit(m, {
        type: 'autodeploy.changed',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: autodeploy ? `${actor.name}: pushes to ${autodeploy.branch} deploy to ${autodeploy.stage}${autodeploy.waitForCi ? ' once CI passes' : ''}` : `${actor.name} turned auto-deploy off for ${pipeline.name}`,
        data: { autodeploy },
      });
    });
    return { pipeline: pipeline.name, autodeploy };
  }

  async testRuns(actor: Actor, pipelineName: string): Promise<TestRunView[]> {
    const pipeline = await this.authorize(actor, pipelineName, REQUIRED.read, `ci ${pipelineName}`);
    const runs = await this.db.getRepository(TestRunEntity).find({ where: { pipelineId: pipeline.id }, order: { number: 'DESC' }, take: 20 });
    return runs.map(testRunView);
  }

  async testRunInfo(actor: Actor, pipelineName: string, number: number): Promise<TestRunView & { output: string }> {
    const pipeline = await this.authorize(actor, pipelineName, REQUIRED.read, `ci:info ${pipelineName}`);
    const run = await this.db.getRepository(TestRunEntity).findOneBy({ pipelineId: pipeline.id, number });
    if (!run) throw new NotFound(`${pipeline.name} has no test run #${number}; \`ci ${pipeline.name}\` lists them`);
    return { ...testRunView(run), output: run.output };
  }

  /** Runs the tests of a commit again (default: the latest run's). */
  async rerunTests(actor: Actor, pipelineName: string, number?: number): Promise<TestRunView> {
    const pipeline = await this.authorize(actor, pipelineName, REQUIRED.deploy, `ci:rerun ${pipelineName}`);
    const runs = this.db.getRepository(TestRunEntity);
    const previous = number === undefined ? await runs.findOne({ where: { pipelineId: pipeline.id }, order: { number: 'DESC' } }) : await runs.findOneBy({ pipelineId: pipeline.id, number });
    if (!previous) throw new NotFound(number === undefined ? `${pipeline.name} has no test runs yet` : `${pipeline.name} has no test run #${number}`);
    return testRunView(await this.startTestRun(pipeline, previous.commit, previous.branch, actor));
  }

  async cancelTests(actor: Actor, pipelineName: string, number: number): Promise<TestRunView> {
    const pipeline = await this.authorize(actor, pipelineName, REQUIRED.manageApps, `ci:cancel ${pipelineName}`);
    const run = await this.db.getRepository(TestRunEntity).findOneBy({ pipelineId: pipeline.id, number });
    if (!run) throw new NotFound(`${pipeline.name} has no test run #${number}`);
    if (!['pending', 'building', 'running'].includes(run.status)) throw new Conflict(`test run #${number} has already ended (${run.status})`);
    await this.setTestRunStatus(pipeline, run, 'cancelled', `${actor.name} cancelled it`);
    this.testAborts.get(run.id)?.abort();
    return testRunView({ ...run, status: 'cancelled' });
  }

  /**
   * A push arrived from the source host: a test run when CI is on, and a deploy
   * when the branch auto-deploys without waiting for CI.
   */
  async onPush(repo: string, branch: string, sha: string, pusher: string): Promise<void> {
    const pipelines = await this.db.getRepository(PipelineEntity).findBy({ repo });
    const actor: Actor = { ...SYSTEM, name: pusher, via: 'github' };
    for (const pipeline of pipelines) {
      if (pipeline.ciEnabled) await this.startTestRun(pipeline, sha, branch, actor);
      if (pipeline.autodeploy?.branch === branch && !pipeline.autodeploy.waitForCi) await this.autodeploy(pipeline, sha, actor);
    }
  }

  private async autodeploy(pipeline: Pipeline, sha: string, actor: Actor): Promise<void> {
    const setting = pipeline.autodeploy!;
    try {
      await this.deploy({ ...SYSTEM, name: actor.name, via: actor.via }, { pipeline: pipeline.name, ref: sha, stage: setting.stage });
    } catch (err) {
      await this.transaction((m) =>
        this.emit(m, { type: 'autodeploy.failed', pipeline: pipeline.name, via: 'system', message: `Auto-deploy of ${short(sha)} to ${setting.stage} did not start: ${err instanceof Error ? err.message : String(err)}` }),
      );
    }
  }

  private async startTestRun(pipeline: Pipeline, sha: string, branch: string | null, actor: Actor): Promise<TestRun> {
    const run = await this.transaction(async (m) => {
      const [{ last_test_run: number }] = (await m.query('UPDATE pipelines SET last_test_run = last_test_run + 1 WHERE id = $1 RETURNING last_test_run', [pipeline.id]))[0] as [{ last_test_run: number }];
      const run = await m.save(TestRunEntity, m.create(TestRunEntity, { pipelineId: pipeline.id, number, commit: sha, branch, status: 'pending', runnerId: this.runnerId }));
      await this.emit(m, { type: 'testrun.pending', pipeline: pipeline.name, actor: actor.name, via: actor.via, message: `Test run #${number} of ${short(sha)}${branch ? ` on ${branch}` : ''} is pending`, data: { number, sha, branch } });
      return run;
    });
    const abort = new AbortController();
    this.testAborts.set(run.id, abort);
    // The run's status changes wait out a database outage, so a run that finished is not reported errored for want of a connection.
    const setStatus = (status: TestRun['status'], why?: string, output?: string) =>
      untilDatabaseAnswers({ testRun: run.id, step: status }, () => this.setTestRunStatus(pipeline, run, status, why, output));
    void this.jobs.add(async () => {
      let output = '';
      try {
        const source = await this.source(pipeline);
        await setStatus('building');
        const slug = await this.builds.add(() =>
          this.platform.build(
            source,
            sha,
            (chunk) => {
              output += chunk;
            },
            pipeline.repo,
          ),
        );
        await untilDatabaseAnswers({ testRun: run.id, step: 'slug' }, () => this.db.getRepository(SlugEntity).upsert({ id: slug.id, size: String(slug.size), commit: sha, procfile: slug.procfile }, ['id']));
        if (!(await setStatus('running', undefined, output))) return;
        const result = await this.platform.runTests(slug.id, (chunk) => (output += chunk), abort.signal);
        const status = result.code === null ? 'errored' : result.code === 0 ? 'succeeded' : 'failed';
        if (!(await setStatus(status, undefined, output))) return;
        // What a green run starts (an auto-deploy, review apps) reports its own failures; the run stays green.
        if (status === 'succeeded') await this.afterGreenRun(pipeline.id, run).catch((err: unknown) => log.error({ testRun: run.id, err }, 'auto-deploy after a green test run did not start'));
      } catch (err) {
        await setStatus('errored', err instanceof Error ? err.message : String(err), output);
      } finally {
        this.testAborts.delete(run.id);
      }
    }).catch((err: unknown) => log.error({ testRun: run.id, err }, 'test run outcome not recorded'));
    return run;
  }

  /** A green run on the auto-deploy branch deploys, once every other status on the commit is green too. */
  private async afterGreenRun(pipelineId: number, run: TestRun): Promise<void> {
    const pipeline = await this.db.getRepository(PipelineEntity).findOneByOrFail({ id: pipelineId });
    if (pipeline.reviewApps?.autodeploy && pipeline.reviewApps.waitForCi) {
      const waiting = await this.db.getRepository(ReviewAppEntity).findBy({ pipelineId, headSha: run.commit, fork: false });
      for (const row of waiting.filter((r) => r.status !== 'deleting' && r.status !== 'deleted')) await this.ensureReviewApp(pipeline, row, { ...SYSTEM, name: 'ci', via: 'github' });
    }
    const setting = pipeline.autodeploy;
    if (!setting?.waitForCi || setting.branch !== run.branch) return;
    const source = await this.source(pipeline);
    const others = hasCommitStatuses(source) ? await source.otherStatuses(run.commit, CI_CONTEXT) : 'success';
    if (others !== 'success') {
      await this.transaction((m) =>
        this.emit(m, { type: 'autodeploy.skipped', pipeline: pipeline.name, via: 'system', message: `Not deploying ${short(run.commit)}: other checks on the commit are ${others}`, data: { sha: run.commit } }),
      );
      return;
    }
    await this.autodeploy(pipeline, run.commit, { ...SYSTEM, name: 'ci', via: 'github' });
  }

  /** Moves a run to `status` unless it was cancelled meanwhile; false when it was. Writes the event with it. */
  private async setTestRunStatus(pipeline: Pipeline, run: TestRun, status: TestRun['status'], why?: string, output?: string): Promise<boolean> {
    return this.transaction(async (m) => {
      const current = await m.findOneByOrFail(TestRunEntity, { id: run.id });
      if (current.status === 'cancelled' && status !== 'cancelled') return false;
      await m.update(TestRunEntity, { id: run.id }, { status, ...(output !== undefined ? { output: output + (why ? `\n${why}\n` : '') } : {}) });
      await this.emit(m, {
        type: `testrun.${status}`,
        pipeline: pipeline.name,
        via: 'system',
        message: `Test run #${run.number} of ${short(run.commit)} ${status}${why ? `: ${why.split('\n')[0]}` : ''}`,
        data: { number: run.number, sha: run.commit, branch: run.branch },
      });
      return true;
    });
  }

  /**
   * Records that the source host refused something flowops reported to it
   * (a commit status, a deployment) for good, as an event of the pipeline:
   * the audit trail keeps it and the pipeline's feeds show it.
   */
  async recordRefusal(event: { type: 'github.status_refused' | 'github.deployment_refused'; pipeline: string; app: string | null; message: string; data: Record<string, unknown> }): Promise<void> {
    await this.transaction((m) => this.emit(m, { ...event, via: 'system' }));
  }

  /** The source of a pipeline by name, for fronts that report to its host (commit statuses). */
  async sourceOf(pipelineName: string): Promise<Source | null> {
    const pipeline = await this.db.getRepository(PipelineEntity).findOneBy({ name: pipelineName });
    return pipeline ? this.source(pipeline) : null;
  }

  // ---------------------------------------------------------------- review apps

  async setReviewApps(actor: Actor, pipelineName: string, settings: Partial<ReviewAppSettings> | null): Promise<{ pipeline: string; reviewApps: ReviewAppSettings | null }> {
    const pipeline = await this.authorize(actor, pipelineName, REQUIRED.manageApps, `reviewapps:${settings ? 'enable' : 'disable'} ${pipelineName}`);
    const staleDays = settings?.staleDays ?? 5;
    if (!Number.isInteger(staleDays) || staleDays < 1 || staleDays > 30) throw new InvalidInput('--stale-days must be a whole number of days from 1 to 30 (as on Heroku)');
    if (settings && !pipeline.repo.startsWith('github:')) throw new InvalidInput(`review apps follow pull requests on GitHub: connect ${pipeline.name} to a repository with --repo github:owner/name`);
    const reviewApps = settings ? { autodeploy: !!settings.autodeploy, autodestroy: !!settings.autodestroy, staleDays, waitForCi: !!settings.waitForCi } : null;
    if (reviewApps?.waitForCi && !pipeline.ciEnabled) throw new InvalidInput(`--wait-for-ci needs CI on ${pipeline.name}: run \`ci:enable ${pipeline.name}\` first`);
    await this.transaction(async (m) => {
      await m.update(PipelineEntity, { id: pipeline.id }, { reviewApps });
      await this.emit(m, { type: 'reviewapps.changed', pipeline: pipeline.name, actor: actor.name, via: actor.via, message: `${actor.name} turned review apps ${reviewApps ? 'on' : 'off'} for ${pipeline.name}`, data: { reviewApps } });
    });
    return { pipeline: pipeline.name, reviewApps };
  }

  async reviewApps(actor: Actor, pipelineName: string): Promise<ReviewAppView[]> {
    const pipeline = await this.authorize(actor, pipelineName, REQUIRED.read, `reviewapps ${pipelineName}`);
    const rows = await this.db.getRepository(ReviewAppEntity).find({ where: { pipelineId: pipeline.id }, order: { pr: 'DESC' } });
    return rows.map((r) => ({ pr: r.pr, app: r.appName, branch: r.branch, commit: r.headSha, status: r.status, url: r.status === 'created' ? this.platform.url(r.appName) : null, error: r.error }));
  }

  /** Creates (or updates) the review app of a pull request flowops has seen. */
  async createReviewApp(actor: Actor, pipelineName: string, pr: number): Promise<ReviewAppView> {
    const pipeline = await this.authorize(actor, pipelineName, REQUIRED.deploy, `reviewapps:create ${pipelineName}`);
    const row = await this.db.getRepository(ReviewAppEntity).findOneBy({ pipelineId: pipeline.id, pr });
    if (!row) throw new NotFound(`flowops has not seen pull request #${pr} of ${pipeline.name} yet (it learns of them from GitHub's pull_request webhooks)`);
    await this.ensureReviewApp(pipeline, row, actor);
    return (await this.reviewApps(actor, pipelineName)).find((r) => r.pr === pr)!;
  }

  async destroyReviewApp(actor: Actor, pipelineName: string, pr: number): Promise<ReviewAppView> {
    const pipeline = await this.authorize(actor, pipelineName, REQUIRED.deploy, `reviewapps:destroy ${pipelineName}`);
    const row = await this.db.getRepository(ReviewAppEntity).findOneBy({ pipelineId: pipeline.id, pr });
    if (!row || row.status === 'deleted') throw new NotFound(`${pipeline.name} has no review app for pull request #${pr}`);
    await this.removeReviewApp(pipeline, row, actor);
    return (await this.reviewApps(actor, pipelineName)).find((r) => r.pr === pr)!;
  }

  /**
   * A pull request changed on the source host. Opened or reopened: a review app
   * (unless it comes from a fork); a push to it: the review app is redeployed;
   * closed or merged: it is destroyed, after app.json's pr-predestroy script.
   */
  async onPullRequest(event: { repo: string; action: string; pr: number; branch: string; sha: string; fork: boolean; title?: string; merged?: boolean; author?: string }): Promise<void> {
    const pipelines = await this.db.getRepository(PipelineEntity).findBy({ repo: event.repo });
    const actor: Actor = { ...SYSTEM, name: 'github', via: 'github' };
    const what = event.action === 'closed' ? (event.merged ? 'merged' : 'closed') : event.action === 'opened' || event.action === 'reopened' ? 'opened' : null;
    if (what) {
      await this.transaction(async (m) => {
        for (const pipeline of pipelines) {
          await this.emit(m, {
            type: `pullrequest.${what}`,
            pipeline: pipeline.name,
            actor: event.author ?? null,
            via: 'github',
            message: `Pull request #${event.pr}${event.title ? ` "${event.title}"` : ''} (${event.branch}) ${what}${event.author ? ` by ${event.author}` : ''}`,
            data: { pr: event.pr, branch: event.branch, sha: event.sha },
          });
        }
      });
    }
    for (const pipeline of pipelines.filter((p) => p.reviewApps)) {
      const repo = this.db.getRepository(ReviewAppEntity);
      let row = await repo.findOneBy({ pipelineId: pipeline.id, pr: event.pr });
      if (event.action === 'closed') {
        if (row && row.status !== 'deleted') await this.removeReviewApp(pipeline, row, actor);
        continue;
      }
      if (!['opened', 'reopened', 'synchronize'].includes(event.action)) continue;
      const appName = `${pipeline.name}-pr-${event.pr}`.slice(0, 30);
      if (!row) {
        await repo.insert({ pipelineId: pipeline.id, pr: event.pr, branch: event.branch, headSha: event.sha, fork: event.fork, status: 'pending', appName, lastPushAt: new Date() });
      } else {
        await repo.update({ id: row.id }, { branch: event.branch, headSha: event.sha, lastPushAt: new Date(), ...(row.status === 'deleted' ? { status: 'pending' as const, error: null } : {}) });
      }
      row = await repo.findOneByOrFail({ pipelineId: pipeline.id, pr: event.pr });
      const settings = pipeline.reviewApps!;
      const wanted = settings.autodeploy && !row.fork && (event.action !== 'synchronize' || row.status === 'created' || row.status === 'errored');
      if (wanted && !settings.waitForCi) await this.ensureReviewApp(pipeline, row, actor);
    }
  }

  /** Destroys review apps with no push for the pipeline's stale-days, where autodestroy is on. */
  async destroyStaleReviewApps(): Promise<void> {
    const pipelines = (await this.db.getRepository(PipelineEntity).find()).filter((p) => p.reviewApps?.autodestroy);
    for (const pipeline of pipelines) {
      const cutoff = new Date(Date.now() - pipeline.reviewApps!.staleDays * 86_400_000);
      const stale = await this.db.getRepository(ReviewAppEntity).createQueryBuilder('r').where('r.pipeline_id = :id AND r.status = :created AND r.last_push_at < :cutoff', { id: pipeline.id, created: 'created', cutoff }).getMany();
      for (const row of stale) await this.removeReviewApp(pipeline, row, { ...SYSTEM, name: 'autodestroy' });
    }
  }

  private async setReviewAppStatus(pipeline: Pipeline, row: ReviewApp, status: ReviewApp['status'], error: string | null = null): Promise<void> {
    await this.transaction(async (m) => {
      await m.update(ReviewAppEntity, { id: row.id }, { status, error });
      await this.emit(m, {
        type: `reviewapp.${status}`,
        pipeline: pipeline.name,
        app: row.appName,
        via: 'system',
        message: `Review app ${row.appName} for #${row.pr} (${row.branch}) ${status}${error ? `: ${error}` : ''}`,
        data: { pr: row.pr, branch: row.branch, sha: row.headSha, url: status === 'created' ? this.platform.url(row.appName) : null },
      });
    });
  }

  /** Creates the review app if it does not exist (config from app.json), then deploys the PR's head to it. Idempotent. */
  private async ensureReviewApp(pipeline: Pipeline, row: ReviewApp, actor: Actor): Promise<void> {
    const source = await this.source(pipeline);
    const first = !(await this.db.getRepository(AppEntity).existsBy({ name: row.appName }));
    let appJson: AppJson;
    try {
      appJson = parseAppJson(await source.readFile(row.headSha, 'app.json'));
    } catch (err) {
      if (!(err instanceof InvalidInput)) throw err;
      return this.setReviewAppStatus(pipeline, row, 'errored', err.message);
    }
    if (first) {
      let config: Record<string, string>;
      try {
        config = reviewConfig(appJson, { app: row.appName, branch: row.branch, pr: row.pr });
      } catch (err) {
        if (err instanceof InvalidInput) return this.setReviewAppStatus(pipeline, row, 'errored', err.message);
        throw err;
      }
      await this.setReviewAppStatus(pipeline, row, 'creating');
      await this.transaction(async (m) => {
        await m.insert(AppEntity, { name: row.appName, pipelineId: pipeline.id, stage: 'review', config });
        await this.emit(m, { type: 'app.created', pipeline: pipeline.name, app: row.appName, actor: actor.name, via: actor.via, message: `Review app ${row.appName} created for #${row.pr}`, data: { stage: 'review' } });
      });
    }
    const op = await this.deploy({ ...SYSTEM, name: actor.name, via: actor.via }, { pipeline: pipeline.name, ref: row.headSha, stage: 'review', app: row.appName });
    const done = await this.outcome(op.id);
    if (done.status !== 'succeeded') return this.setReviewAppStatus(pipeline, row, 'errored', done.error ?? done.targets[0]?.error ?? 'the deploy failed');
    const postdeploy = typeof appJson.scripts?.postdeploy === 'string' ? appJson.scripts.postdeploy : appJson.scripts?.postdeploy?.command;
    if (first && typeof postdeploy === 'string' && postdeploy) {
      const app = await this.db.getRepository(AppEntity).findOneByOrFail({ name: row.appName });
      const release = await this.db.getRepository(ReleaseEntity).findOneByOrFail({ id: app.currentReleaseId! });
      const result = await this.platform.runCommand(release.slugId!, postdeploy, app.config, () => undefined);
      if (result.code !== 0) return this.setReviewAppStatus(pipeline, row, 'errored', `postdeploy exited with ${result.code}: ${result.output.trim().split('\n').pop()}`);
    }
    await this.setReviewAppStatus(pipeline, row, 'created');
  }

  private async removeReviewApp(pipeline: Pipeline, row: ReviewApp, actor: Actor): Promise<void> {
    await this.setReviewAppStatus(pipeline, row, 'deleting');
    let app = await this.db.getRepository(AppEntity).findOneBy({ name: row.appName });
    if (app?.lockedBy) {
      // A push's redeploy may still be running: let it finish before the app goes.
      await this.outcome(app.lockedBy);
      app = await this.db.getRepository(AppEntity).findOneBy({ name: row.appName });
    }
    if (app) {
      const release = app.currentReleaseId ? await this.db.getRepository(ReleaseEntity).findOneBy({ id: app.currentReleaseId }) : null;
      const source = await this.source(pipeline);
      const appJson = release?.commit ? await source.readFile(release.commit, 'app.json').then(parseAppJson).catch(() => ({}) as AppJson) : {};
      const predestroy = appJson.scripts?.['pr-predestroy'];
      if (typeof predestroy === 'string' && predestroy && release?.slugId) await this.platform.runCommand(release.slugId, predestroy, app.config, () => undefined);
      await this.removeApp({ ...SYSTEM, name: actor.name, via: actor.via }, app, pipeline);
    }
    await this.setReviewAppStatus(pipeline, row, 'deleted');
  }

  // ---------------------------------------------------------------- helpers

  private transaction<T>(work: (m: EntityManager) => Promise<T>): Promise<T> {
    return this.db.transaction(work).then((result) => {
      this.notify();
      return result;
    });
  }

  private async emit(m: EntityManager, event: Partial<FlowEvent> & Pick<FlowEvent, 'type' | 'via' | 'message'>): Promise<void> {
    await m.insert(EventEntity, { pipeline: null, app: null, operationId: null, actor: null, ...event, data: (event.data ?? {}) as never });
  }

  private async source(pipeline: Pipeline): Promise<Source> {
    let source = this.sources.get(pipeline.repo);
    if (!source) {
      source = this.options.openSource(pipeline.repo);
      source.catch(() => this.sources.delete(pipeline.repo));
      this.sources.set(pipeline.repo, source);
    }
    return source;
  }

  private async permissionOf(actor: Actor, pipelineId: number): Promise<Permission | null> {
    if (actor.admin) return 'manage';
    const grant = await this.db.getRepository(GrantEntity).findOneBy({ pipelineId, userId: actor.id });
    return grant?.permission ?? null;
  }

  /** The pipeline, if the actor holds `needed` on it; otherwise a denial that says what to ask for. */
  private async authorize(actor: Actor, pipelineName: string, needed: Permission, command: string): Promise<Pipeline> {
    const pipeline = await this.db.getRepository(PipelineEntity).findOneBy({ name: pipelineName });
    const allowed = pipeline ? await this.check(actor, pipeline, needed, command) : null;
    if (!allowed) throw new NotFound(`no pipeline "${pipelineName}" that you can see; \`pipelines\` lists yours`);
    return allowed;
  }

  private async authorizeApp(actor: Actor, appName: string, needed: Permission, command: string): Promise<{ app: App; pipeline: Pipeline }> {
    const app = await this.db.getRepository(AppEntity).findOneBy({ name: appName });
    const pipeline = app ? await this.db.getRepository(PipelineEntity).findOneBy({ id: app.pipelineId }) : null;
    if (!app || !pipeline || !(await this.check(actor, pipeline, needed, command))) {
      throw new NotFound(`no app "${appName}" that you can see; \`pipelines:info <pipeline>\` lists a pipeline's apps`);
    }
    return { app, pipeline };
  }

  /**
   * The pipeline if the actor holds `needed` on it; null if the actor holds nothing there
   * (so callers say "not found" and no name leaks); a denial that says what to ask for otherwise.
   */
  private async check(actor: Actor, pipeline: Pipeline, needed: Permission, command: string): Promise<Pipeline | null> {
    const held = await this.permissionOf(actor, pipeline.id);
    if (held === null) return null;
    if (!permits(held, needed)) {
      log.warn({ pipeline: pipeline.name, actor: actor.name, needed, held }, 'operation denied');
      throw new PermissionDenied(`\`${command}\` needs ${needed} on ${pipeline.name}; you have ${held}. Ask an admin: \`access:add ${pipeline.name} ${actor.name} ${needed}\``);
    }
    return pipeline;
  }

  private async findUser(name: string): Promise<User> {
    const user = await this.db.getRepository(UserEntity).findOneBy({ name });
    if (!user) throw new NotFound(`no user "${name}"; an admin creates one with \`users:create ${name}\``);
    return user;
  }

  private async pipelineApp(pipeline: Pipeline, name: string): Promise<App> {
    const app = await this.db.getRepository(AppEntity).findOneBy({ name, pipelineId: pipeline.id });
    if (!app) throw new NotFound(`no app "${name}" in pipeline ${pipeline.name}; \`pipelines:info ${pipeline.name}\` lists its apps`);
    return app;
  }

  /** The apps of a stage (or the one named app, which must be in that stage); never empty. */
  private async stageApps(pipeline: Pipeline, stage: Stage, appName?: string): Promise<App[]> {
    if (appName) {
      const app = await this.pipelineApp(pipeline, appName);
      if (app.stage !== stage) throw new InvalidInput(`${app.name} is in ${app.stage}, not ${stage}`);
      return [app];
    }
    const apps = await this.db.getRepository(AppEntity).find({ where: { pipelineId: pipeline.id, stage }, order: { name: 'ASC' } });
    if (!apps.length) throw new InvalidInput(`${pipeline.name} has no app in ${stage}; add one: \`apps:create ${pipeline.name}-${stage} --pipeline ${pipeline.name} --stage ${stage}\``);
    return apps;
  }

  private async currentReleases(apps: App[]): Promise<Map<number, Release>> {
    const ids = apps.map((a) => a.currentReleaseId).filter((id): id is number => id !== null);
    const releases = ids.length ? await this.db.getRepository(ReleaseEntity).findBy({ id: In(ids) }) : [];
    return new Map(releases.map((r) => [r.appId, r]));
  }

  private appView(app: App, pipeline: Pipeline, release: Release | null): AppView {
    return { name: app.name, pipeline: pipeline.name, stage: app.stage, url: this.platform.url(app.name), release: release ? releaseView(release, app.currentReleaseId) : null };
  }

  private operationView(op: Operation, pipeline: Pipeline | null): OperationView {
    return { id: op.id, kind: op.kind, pipeline: pipeline?.name ?? null, status: op.status, description: op.description, targets: op.targets, error: op.error, createdAt: op.createdAt.toISOString() };
  }
}


function describeTargets(targets: App[], stage: Stage): string {
  return `${targets.map((t) => t.name).join(', ')} (${stage})`;
}

/** A feed is a Slack channel, named by its id (in Slack, a #channel mention becomes one). */
function assertChannel(channel: string): void {
  if (!CHANNEL.test(channel)) throw new InvalidInput(`"${channel.slice(0, 60)}" is not a Slack channel id (like C0123ABCD): give --channel the channel's id, or in Slack mention the #channel`);
}


