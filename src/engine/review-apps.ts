import { createHash } from 'node:crypto';
import {
  AppEntity,
  PipelineEntity,
  ReleaseEntity,
  ReviewAppEntity,
  type ReviewApp,
  type ReviewAppSettings,
  type Pipeline,
} from '../db/entities.ts';
import { type ReviewAppView } from './views.ts';
import { parseAppJson, reviewConfig, type AppJson } from './app-json.ts';
import { REQUIRED, type Actor } from './access.ts';
import { FlowError, InvalidInput, NotFound } from '../errors.ts';
import type { EngineContext } from './context.ts';
import { SYSTEM } from './access.ts';
import type { Access } from './access-control.ts';
import type { Operations } from './operations.ts';
import type { Pipelines } from './pipelines.ts';
import type { Releases } from './releases.ts';
import type { DeployLocks } from './deploy-locks.ts';
import { formatSourceRef, parseSourceRef, type SourceRef } from '../source/source-ref.ts';

/** What happened to a pull request, in Heroku's words: `updated` is a push to its branch. */
export interface PullRequestChange {
  repo: SourceRef;
  pr: number;
  action: 'opened' | 'updated' | 'closed' | 'merged';
  branch: string;
  sha: string;
  /** The branch lives in another repository: no review app is deployed from it automatically. */
  fork: boolean;
  title?: string;
  author?: string;
}
import { short } from '../format.ts';
import { subjectKey } from './subjects.ts';
import { transition } from './transitions.ts';
import { placeApp } from './placement.ts';

/** Review apps: one per open pull request, Heroku's way. */
export class ReviewApps {
  constructor(
    private readonly ctx: EngineContext,
    private readonly authz: Access,
    private readonly operations: Operations,
    private readonly pipelines: Pipelines,
    private readonly releases: Releases,
    private readonly locks: DeployLocks,
  ) {}

  async setReviewApps(
    actor: Actor,
    pipelineName: string,
    settings: Partial<ReviewAppSettings> | null,
  ): Promise<{ pipeline: string; reviewApps: ReviewAppSettings | null }> {
    const pipeline = await this.authz.authorize(
      actor,
      pipelineName,
      REQUIRED.manageApps,
      `reviewapps:${settings ? 'enable' : 'disable'} ${pipelineName}`,
    );
    const staleDays = settings?.staleDays ?? 5;
    if (!Number.isInteger(staleDays) || staleDays < 1 || staleDays > 30)
      throw new InvalidInput('--stale-days must be a whole number of days from 1 to 30 (as on Heroku)');
    if (settings && parseSourceRef(pipeline.repo).kind !== 'github')
      throw new InvalidInput(
        `review apps follow pull requests on GitHub: connect ${pipeline.name} to a repository with --repo github:owner/name`,
      );
    const reviewApps = settings
      ? { autodeploy: !!settings.autodeploy, autodestroy: !!settings.autodestroy, staleDays, waitForCi: !!settings.waitForCi }
      : null;
    if (reviewApps?.waitForCi && !pipeline.ciEnabled)
      throw new InvalidInput(`--wait-for-ci needs CI on ${pipeline.name}: run \`ci:enable ${pipeline.name}\` first`);
    await this.ctx.transaction(async (m) => {
      await m.update(PipelineEntity, { id: pipeline.id }, { reviewApps });
      await this.ctx.emit(m, {
        type: 'reviewapps.changed',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} turned review apps ${reviewApps ? 'on' : 'off'} for ${pipeline.name}`,
        data: { reviewApps },
      });
    });
    return { pipeline: pipeline.name, reviewApps };
  }

  async reviewApps(actor: Actor, pipelineName: string): Promise<ReviewAppView[]> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.read, `reviewapps ${pipelineName}`);
    const rows = await this.ctx.db.getRepository(ReviewAppEntity).find({ where: { pipelineId: pipeline.id }, order: { pr: 'DESC' } });
    return rows.map((r) => ({
      pr: r.pr,
      app: r.appName,
      branch: r.branch,
      commit: r.headSha,
      status: r.status,
      url: r.status === 'created' ? this.ctx.platform.url(r.appName) : null,
      error: r.error,
    }));
  }

  /**
   * ensureReviewApp for what GitHub started: a refusal (a lock on the review
   * app, say) is said in the pipeline's events and feeds, not thrown at the webhook.
   */
  async ensureHeld(pipeline: Pipeline, row: ReviewApp, actor: Actor): Promise<void> {
    try {
      await this.ensureReviewApp(pipeline, row, actor);
    } catch (err) {
      if (!(err instanceof FlowError)) throw err;
      await this.ctx.transaction((m) =>
        this.ctx.emit(m, {
          type: 'reviewapp.held',
          pipeline: pipeline.name,
          app: row.appName,
          via: 'system',
          message: `Review app ${row.appName} for #${row.pr} not redeployed: ${err.message}`,
          data: { pr: row.pr, branch: row.branch, sha: row.headSha },
        }),
      );
    }
  }

  /** Creates (or updates) the review app of a pull request flowops has seen. */
  async createReviewApp(actor: Actor, pipelineName: string, pr: number): Promise<ReviewAppView> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.deploy, `reviewapps:create ${pipelineName}`);
    const row = await this.ctx.db.getRepository(ReviewAppEntity).findOneBy({ pipelineId: pipeline.id, pr });
    if (!row)
      throw new NotFound(
        `flowops has not seen pull request #${pr} of ${pipeline.name} yet (it learns of them from GitHub's pull_request webhooks)`,
      );
    await this.ensureReviewApp(pipeline, row, actor);
    return (await this.reviewApps(actor, pipelineName)).find((r) => r.pr === pr)!;
  }

  async destroyReviewApp(actor: Actor, pipelineName: string, pr: number): Promise<ReviewAppView> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.deploy, `reviewapps:destroy ${pipelineName}`);
    const row = await this.ctx.db.getRepository(ReviewAppEntity).findOneBy({ pipelineId: pipeline.id, pr });
    if (!row || row.status === 'deleted') throw new NotFound(`${pipeline.name} has no review app for pull request #${pr}`);
    // Destroying is shipping too: a review app someone locked stays until they unlock it.
    const app = await this.ctx.db.getRepository(AppEntity).findOneBy({ name: row.appName, pipelineId: row.pipelineId });
    if (app) await this.ctx.transaction((m) => this.locks.assertFree(m, actor, pipeline, [app]));
    await this.removeReviewApp(pipeline, row, actor);
    return (await this.reviewApps(actor, pipelineName)).find((r) => r.pr === pr)!;
  }

  /**
   * A pull request changed on the source host. Opened (or reopened): a review app
   * (unless it comes from a fork); updated (a push to it): the review app is
   * redeployed; closed or merged: it is destroyed, after app.json's pr-predestroy script.
   */
  async pullRequestChanged(change: PullRequestChange): Promise<void> {
    const pipelines = await this.ctx.db.getRepository(PipelineEntity).findBy({ repo: formatSourceRef(change.repo) });
    const actor: Actor = { ...SYSTEM, name: 'github', via: 'github' };
    const state = change.action === 'merged' ? 'merged' : change.action === 'closed' ? 'closed' : 'open';
    await this.ctx.transaction(async (m) => {
      for (const pipeline of pipelines) {
        // The pull request as GitHub last described it (the GitHub edge refused NUL in its title and author).
        await m.query(
          `INSERT INTO pull_requests (pipeline_id, number, title, author, branch, head_sha, state, pushes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0)
           ON CONFLICT (pipeline_id, number) DO UPDATE SET
             title = CASE WHEN $3 = '' THEN pull_requests.title ELSE EXCLUDED.title END,
             author = coalesce(EXCLUDED.author, pull_requests.author),
             branch = EXCLUDED.branch, head_sha = EXCLUDED.head_sha, state = EXCLUDED.state,
             pushes = pull_requests.pushes + $8, updated_at = now()`,
          [
            pipeline.id,
            change.pr,
            change.title ?? '',
            change.author ?? null,
            change.branch,
            change.sha,
            state,
            change.action === 'updated' ? 1 : 0,
          ],
        );
        await this.ctx.emit(m, {
          type: `pullrequest.${change.action}`,
          pipeline: pipeline.name,
          actor: change.author ?? null,
          via: 'github',
          message: `Pull request #${change.pr}${change.title ? ` "${change.title}"` : ''} (${change.branch}) ${change.action === 'updated' ? `updated to ${short(change.sha)}` : change.action}${change.author ? ` by ${change.author}` : ''}`,
          data: { pr: change.pr, branch: change.branch, sha: change.sha },
        });
      }
    });
    for (const pipeline of pipelines.filter((p) => p.reviewApps)) {
      const repo = this.ctx.db.getRepository(ReviewAppEntity);
      let row = await repo.findOneBy({ pipelineId: pipeline.id, pr: change.pr });
      if (change.action === 'closed' || change.action === 'merged') {
        if (row && row.status !== 'deleted') await this.removeReviewApp(pipeline, row, actor);
        continue;
      }
      const appName = row?.appName ?? (await this.freeReviewAppName(pipeline, change.pr));
      if (!row) {
        await repo.insert({
          pipelineId: pipeline.id,
          pr: change.pr,
          branch: change.branch,
          headSha: change.sha,
          fork: change.fork,
          status: 'pending',
          appName,
          lastPushAt: new Date(),
        });
      } else {
        const push = { branch: change.branch, headSha: change.sha, lastPushAt: new Date() };
        // Reopened: the review app starts over.
        if (row.status === 'deleted') await transition(this.ctx.db.manager, 'reviewApp', row.id, 'pending', { ...push, error: null });
        else await repo.update({ id: row.id }, push);
      }
      row = await repo.findOneByOrFail({ pipelineId: pipeline.id, pr: change.pr });
      const settings = pipeline.reviewApps!;
      const wanted =
        settings.autodeploy && !row.fork && (change.action === 'opened' || row.status === 'created' || row.status === 'errored');
      if (wanted && !settings.waitForCi) await this.ensureHeld(pipeline, row, actor);
    }
  }

  /** Destroys review apps with no push for the pipeline's stale-days, where autodestroy is on. */
  async destroyStaleReviewApps(): Promise<void> {
    const pipelines = (await this.ctx.db.getRepository(PipelineEntity).find()).filter((p) => p.reviewApps?.autodestroy);
    for (const pipeline of pipelines) {
      const cutoff = new Date(Date.now() - pipeline.reviewApps!.staleDays * 86_400_000);
      const stale = await this.ctx.db
        .getRepository(ReviewAppEntity)
        .createQueryBuilder('r')
        .where('r.pipeline_id = :id AND r.status = :created AND r.last_push_at < :cutoff', { id: pipeline.id, created: 'created', cutoff })
        .getMany();
      for (const row of stale) await this.removeReviewApp(pipeline, row, { ...SYSTEM, name: 'autodestroy' });
    }
  }

  private async setReviewAppStatus(
    pipeline: Pipeline,
    row: ReviewApp,
    status: ReviewApp['status'],
    error: string | null = null,
  ): Promise<void> {
    await this.ctx.transaction(async (m) => {
      await transition(m, 'reviewApp', row.id, status, { error });
      await this.ctx.emit(m, {
        type: `reviewapp.${status}`,
        pipeline: pipeline.name,
        app: row.appName,
        via: 'system',
        message: `Review app ${row.appName} for #${row.pr} (${row.branch}) ${status}${error ? `: ${error}` : ''}`,
        data: { pr: row.pr, branch: row.branch, sha: row.headSha, url: status === 'created' ? this.ctx.platform.url(row.appName) : null },
      });
    });
  }

  /**
   * The name of a new review app: `<pipeline>-pr-<N>`, or its hash-marked form
   * when another pipeline's app or review app holds that name already (a short
   * pipeline can be named what a long one's is shortened to). Both taken: the
   * first, and creating the app says the name is taken.
   */
  private async freeReviewAppName(pipeline: Pipeline, pr: number): Promise<string> {
    const names = [reviewAppName(pipeline.name, pr), reviewAppName(pipeline.name, pr, { marked: true })];
    for (const name of names) {
      const taken: unknown[] = await this.ctx.db.query(
        `SELECT 1 FROM apps WHERE name = $1 AND pipeline_id <> $2
         UNION ALL SELECT 1 FROM review_apps WHERE app_name = $1 AND pipeline_id <> $2 AND status <> 'deleted' LIMIT 1`,
        [name, pipeline.id],
      );
      if (!taken.length) return name;
    }
    return names[0]!;
  }

  /** Creates the review app if it does not exist (config from app.json), then deploys the PR's head to it. Idempotent. */
  async ensureReviewApp(pipeline: Pipeline, row: ReviewApp, actor: Actor): Promise<void> {
    const source = await this.ctx.source(pipeline);
    const first = !(await this.ctx.db.getRepository(AppEntity).existsBy({ name: row.appName, pipelineId: row.pipelineId }));
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
      await this.ctx.transaction(async (m) => {
        // A review app runs where new apps run (FLOW_PLATFORM).
        await m.insert(AppEntity, {
          name: row.appName,
          pipelineId: pipeline.id,
          stage: 'review',
          config,
          ...placeApp(this.ctx.placement, {}),
        });
        await this.ctx.emit(m, {
          type: 'app.created',
          pipeline: pipeline.name,
          app: row.appName,
          actor: actor.name,
          via: actor.via,
          message: `Review app ${row.appName} created for #${row.pr}`,
          data: { stage: 'review' },
        });
      });
    }
    // A person (reviewapps:create) deploys as themselves, so their own lock lets them; GitHub's pushes deploy as flowops.
    const op = await this.releases.deploy(actor.id ? actor : { ...SYSTEM, name: actor.name, via: actor.via }, {
      pipeline: pipeline.name,
      ref: row.headSha,
      stage: 'review',
      app: row.appName,
      cause: subjectKey({ kind: 'pr', pipelineId: pipeline.id, pr: row.pr }),
    });
    // Review apps never need approvals (approvals:require refuses the review stage).
    if (op.kind === 'approval') throw new Error(`a review app deploy became approval request ${op.id}`);
    const done = await this.operations.outcome(op.id);
    // Closed meanwhile (a push's redeploy raced the merge): the removal tells the story, not this deploy.
    const now = await this.ctx.db.getRepository(ReviewAppEntity).findOneBy({ id: row.id });
    if (now?.status === 'deleting' || now?.status === 'deleted') return;
    if (done.status !== 'succeeded')
      return this.setReviewAppStatus(pipeline, row, 'errored', done.error ?? done.targets[0]?.error ?? 'the deploy failed');
    const postdeploy = typeof appJson.scripts?.postdeploy === 'string' ? appJson.scripts.postdeploy : appJson.scripts?.postdeploy?.command;
    if (first && typeof postdeploy === 'string' && postdeploy) {
      const app = await this.ctx.db.getRepository(AppEntity).findOneByOrFail({ name: row.appName, pipelineId: row.pipelineId });
      const release = await this.ctx.db.getRepository(ReleaseEntity).findOneByOrFail({ id: app.currentReleaseId! });
      const result = await this.ctx.platform.runCommand(release.slugId!, postdeploy, app.config, () => undefined, app.name);
      if (result.code !== 0)
        return this.setReviewAppStatus(
          pipeline,
          row,
          'errored',
          `postdeploy exited with ${result.code}: ${result.output.trim().split('\n').pop()}`,
        );
    }
    await this.setReviewAppStatus(pipeline, row, 'created');
  }

  private async removeReviewApp(pipeline: Pipeline, row: ReviewApp, actor: Actor): Promise<void> {
    await this.setReviewAppStatus(pipeline, row, 'deleting');
    let app = await this.ctx.db.getRepository(AppEntity).findOneBy({ name: row.appName, pipelineId: row.pipelineId });
    if (app?.lockedBy) {
      // A push's redeploy may still be running: let it finish before the app goes.
      await this.operations.outcome(app.lockedBy);
      app = await this.ctx.db.getRepository(AppEntity).findOneBy({ name: row.appName, pipelineId: row.pipelineId });
    }
    if (app) {
      const release = app.currentReleaseId ? await this.ctx.db.getRepository(ReleaseEntity).findOneBy({ id: app.currentReleaseId }) : null;
      const source = await this.ctx.source(pipeline);
      const appJson = release?.commit
        ? await source
            .readFile(release.commit, 'app.json')
            .then(parseAppJson)
            .catch(() => ({}) as AppJson)
        : {};
      const predestroy = appJson.scripts?.['pr-predestroy'];
      if (typeof predestroy === 'string' && predestroy && release?.slugId)
        await this.ctx.platform.runCommand(release.slugId, predestroy, app.config, () => undefined, app.name);
      await this.pipelines.removeApp({ ...SYSTEM, name: actor.name, via: actor.via }, app, pipeline);
    }
    await this.setReviewAppStatus(pipeline, row, 'deleted');
  }
}

/**
 * `<pipeline>-pr-<N>`, as on Heroku, within the 30 characters of an app name.
 * A pipeline name too long for that (or any, when `marked`) is shortened and
 * marked with 4 hex digits of its hash: never the PR number is cut (two pull
 * requests must not share an app), two long pipelines with one beginning do
 * not collide, and the name never ends the shortened part in '-' (Kubernetes
 * refuses such names).
 */
export function reviewAppName(pipeline: string, pr: number, options: { marked?: boolean } = {}): string {
  const suffix = `-pr-${pr}`;
  if (!options.marked && pipeline.length + suffix.length <= 30) return `${pipeline}${suffix}`;
  const mark = createHash('sha256').update(pipeline).digest('hex').slice(0, 4);
  return `${pipeline.slice(0, 30 - suffix.length - mark.length - 1).replace(/-+$/, '')}-${mark}${suffix}`;
}
