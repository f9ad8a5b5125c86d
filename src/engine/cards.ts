import { In } from 'typeorm';
import type { Stage } from '../db/entities.ts';
import {
  AppEntity,
  BuildEntity,
  EventEntity,
  OperationEntity,
  PipelineEntity,
  PullRequestEntity,
  ReleaseEntity,
  ReviewAppEntity,
  TestRunEntity,
  UserEntity,
  type App,
  type FlowEvent,
  type Operation,
  type Pipeline,
  type Release,
  type TestRun,
} from '../db/entities.ts';
import type { Commit } from '../source/source.ts';
import { REQUIRED, type Actor } from './access.ts';
import { InvalidInput } from '../errors.ts';
import { movedOn } from './releases.ts';
import type { Access } from './access-control.ts';
import type { CommitLog, CommitLogs } from './commit-logs.ts';
import type { EngineContext } from './context.ts';
import type { DeployLocks } from './deploy-locks.ts';
import type { ApprovalGate } from './approvals.ts';
import { feedKindOf, type FEED_EVENTS, type FeedOptIn } from './feeds.ts';
import type { NudgeAudience } from './nudge-kinds.ts';
import type { Nudges } from './nudges.ts';
import type { Operations } from './operations.ts';
import type { Pipelines } from './pipelines.ts';
import { DOWNSTREAM } from './stages.ts';
import { parseSubject, subjectKey } from './subjects.ts';
import type {
  ApprovalReport,
  LockView,
  OperationDetails,
  OperationReport,
  Person,
  PromoteOffer,
  PromotePreview,
  NudgeReport,
  PullRequestReport,
  PushReport,
  ReleaseFate,
  ReleaseRef,
  ReportTarget,
  RollbackOffer,
  TestRunBrief,
} from './views.ts';

/** How much of a failure's output a message quotes: its end, where the error is. */
const OUTPUT_TAIL = 4000;

export type FeedKind = (typeof FEED_EVENTS)[number];

/** What an event means for the fronts' messages. */
export interface EventSubjects {
  /** Subjects whose messages are now behind. */
  touch: string[];
  /**
   * Subjects that get a message (where they have none yet): in the pipeline's
   * feeds of this kind, in its feeds that asked for an opt-in, or to a person
   * directly (their chat account, `slack:<team>:<user>`).
   */
  post: ({ subject: string; feed: FeedKind } | { subject: string; optIn: FeedOptIn } | { subject: string; person: string })[];
  /** Something ended in the pipeline: messages that still show buttons are redrawn (and retired when stale). */
  retire: boolean;
}

export type SubjectReport =
  | { kind: 'op'; report: OperationReport }
  | { kind: 'pr'; report: PullRequestReport }
  | { kind: 'push'; report: PushReport }
  | { kind: 'event'; report: { event: FlowEvent; repo: null } }
  | { kind: 'approval'; report: ApprovalReport }
  | { kind: 'nudge'; report: NudgeReport };

const NOTHING: EventSubjects = { touch: [], post: [], retire: false };
/** Events that change what a pipeline's buttons can do without an operation: an app gone or moved, the pipeline gone. */
const RETIRING = new Set(['app.destroyed', 'app.moved', 'pipeline.destroyed']);
/** The Slack user id (`U…`) of a chat account `slack:<team>:<user>`, for a mention. */
const slackIdOf = (externalId: string | null | undefined) => /^slack:[^:]*:([UW][A-Z0-9]{1,20})$/.exec(externalId ?? '')?.[1] ?? null;
const tail = (text: string) => (text.length > OUTPUT_TAIL ? text.slice(-OUTPUT_TAIL) : text);
export const ref = (app: string, r: Release): ReleaseRef => ({ app, version: r.version, commit: r.commit });

/**
 * What promoting `head` to the downstream apps (running `bases`) would ship,
 * given the log of each range (null: the source could not list it). The app
 * furthest behind decides; null when every downstream app runs it already.
 */
export function promoteOfferOf(
  to: { downstream: Stage; apps: string[]; bases: (string | null)[]; head: string },
  logOf: (base: string | null) => CommitLog | null,
): PromoteOffer | null {
  const { downstream, apps, bases, head } = to;
  const first = bases.every((b) => b === null);
  let offer: PromoteOffer | null = null;
  for (const base of new Set(bases)) {
    if (base === head) continue;
    const log = logOf(base);
    if (!log) return { downstream, apps, ahead: 0, commits: [], first, base, unlisted: true };
    if (!offer || log.ahead > offer.ahead) offer = { downstream, apps, ...log, first, base };
  }
  return offer && (offer.ahead > 0 || offer.base === null) ? offer : null;
}

/** The branch whose pushes get a message of their own: the one that auto-deploys, else the pipeline's. */
function deployBranch(pipeline: Pipeline): string {
  return pipeline.autodeploy?.branch ?? pipeline.branch;
}

/**
 * What the fronts' messages show, front-agnostic: one report per subject (an
 * operation, a pull request, a push to the deploy branch), read from what
 * flowops recorded, and which subjects each event concerns. Reports carry the
 * state of things now, so a message redrawn late (after a restart) is right.
 */
export class Cards {
  constructor(
    private readonly ctx: EngineContext,
    private readonly authz: Access,
    private readonly pipelines: Pipelines,
    private readonly operations: Operations,
    private readonly locks: DeployLocks,
    private readonly gate: ApprovalGate,
    private readonly commitLogs: CommitLogs,
    private readonly nudges: Nudges,
  ) {}

  /**
   * What each app of a pipeline offers now, for a board: Promote where the app
   * runs something its downstream stage does not, Rollback where a production
   * app has an earlier good release.
   */
  async offers(
    actor: Actor,
    pipelineName: string,
  ): Promise<Record<string, { promote: PromoteOffer | null; rollback: RollbackOffer | null }>> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.read, `pipelines:info ${pipelineName}`);
    const apps = await this.ctx.db.getRepository(AppEntity).find({ where: { pipelineId: pipeline.id }, order: { name: 'ASC' } });
    const running = await this.pipelines.currentReleases(apps);
    const offers: Record<string, { promote: PromoteOffer | null; rollback: RollbackOffer | null }> = {};
    for (const app of apps) {
      const release = running.get(app.id);
      offers[app.name] =
        release?.status === 'succeeded'
          ? { promote: await this.promoteOffer(pipeline, app, release), rollback: await this.rollbackOffer(pipeline, app, release) }
          : { promote: null, rollback: null };
    }
    return offers;
  }

  /**
   * What promoting the release `ifVersion` of `fromApp` would do, for the
   * promote dialog: the commits it ships, the downstream apps, the approvals
   * and locks in the way. Refused (StaleRelease) once the app has moved on.
   */
  async promotePreview(actor: Actor, input: { pipeline: string; fromApp: string; ifVersion: number }): Promise<PromotePreview> {
    const pipeline = await this.authz.authorize(actor, input.pipeline, REQUIRED.promote, `promote ${input.pipeline}`);
    const app = await this.pipelines.pipelineApp(pipeline, input.fromApp);
    const release = app.currentReleaseId ? await this.ctx.db.getRepository(ReleaseEntity).findOneBy({ id: app.currentReleaseId }) : null;
    const downstream = DOWNSTREAM[app.stage];
    if (!release || release.status !== 'succeeded' || !downstream)
      throw new InvalidInput(`${app.name} has no release to promote; see \`pipelines:info ${pipeline.name}\``);
    if (release.version !== input.ifVersion) throw movedOn(app, release, input.ifVersion);
    const offer = await this.promoteOffer(pipeline, app, release);
    if (!offer)
      throw new InvalidInput(`${downstream} of ${pipeline.name} runs ${app.name} v${release.version} already: nothing to promote`);
    const targets = await this.ctx.db
      .getRepository(AppEntity)
      .find({ where: { pipelineId: pipeline.id, stage: downstream }, order: { name: 'ASC' } });
    const locks = await this.locks.locksOf(pipeline);
    return {
      pipeline: pipeline.name,
      from: ref(app.name, release),
      offer,
      approvals: await this.gate.needed(pipeline, targets),
      locks: [
        ...new Map(
          targets.flatMap((t) => {
            const l = locks.get(t.name);
            return l ? [[l.id, l] as const] : [];
          }),
        ).values(),
      ],
    };
  }

  async subjectsOf(event: FlowEvent): Promise<EventSubjects> {
    if (event.operationId !== null) {
      const op = await this.ctx.db.getRepository(OperationEntity).findOneBy({ id: event.operationId });
      if (!op) return NOTHING;
      const subject = op.cause ?? subjectKey({ kind: 'op', operation: op.id });
      const post: EventSubjects['post'] = [];
      if (event.type === `${op.kind}.started` && event.pipeline) {
        if (!op.cause) post.push({ subject, feed: op.kind });
        else if (op.cause.startsWith('push:')) post.push({ subject, feed: 'deploy' });
      }
      return { touch: [subject], post, retire: event.type === `${op.kind}.succeeded` || event.type === `${op.kind}.failed` };
    }
    if (!event.pipeline) return NOTHING;
    if (event.type.startsWith('nudge.')) {
      // A nudge's own message: to the feeds that asked for nudges, or to its people; a snapshot, never redrawn.
      const { nudge, to } = event.data as { nudge?: unknown; to?: NudgeAudience };
      if (typeof nudge !== 'number' || !to) return NOTHING;
      const subject = subjectKey({ kind: 'nudge', nudge });
      const post: EventSubjects['post'] = 'optIn' in to ? [{ subject, optIn: to.optIn }] : to.people.map((person) => ({ subject, person }));
      return { touch: [subject], post, retire: false };
    }
    const request = (event.data as { request?: unknown }).request;
    if (event.type.startsWith('approval.') && typeof request === 'number') {
      // A request's own message: posted in the feeds that follow what it would run, redrawn as it is decided.
      const subject = subjectKey({ kind: 'approval', request });
      const action = (event.data as { action?: FeedKind }).action;
      return { touch: [subject], post: event.type === 'approval.requested' && action ? [{ subject, feed: action }] : [], retire: false };
    }
    const line = feedKindOf(event.type);
    // A refusal of an intermediate state (pending, then failed) is the same problem as the final one: one line.
    if (line && (event.data as { final?: boolean }).final !== false) {
      const subject = subjectKey({ kind: 'event', event: event.id });
      // A lock taken or ended changes what the pipeline's messages say (and their Unlock buttons).
      return { touch: [subject], post: [{ subject, feed: line }], retire: event.type.startsWith('lock.') };
    }
    if (RETIRING.has(event.type)) return { touch: [], post: [], retire: true };
    const pipeline = await this.ctx.db.getRepository(PipelineEntity).findOneBy({ name: event.pipeline });
    if (!pipeline) return NOTHING;
    const data = event.data as { pr?: number; sha?: string; branch?: string | null };
    const push = (sha: string) => subjectKey({ kind: 'push', pipelineId: pipeline.id, sha });
    const [, family, what] = /^([a-z]+)\.(.+)$/.exec(event.type) ?? [];
    switch (family) {
      case 'github': {
        if (what !== 'push' || !data.sha || data.branch !== deployBranch(pipeline)) return NOTHING;
        const post: EventSubjects['post'] = [];
        if (pipeline.ciEnabled) post.push({ subject: push(data.sha), feed: 'ci' });
        if (pipeline.autodeploy?.branch === data.branch) post.push({ subject: push(data.sha), feed: 'deploy' });
        return { touch: post.length ? [push(data.sha)] : [], post, retire: false };
      }
      case 'testrun': {
        if (!data.sha) return NOTHING;
        const ended = what !== 'pending' && what !== 'building' && what !== 'running';
        const pr = await this.openPullRequestOf(pipeline, data.sha, data.branch ?? null);
        if (pr !== null) return { touch: [subjectKey({ kind: 'pr', pipelineId: pipeline.id, pr })], post: [], retire: ended };
        if (data.branch !== deployBranch(pipeline)) return { touch: [], post: [], retire: ended };
        return { touch: [push(data.sha)], post: what === 'pending' ? [{ subject: push(data.sha), feed: 'ci' }] : [], retire: ended };
      }
      case 'pullrequest': {
        if (!data.pr) return NOTHING;
        const subject = subjectKey({ kind: 'pr', pipelineId: pipeline.id, pr: data.pr });
        return { touch: [subject], post: [{ subject, feed: 'pulls' }], retire: what === 'merged' || what === 'closed' };
      }
      case 'reviewapp':
        if (!data.pr) return NOTHING;
        return { touch: [subjectKey({ kind: 'pr', pipelineId: pipeline.id, pr: data.pr })], post: [], retire: true };
      case 'autodeploy':
        if (!data.sha || (what !== 'skipped' && what !== 'failed' && what !== 'awaiting')) return NOTHING;
        return { touch: [push(data.sha)], post: [{ subject: push(data.sha), feed: 'deploy' }], retire: false };
      default:
        return NOTHING;
    }
  }

  /** The report of a subject by its key, or null when it no longer exists. */
  async report(key: string): Promise<SubjectReport | null> {
    const subject = parseSubject(key);
    if (!subject) return null;
    switch (subject.kind) {
      case 'op': {
        const report = await this.operationReport(subject.operation);
        return report && { kind: 'op', report };
      }
      case 'pr': {
        const report = await this.pullRequestReport(subject.pipelineId, subject.pr);
        return report && { kind: 'pr', report };
      }
      case 'push': {
        const report = await this.pushReport(subject.pipelineId, subject.sha);
        return report && { kind: 'push', report };
      }
      case 'event': {
        const event = await this.ctx.db.getRepository(EventEntity).findOneBy({ id: subject.event });
        return event && { kind: 'event', report: { event, repo: null } };
      }
      case 'approval': {
        const report = await this.approvalReport(subject.request);
        return report && { kind: 'approval', report };
      }
      case 'nudge': {
        const report = await this.nudges.nudgeReport(subject.nudge);
        return report && { kind: 'nudge', report };
      }
    }
  }

  /** Everything a message shows of an operation: who, what it ships, where it stands, and what each release can do next. */
  async operationReport(id: number): Promise<OperationReport | null> {
    const db = this.ctx.db;
    const op = await db.getRepository(OperationEntity).findOneBy({ id });
    if (!op) return null;
    const pipeline = op.pipelineId ? await db.getRepository(PipelineEntity).findOneBy({ id: op.pipelineId }) : null;
    const started = await db.getRepository(EventEntity).findOne({ where: { operationId: id, type: `${op.kind}.started` } });
    const ended = op.status === 'succeeded' || op.status === 'failed';
    const step = ended
      ? null
      : ((await db.getRepository(EventEntity).findOne({ where: { operationId: id, type: 'operation.progress' }, order: { id: 'DESC' } }))
          ?.message ?? null);
    const buildOutput = op.targets.some((t) => t.phase === 'build')
      ? ((await db.getRepository(BuildEntity).findOne({ where: { operationId: id }, order: { id: 'DESC' } }))?.output ?? null)
      : null;
    const apps = await db.getRepository(AppEntity).findBy({ name: In(op.targets.map((t) => t.app)) });
    const details = (started?.data ?? {}) as OperationDetails;
    const locks = pipeline ? await this.locks.locksOf(pipeline) : new Map<string, LockView>();
    const targets: ReportTarget[] = [];
    for (const t of op.targets) {
      const app = apps.find((a) => a.name === t.app) ?? null;
      const release = app && t.version ? await db.getRepository(ReleaseEntity).findOneBy({ appId: app.id, version: t.version }) : null;
      const now = app?.currentReleaseId ? await db.getRepository(ReleaseEntity).findOneBy({ id: app.currentReleaseId }) : null;
      const current = !!release && now?.id === release.id;
      const live = !!release && release.status === 'succeeded';
      const target: ReportTarget = {
        app: t.app,
        stage: app?.stage ?? 'destroyed',
        version: t.version,
        commit: release?.commit ?? null,
        status: t.status,
        releasing: t.version !== null,
        error: t.error,
        phase: t.phase,
        output: tail(release?.output ?? ''),
        current,
        url: app ? this.ctx.platform.url(app.name, app.platform) : null,
        serving: !app || current ? null : t.status === 'failed' ? await this.servedWhenFailed(app, release, op) : now && ref(app.name, now),
        fate: null,
        promote: null,
        rollback: null,
        rerelease: null,
        lock: locks.get(t.app) ?? null,
      };
      if (app && t.status === 'failed' && now && (release ? now.version > release.version : now.createdAt > op.createdAt)) {
        // A failure is history once the app has released since: its Retry no longer applies.
        target.fate = { kind: 'superseded', by: await this.operationPerson(now.operationId), now: ref(app.name, now) };
      }
      if (app && pipeline && release && live) {
        target.fate = await this.fateOf(pipeline, app, release, now);
        if (current) {
          target.promote = await this.promoteOffer(pipeline, app, release);
          if (op.kind === 'rollback' && details.rollback && !details.rollback.again)
            target.rerelease = await this.rereleaseOffer(app, details.rollback.from.version);
          else target.rollback = await this.rollbackOffer(pipeline, app, release);
        }
      }
      targets.push(target);
    }
    return {
      operation: this.operations.operationView(op, pipeline),
      repo: pipeline?.repo ?? null,
      actor: await this.personOf(op.actorId, started),
      details,
      step,
      startedAt: op.createdAt.toISOString(),
      endedAt: ended ? op.updatedAt.toISOString() : null,
      buildOutput: buildOutput === null ? null : tail(buildOutput),
      targets,
    };
  }

  async pullRequestReport(pipelineId: number, number: number): Promise<PullRequestReport | null> {
    const db = this.ctx.db;
    const pr = await db.getRepository(PullRequestEntity).findOneBy({ pipelineId, number });
    const pipeline = await db.getRepository(PipelineEntity).findOneBy({ id: pipelineId });
    if (!pr || !pipeline) return null;
    const run = await db.getRepository(TestRunEntity).findOne({ where: { pipelineId, commit: pr.headSha }, order: { number: 'DESC' } });
    const row = await db.getRepository(ReviewAppEntity).findOneBy({ pipelineId, pr: number });
    const deploying = row
      ? await db
          .getRepository(OperationEntity)
          .existsBy({ cause: subjectKey({ kind: 'pr', pipelineId, pr: number }), status: In(['pending', 'running']) })
      : false;
    return {
      pipeline: pipeline.name,
      repo: pipeline.repo,
      number: pr.number,
      title: pr.title,
      author: pr.author,
      branch: pr.branch,
      headSha: pr.headSha,
      state: pr.state,
      pushes: pr.pushes,
      tests: run ? await this.testRunBrief(run) : null,
      reviewApp: row
        ? {
            app: row.appName,
            status: row.status,
            url: row.status === 'created' ? this.ctx.platform.url(row.appName) : null,
            error: row.error,
            deploying,
          }
        : null,
    };
  }

  async pushReport(pipelineId: number, sha: string): Promise<PushReport | null> {
    const db = this.ctx.db;
    const pipeline = await db.getRepository(PipelineEntity).findOneBy({ id: pipelineId });
    if (!pipeline) return null;
    const events = db.getRepository(EventEntity);
    const pushed = await events
      .createQueryBuilder('e')
      .where("e.type = 'github.push' AND e.pipeline = :p AND e.data->>'sha' = :sha", { p: pipeline.name, sha })
      .orderBy('e.id', 'DESC')
      .getOne();
    const run = await db.getRepository(TestRunEntity).findOne({ where: { pipelineId, commit: sha }, order: { number: 'DESC' } });
    const note = await events
      .createQueryBuilder('e')
      .where("e.type IN ('autodeploy.skipped', 'autodeploy.failed', 'autodeploy.awaiting') AND e.pipeline = :p AND e.data->>'sha' = :sha", {
        p: pipeline.name,
        sha,
      })
      .orderBy('e.id', 'DESC')
      .getOne();
    const op = await db
      .getRepository(OperationEntity)
      .findOne({ where: { cause: subjectKey({ kind: 'push', pipelineId, sha }) }, order: { id: 'DESC' } });
    const data = (pushed?.data ?? {}) as { branch?: string; subject?: string | null; autodeploy?: Pipeline['autodeploy'] };
    const branch = data.branch ?? run?.branch ?? deployBranch(pipeline);
    // What auto-deploy was when the push came: enabling it later does not make an old push "not deployed".
    const setting = data.autodeploy !== undefined ? data.autodeploy : pipeline.autodeploy;
    const operation = op ? await this.operationReport(op.id) : null;
    return {
      pipeline: pipeline.name,
      repo: pipeline.repo,
      sha,
      branch,
      subject: data.subject ?? operation?.details.commit?.subject ?? null,
      pusher: pushed?.actor ?? operation?.actor.name ?? 'someone',
      tests: run ? await this.testRunBrief(run) : null,
      autodeploy: setting?.branch === branch ? { stage: setting.stage, waitForCi: setting.waitForCi } : null,
      autodeployNote: note?.message ?? null,
      operation,
    };
  }

  /** An approval request: who asks to ship what, who approved, and once it runs, its operation. */
  async approvalReport(id: number): Promise<ApprovalReport | null> {
    const row = await this.gate.row(id);
    if (!row) return null;
    const approvals = await this.gate.approvers(id);
    const request = await this.gate.toView(row, approvals);
    const pipeline = await this.ctx.db.getRepository(PipelineEntity).findOneBy({ id: row.pipeline_id });
    const decider =
      row.decided_by && row.decided_by !== 'flowops'
        ? await this.ctx.db.getRepository(UserEntity).findOneBy({ name: row.decided_by })
        : null;
    let sourceNow: ReleaseRef | null = null;
    if (row.request.kind === 'promote') {
      const source = await this.ctx.db.getRepository(AppEntity).findOneBy({ name: row.request.fromApp });
      const now = source?.currentReleaseId
        ? await this.ctx.db.getRepository(ReleaseEntity).findOneBy({ id: source.currentReleaseId })
        : null;
      if (source && now && now.version !== row.request.version) sourceNow = ref(source.name, now);
    }
    return {
      request,
      repo: pipeline?.repo ?? null,
      // Linked people have their Slack account as their own (identity.ts): they are mentioned whichever front they used.
      requester: { name: request.requester, slackUser: slackIdOf(row.requester_external_id), via: row.via },
      approvers: approvals.map((a) => ({ name: a.name, slackUser: slackIdOf(a.external_id), via: a.via })),
      decidedBy: decider
        ? { name: decider.name, slackUser: slackIdOf(decider.externalId), via: 'slack' }
        : row.decided_by
          ? { name: row.decided_by, slackUser: null, via: 'system' }
          : null,
      details: row.details,
      sourceNow,
      operation: row.operation_id ? await this.operationReport(row.operation_id) : null,
    };
  }

  /** The open pull request a commit or branch belongs to, if flowops knows one. */
  private async openPullRequestOf(pipeline: Pipeline, sha: string, branch: string | null): Promise<number | null> {
    const prs = this.ctx.db.getRepository(PullRequestEntity);
    const byHead = await prs.findOne({ where: { pipelineId: pipeline.id, headSha: sha, state: 'open' }, order: { number: 'DESC' } });
    if (byHead) return byHead.number;
    if (!branch) return null;
    const byBranch = await prs.findOne({ where: { pipelineId: pipeline.id, branch, state: 'open' }, order: { number: 'DESC' } });
    return byBranch?.number ?? null;
  }

  private async testRunBrief(run: TestRun): Promise<TestRunBrief> {
    const newer = await this.ctx.db
      .getRepository(TestRunEntity)
      .createQueryBuilder('r')
      .where('r.pipeline_id = :p AND r.number > :n AND r.branch IS NOT DISTINCT FROM :b', {
        p: run.pipelineId,
        n: run.number,
        b: run.branch,
      })
      .getExists();
    return { number: run.number, status: run.status, commit: run.commit, branch: run.branch, output: tail(run.output), latest: !newer };
  }

  /** Who started an operation: its started event's actor and front, with a Slack id for a mention when they came through Slack. */
  private async personOf(userId: number, started: FlowEvent | null): Promise<Person> {
    const user = userId ? await this.ctx.db.getRepository(UserEntity).findOneBy({ id: userId }) : null;
    const via = started?.via ?? 'system';
    const slackUser = via === 'slack' ? slackIdOf(user?.externalId) : null;
    return { name: started?.actor ?? user?.name ?? 'flowops', slackUser, via };
  }

  private async operationPerson(operationId: number | null): Promise<Person | null> {
    if (operationId === null) return null;
    const op = await this.ctx.db.getRepository(OperationEntity).findOneBy({ id: operationId });
    if (!op) return null;
    const started = await this.ctx.db.getRepository(EventEntity).findOne({ where: { operationId, type: `${op.kind}.started` } });
    return this.personOf(op.actorId, started);
  }

  /** The release that kept serving when `release` (or, before one existed, the operation) failed: the last good one before it. */
  private async servedWhenFailed(app: App, release: Release | null, op: Operation): Promise<ReleaseRef | null> {
    const before = this.ctx.db
      .getRepository(ReleaseEntity)
      .createQueryBuilder('r')
      .where('r.app_id = :app AND r.status = :ok', { app: app.id, ok: 'succeeded' });
    if (release) before.andWhere('r.version < :v', { v: release.version });
    else before.andWhere('r.created_at <= :at', { at: op.updatedAt });
    const served = await before.orderBy('r.version', 'DESC').getOne();
    return served ? ref(app.name, served) : null;
  }

  /** Why a live release's buttons no longer apply: promoted on, or no longer what the app runs. */
  private async fateOf(pipeline: Pipeline, app: App, release: Release, now: Release | null): Promise<ReleaseFate | null> {
    const promoted: { operation_id: number }[] = await this.ctx.db.query(
      `SELECT e.operation_id FROM events e JOIN operations o ON o.id = e.operation_id
        WHERE e.type = 'promote.started' AND e.pipeline = $1 AND o.status = 'succeeded'
          AND e.data->'promotion'->'from'->>'app' = $2 AND e.data->'promotion'->'from'->>'version' = $3
        ORDER BY e.id DESC LIMIT 1`,
      [pipeline.name, app.name, String(release.version)],
    );
    if (promoted.length) {
      const op = await this.ctx.db.getRepository(OperationEntity).findOneByOrFail({ id: promoted[0]!.operation_id });
      const by = (await this.operationPerson(op.id))!;
      const to = op.targets.flatMap((t) => (t.version ? [{ app: t.app, version: t.version, commit: release.commit }] : []));
      return { kind: 'promoted', by, to };
    }
    if (!now || now.id === release.id) return null;
    const by = await this.operationPerson(now.operationId);
    const op = now.operationId ? await this.ctx.db.getRepository(OperationEntity).findOneBy({ id: now.operationId }) : null;
    if (op?.kind !== 'rollback') return { kind: 'superseded', by, now: ref(app.name, now) };
    const started = await this.ctx.db.getRepository(EventEntity).findOne({ where: { operationId: op.id, type: 'rollback.started' } });
    const to = (started?.data as OperationDetails | undefined)?.rollback?.to.version ?? null;
    return { kind: 'rolled_back', by, now: ref(app.name, now), to };
  }

  /**
   * What promoting a live release would ship downstream; null when there is no
   * downstream app or nothing new for it. A source that cannot list commits
   * just now still gets an offer (`unlisted`), so a rate limit does not take
   * Promote away for good.
   */
  private async promoteOffer(pipeline: Pipeline, app: App, release: Release): Promise<PromoteOffer | null> {
    const downstream = DOWNSTREAM[app.stage];
    if (!downstream || !release.commit) return null;
    const apps = await this.ctx.db
      .getRepository(AppEntity)
      .find({ where: { pipelineId: pipeline.id, stage: downstream }, order: { name: 'ASC' } });
    if (!apps.length) return null;
    const running = await this.pipelines.currentReleases(apps);
    const bases = apps.map((a) => running.get(a.id)?.commit ?? null);
    const logs = new Map<string | null, CommitLog | null>();
    for (const base of new Set(bases)) if (base !== release.commit) logs.set(base, await this.log(pipeline, base, release.commit));
    return promoteOfferOf({ downstream, apps: apps.map((a) => a.name), bases, head: release.commit }, (base) => logs.get(base) ?? null);
  }

  /** The earlier good release a rollback of a live production release would go back to, and the commits it takes away. */
  private async rollbackOffer(pipeline: Pipeline, app: App, release: Release): Promise<RollbackOffer | null> {
    if (app.stage !== 'production') return null;
    const to = await this.ctx.db
      .getRepository(ReleaseEntity)
      .createQueryBuilder('r')
      .where('r.app_id = :app AND r.status = :ok AND r.version < :v', { app: app.id, ok: 'succeeded', v: release.version })
      .orderBy('r.version', 'DESC')
      .getOne();
    if (!to) return null;
    const log = to.commit && release.commit && to.commit !== release.commit ? await this.log(pipeline, to.commit, release.commit) : null;
    return { from: ref(app.name, release), to: ref(app.name, to), ahead: log?.ahead ?? 0, commits: log?.commits ?? [] };
  }

  private async rereleaseOffer(app: App, version: number): Promise<ReleaseRef | null> {
    const release = await this.ctx.db.getRepository(ReleaseEntity).findOneBy({ appId: app.id, version });
    return release?.status === 'succeeded' ? ref(app.name, release) : null;
  }

  /** Commits in head and not in base, from the pipeline's source (once: kept); null when the source cannot answer just now. */
  private log(pipeline: Pipeline, base: string | null, head: string): Promise<{ ahead: number; commits: Commit[] } | null> {
    return this.commitLogs.get(pipeline, base, head);
  }
}
