import path from 'node:path';
import { In } from 'typeorm';
import { AppEntity, PipelineEntity, ReleaseEntity, type App, type Pipeline, type Release, type Stage } from '../db/entities.ts';
import { log } from '../log.ts';
import type { Platform } from '../platform/platform.ts';
import { formatSourceRef, githubRef, parseSourceRef } from '../source/source-ref.ts';
import { assertRef, type Source } from '../source/source.ts';
import { STAGE_ORDER, parseStage } from './stages.ts';
import { releaseView, type AppView } from './views.ts';
import { REQUIRED, type Actor } from './access.ts';
import { Conflict, InvalidInput, NotFound, PermissionDenied } from '../errors.ts';
import type { EngineContext } from './context.ts';
import type { Access } from './access-control.ts';
import type { DeployLocks } from './deploy-locks.ts';
import { placeApp } from './placement.ts';

const NAME = /^[a-z][a-z0-9-]{2,29}$/;
/** Pipelines and their apps: create, connect, list, show, destroy. */
export class Pipelines {
  constructor(
    private readonly ctx: EngineContext,
    private readonly authz: Access,
    private readonly locks: DeployLocks,
  ) {}

  async createPipeline(actor: Actor, input: { name: string; repo: string; branch?: string }): Promise<Pipeline> {
    if (!actor.admin)
      throw new PermissionDenied(
        '`pipelines:create` needs an admin: a pipeline runs code from a repository on this server; ask an admin to create it',
      );
    if (!NAME.test(input.name))
      throw new InvalidInput(
        `"${input.name}" is not a valid pipeline name: 3 to 30 lowercase letters, digits or "-", starting with a letter`,
      );
    if (input.repo.startsWith('-'))
      throw new InvalidInput(
        `--repo cannot start with "-" (git would read it as an option): give a path like ./${input.repo.slice(0, 60)} or a git URL`,
      );
    // The repository is shown to everyone with view and kept in the audit trail: no password in it.
    if (/^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i.test(input.repo)) {
      throw new InvalidInput(
        '--repo must not carry a password (user:password@): everyone who can view the pipeline sees its repository. Use an SSH URL with a deploy key, a git credential helper, or github:owner/name with GITHUB_TOKEN',
      );
    }
    if (input.branch !== undefined) assertRef(input.branch);
    const ref = parseSourceRef(input.repo);
    const source = await this.ctx.openSource(input.repo);
    // As Heroku follows a repository's default branch: the one its HEAD names (main, master…).
    const branch = input.branch ?? (await source.defaultBranch());
    if (!branch) throw new InvalidInput("the repository's HEAD names no branch; name the branch to follow with --branch");
    assertRef(branch);
    // A path is stored resolved, so the pipeline finds it whatever directory the server starts in.
    const repo = ref.kind === 'path' ? path.resolve(ref.path) : formatSourceRef(ref);
    await source.resolve(branch).catch((err: unknown) => {
      throw err instanceof NotFound
        ? new InvalidInput(`the repository has no branch "${branch}"; name its main branch with --branch`)
        : err;
    });
    return this.ctx.transaction(async (m) => {
      if (await m.existsBy(PipelineEntity, { name: input.name })) throw new Conflict(`pipeline ${input.name} exists already`);
      const pipeline = await m.save(PipelineEntity, m.create(PipelineEntity, { name: input.name, repo, branch }));
      await this.ctx.emit(m, {
        type: 'pipeline.created',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} created pipeline ${pipeline.name}`,
        data: { repo, branch },
      });
      return pipeline;
    });
  }

  /** Points an existing pipeline at a GitHub repository (`owner/name`). */
  async connectPipeline(actor: Actor, pipelineName: string, repository: string): Promise<{ name: string; repo: string; branch: string }> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.read, `pipelines:connect ${pipelineName}`);
    // Where the code comes from decides what runs on this server: as with pipelines:create, only an admin says so.
    if (!actor.admin) {
      log.warn({ pipeline: pipeline.name, actor: actor.name }, 'pipelines:connect denied');
      throw new PermissionDenied(
        `\`pipelines:connect ${pipeline.name}\` needs an admin: the pipeline's repository is code that runs on this server; ask an admin to connect it`,
      );
    }
    const ref = githubRef(repository);
    if (!ref) throw new InvalidInput(`"${repository}" is not a GitHub repository: write owner/name`);
    const repo = formatSourceRef(ref);
    const source = await this.ctx.openSource(repo);
    await source.resolve(pipeline.branch).catch((err: unknown) => {
      throw err instanceof NotFound ? new InvalidInput(`${repository} has no branch "${pipeline.branch}"`) : err;
    });
    await this.ctx.transaction(async (m) => {
      await m.update(PipelineEntity, { id: pipeline.id }, { repo });
      await this.ctx.emit(m, {
        type: 'pipeline.connected',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} connected ${pipeline.name} to ${repository}`,
        data: { from: pipeline.repo, repo },
      });
    });
    this.ctx.forgetSource(pipeline.repo);
    return { name: pipeline.name, repo, branch: pipeline.branch };
  }

  async listPipelines(actor: Actor): Promise<{ name: string; repo: string; branch: string; apps: number }[]> {
    const rows: { name: string; repo: string; branch: string; apps: string }[] = await this.ctx.db.query(
      `SELECT p.name, p.repo, p.branch, (SELECT count(*) FROM apps a WHERE a.pipeline_id = p.id) AS apps
         FROM pipelines p
        WHERE p.id = ANY($1)
        ORDER BY p.name`,
      [await this.authz.visiblePipelineIds(actor)],
    );
    return rows.map((r) => ({ ...r, apps: Number(r.apps) }));
  }

  async pipelineInfo(
    actor: Actor,
    name: string,
  ): Promise<{ name: string; repo: string; branch: string; apps: AppView[]; sandbox: Platform['isolation'] }> {
    const pipeline = await this.authz.authorize(actor, name, REQUIRED.read, `pipelines:info ${name}`);
    const apps = await this.ctx.db.getRepository(AppEntity).findBy({ pipelineId: pipeline.id });
    const releases = await this.currentReleases(apps);
    const locks = await this.locks.locksOf(pipeline);
    const crashed = await this.crashed();
    const views = apps
      .map((app) => ({
        ...this.appView(app, pipeline, releases.get(app.id) ?? null),
        lock: locks.get(app.name) ?? null,
        crashed: crashed[app.name] ?? [],
      }))
      .sort((a, b) => STAGE_ORDER[a.stage] - STAGE_ORDER[b.stage] || a.name.localeCompare(b.name));
    return { name: pipeline.name, repo: pipeline.repo, branch: pipeline.branch, apps: views, sandbox: this.ctx.platform.isolation };
  }

  /** One app with its release, lock and crashed dynos (view). */
  async appInfo(actor: Actor, name: string): Promise<AppView> {
    const { app, pipeline } = await this.authz.authorizeApp(actor, name, REQUIRED.read, `apps:info ${name}`);
    const releases = await this.currentReleases([app]);
    const locks = await this.locks.locksOf(pipeline);
    return {
      ...this.appView(app, pipeline, releases.get(app.id) ?? null),
      lock: locks.get(app.name) ?? null,
      crashed: (await this.crashed())[app.name] ?? [],
    };
  }

  /** Every app the actor can see, by pipeline then stage. */
  async listApps(actor: Actor): Promise<AppView[]> {
    const pipelines = await this.listPipelines(actor);
    const infos = await Promise.all(pipelines.map((p) => this.pipelineInfo(actor, p.name)));
    return infos.flatMap((info) => info.apps);
  }

  /** Every app's crashed dynos; none when the platform cannot be asked. */
  private async crashed(): Promise<Record<string, string[]>> {
    try {
      return await this.ctx.platform.crashed();
    } catch {
      return {};
    }
  }

  async destroyPipeline(actor: Actor, name: string, confirm: string | undefined): Promise<{ name: string; apps: string[] }> {
    const pipeline = await this.authz.authorize(actor, name, REQUIRED.manageApps, `pipelines:destroy ${name}`);
    const apps = await this.ctx.db.getRepository(AppEntity).findBy({ pipelineId: pipeline.id });
    if (confirm !== pipeline.name) {
      const what = apps.length ? ` and its ${apps.length} app${apps.length === 1 ? '' : 's'} (${apps.map((a) => a.name).join(', ')})` : '';
      throw new InvalidInput(`this destroys ${pipeline.name}${what}; run again with --confirm ${pipeline.name}`);
    }
    for (const app of apps) await this.removeApp(actor, app, pipeline);
    await this.ctx.transaction(async (m) => {
      await m.delete(PipelineEntity, { id: pipeline.id });
      await this.ctx.emit(m, {
        type: 'pipeline.destroyed',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} destroyed pipeline ${pipeline.name}`,
      });
    });
    return { name: pipeline.name, apps: apps.map((a) => a.name) };
  }

  async createApp(
    actor: Actor,
    input: { name: string; pipeline: string; stage: string; platform?: string; namespace?: string },
  ): Promise<AppView> {
    const pipeline = await this.authz.authorize(actor, input.pipeline, REQUIRED.manageApps, `apps:create ${input.name}`);
    if (!NAME.test(input.name))
      throw new InvalidInput(`"${input.name}" is not a valid app name: 3 to 30 lowercase letters, digits or "-", starting with a letter`);
    const stage = parseStage(input.stage);
    const placed = placeApp(this.ctx.placement, input, actor);
    const app = await this.ctx.transaction(async (m) => {
      if (await m.existsBy(AppEntity, { name: input.name })) throw new Conflict(`app ${input.name} exists already`);
      const app = await m.save(AppEntity, m.create(AppEntity, { name: input.name, pipelineId: pipeline.id, stage, config: {}, ...placed }));
      await this.ctx.emit(m, {
        type: 'app.created',
        pipeline: pipeline.name,
        app: app.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} created ${app.name} in ${stage}${placed.namespace ? ` on Kubernetes (namespace ${placed.namespace})` : ''}`,
        data: { stage, platform: placed.platform, ...(placed.namespace ? { namespace: placed.namespace } : {}) },
      });
      return app;
    });
    return this.appView(app, pipeline, null);
  }

  async moveApp(actor: Actor, name: string, stageName: string): Promise<AppView> {
    const { app, pipeline } = await this.authz.authorizeApp(actor, name, REQUIRED.manageApps, `apps:move ${name}`);
    const stage = parseStage(stageName);
    await this.ctx.transaction(async (m) => {
      await m.update(AppEntity, { id: app.id }, { stage });
      await this.ctx.emit(m, {
        type: 'app.moved',
        pipeline: pipeline.name,
        app: app.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} moved ${app.name} from ${app.stage} to ${stage}`,
        data: { from: app.stage, to: stage },
      });
    });
    const releases = await this.currentReleases([app]);
    return this.appView({ ...app, stage }, pipeline, releases.get(app.id) ?? null);
  }

  async destroyApp(actor: Actor, name: string, confirm: string | undefined): Promise<{ name: string }> {
    const { app, pipeline } = await this.authz.authorizeApp(actor, name, REQUIRED.manageApps, `apps:destroy ${name}`);
    if (confirm !== app.name)
      throw new InvalidInput(`this stops ${app.name} and deletes its releases; run again with --confirm ${app.name}`);
    await this.removeApp(actor, app, pipeline);
    return { name: app.name };
  }

  async removeApp(actor: Actor, app: App, pipeline: Pipeline): Promise<void> {
    if (app.lockedBy) throw new Conflict(`${app.name} is busy with operation ${app.lockedBy}; try again when it is done`);
    await this.ctx.platform.destroy(app.name);
    await this.ctx.transaction(async (m) => {
      await m.delete(AppEntity, { id: app.id });
      await this.ctx.emit(m, {
        type: 'app.destroyed',
        pipeline: pipeline.name,
        app: app.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} destroyed ${app.name}`,
      });
    });
  }

  async pipelineApp(pipeline: Pipeline, name: string): Promise<App> {
    const app = await this.ctx.db.getRepository(AppEntity).findOneBy({ name, pipelineId: pipeline.id });
    if (!app) throw new NotFound(`no app "${name}" in pipeline ${pipeline.name}; \`pipelines:info ${pipeline.name}\` lists its apps`);
    return app;
  }

  /** The apps of a stage (or the one named app, which must be in that stage); never empty. */
  async stageApps(pipeline: Pipeline, stage: Stage, appName?: string): Promise<App[]> {
    if (appName) {
      const app = await this.pipelineApp(pipeline, appName);
      if (app.stage !== stage) throw new InvalidInput(`${app.name} is in ${app.stage}, not ${stage}`);
      return [app];
    }
    const apps = await this.ctx.db.getRepository(AppEntity).find({ where: { pipelineId: pipeline.id, stage }, order: { name: 'ASC' } });
    if (!apps.length)
      throw new InvalidInput(
        `${pipeline.name} has no app in ${stage}; add one: \`apps:create ${pipeline.name}-${stage} --pipeline ${pipeline.name} --stage ${stage}\``,
      );
    return apps;
  }

  async currentReleases(apps: App[]): Promise<Map<number, Release>> {
    const ids = apps.map((a) => a.currentReleaseId).filter((id): id is number => id !== null);
    const releases = ids.length ? await this.ctx.db.getRepository(ReleaseEntity).findBy({ id: In(ids) }) : [];
    return new Map(releases.map((r) => [r.appId, r]));
  }

  /** An app as the fronts show it (no lock or crashed dynos yet). */
  appView(app: App, pipeline: Pipeline, release: Release | null): AppView {
    return {
      name: app.name,
      pipeline: pipeline.name,
      stage: app.stage,
      platform: app.platform,
      ...(app.namespace ? { namespace: app.namespace } : {}),
      url: this.ctx.platform.url(app.name, app.platform),
      release: release ? releaseView(release, app.currentReleaseId) : null,
    };
  }

  /** The source of a pipeline by name, for fronts that report to its host (commit statuses). */
  async sourceOf(pipelineName: string): Promise<Source | null> {
    const pipeline = await this.ctx.db.getRepository(PipelineEntity).findOneBy({ name: pipelineName });
    return pipeline ? this.ctx.source(pipeline) : null;
  }
}
