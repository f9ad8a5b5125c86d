import { type EntityManager } from 'typeorm';
import {
  AppEntity,
  PipelineEntity,
  ReleaseEntity,
  type App,
  type Operation,
  type Pipeline,
  type Release,
  type Stage,
} from '../db/entities.ts';
import type { Commit } from '../source/source.ts';
import { short } from '../format.ts';
import { DOWNSTREAM, parseStage } from './stages.ts';
import { releaseView, type DiffView, type OperationDetails, type OperationView, type ReleaseView } from './views.ts';
import { REQUIRED, permits, type Actor } from './access.ts';
import { InvalidInput, NotFound, StaleRelease } from '../errors.ts';
import { CONFIG_KEY, MAX_CONFIG_BYTES, checkConfigValue, configSize, formatBytes } from './input.ts';
import type { EngineContext } from './context.ts';
import type { Access } from './access-control.ts';
import type { NewRelease, ReleaseExecution } from './release-execution.ts';
import type { Operations, Progress } from './operations.ts';
import type { OperationWork } from './operation-work.ts';
import { untilDatabaseAnswers } from '../db/outage.ts';
import type { Pipelines } from './pipelines.ts';
import type { DeployLocks, Force, Forcing } from './deploy-locks.ts';
import type { ApprovalGate, Asked } from './approvals.ts';
import type { ApprovalView } from './views.ts';

/** What `config` shows in place of a value the reader may not see: the same for every value, so not even its length shows. */
export const MASKED_VALUE = '********';

/** A promotion asked for release `shown` of `app`, which now runs `now`: what Promote buttons and the promote dialog are told. */
export function movedOn(app: App, now: Release, shown: number): StaleRelease {
  return new StaleRelease(
    `${app.name} has moved on since: it now runs v${now.version} (${short(now.commit)}), not v${shown}.`,
    { app: app.name, version: now.version, commit: now.commit },
    DOWNSTREAM[app.stage],
  );
}

function describeTargets(targets: App[], stage: Stage): string {
  return `${targets.map((t) => t.name).join(', ')} (${stage})`;
}
/** Deploy, promote, rollback, config vars, and what each app runs (releases, diff). */
export class Releases {
  constructor(
    private readonly ctx: EngineContext,
    private readonly authz: Access,
    private readonly execution: ReleaseExecution,
    private readonly operations: Operations,
    private readonly pipelines: Pipelines,
    private readonly locks: DeployLocks,
    private readonly gate: ApprovalGate,
  ) {}

  /**
   * Records the operation (its targets' locks checked in the same transaction),
   * or, where its stage needs approvals, files it as a request instead. An
   * approved request running (`approved`) is marked shipped with its operation;
   * a manager's `--force` goes past the rule, announced.
   */
  private async startOrFile(
    actor: Actor,
    pipeline: Pipeline,
    kind: 'deploy' | 'promote' | 'rollback',
    asked: Asked,
    work: OperationWork,
    options: { approved?: number; force?: Force },
  ): Promise<{ filed: ApprovalView } | { op: Operation }> {
    const { approved, force } = options;
    const needed = approved === undefined ? await this.gate.needed(pipeline, asked.targets) : 0;
    if (needed && !force) {
      // What a deploy adds over what the stage runs now, for its approvers (a promotion's details say it already).
      if (asked.request.kind === 'deploy') asked.details.adds = (await this.adds(pipeline, asked.targets, asked.request.sha)) ?? undefined;
      return { filed: await this.gate.file(actor, pipeline, asked, needed) };
    }
    const op = await this.operations.createOperation(actor, pipeline, kind, asked.description, asked.targets, {
      details: asked.details,
      cause: approved !== undefined ? this.gate.causeOf(approved) : asked.cause,
      alsoInTransaction: async (m) => {
        await this.locks.assertFree(m, actor, pipeline, asked.targets, force);
        if (needed && force) await this.gate.bypassed(m, actor, pipeline, asked.description, force);
      },
      andThen: approved !== undefined ? (m, started) => this.gate.shipped(m, approved, started.id) : undefined,
      work,
    });
    return { op };
  }

  /** The commits `head` adds over what the first of `targets` runs now; null when the source cannot say just now. */
  private async adds(
    pipeline: Pipeline,
    targets: App[],
    head: string,
  ): Promise<{ base: string | null; ahead: number; commits: Commit[] } | null> {
    const base = (await this.pipelines.currentReleases(targets)).get(targets[0]!.id)?.commit ?? null;
    const log = await this.ctx
      .source(pipeline)
      .then((s) => s.log(base, head, 10))
      .catch(() => null);
    return log && { base, ...log };
  }

  /** Builds `ref` (default: the pipeline's branch) and releases it to every app of `stage`, or to one app of it. */
  async deploy(
    actor: Actor,
    input: { pipeline: string; ref?: string; stage: string; app?: string; cause?: string; approved?: number } & Forcing,
  ): Promise<OperationView | ApprovalView> {
    const pipeline = await this.authz.authorize(actor, input.pipeline, REQUIRED.deploy, `deploy ${input.pipeline}`);
    const stage = parseStage(input.stage);
    const targets = await this.pipelines.stageApps(pipeline, stage, input.app);
    const source = await this.ctx.source(pipeline);
    const sha = await source.resolve(input.ref ?? pipeline.branch);
    // The commit's subject is for the messages: a source that cannot say does not stop the deploy.
    const head = await source
      .log(null, sha, 1)
      .then((l) => l.commits[0])
      .catch(() => undefined);
    const force = await this.locks.force(actor, pipeline, input);
    const description = `Deploy ${short(sha)} to ${describeTargets(targets, stage)}`;
    const details: OperationDetails = { commit: { sha, subject: head?.message ?? null, author: head?.author ?? null } };
    const started = await this.startOrFile(
      actor,
      pipeline,
      'deploy',
      {
        request: { kind: 'deploy', sha, stage, ...(input.app ? { app: input.app } : {}) },
        stage,
        description,
        targets,
        details,
        cause: input.cause,
      },
      { kind: 'deploy', sha, appIds: targets.map((t) => t.id) },
      { approved: input.approved, force },
    );
    if ('filed' in started) return started.filed;
    return this.operations.operationView(started.op, pipeline);
  }

  /**
   * Copies the slug the source app runs now, unchanged, to every app of the
   * downstream stage (or the named apps). The targets' config vars stay theirs.
   */
  async promote(
    actor: Actor,
    input: {
      pipeline: string;
      fromStage?: string;
      fromApp?: string;
      toStage?: string;
      toApps?: string[];
      ifVersion?: number;
      /** A person's note for the messages (the promote dialog's). */
      note?: string;
      /** An approved request running: its pinned release of the source app, and its id. */
      version?: number;
      approved?: number;
    } & Forcing,
  ): Promise<OperationView | ApprovalView> {
    const pipeline = await this.authz.authorize(actor, input.pipeline, REQUIRED.promote, `promote ${input.pipeline}`);
    // An app named without its stage (a button names the app it was shown on) is promoted from the stage it is in.
    const named = input.fromApp && !input.fromStage ? await this.pipelines.pipelineApp(pipeline, input.fromApp) : null;
    const fromStage = named ? named.stage : parseStage(input.fromStage ?? 'staging');
    const [source] = input.fromApp
      ? await this.pipelines.stageApps(pipeline, fromStage, input.fromApp)
      : await this.pipelines.stageApps(pipeline, fromStage);
    if (!source) throw new NotFound(`no app in ${fromStage} of ${pipeline.name}`);
    const downstream = DOWNSTREAM[source.stage];
    if (!downstream) {
      throw new InvalidInput(
        `${source.name} is in ${source.stage}, which has no downstream stage to promote to; promote from development or staging (\`promote ${pipeline.name}\` promotes staging to production)`,
      );
    }
    let targets: App[];
    if (input.toApps?.length) {
      targets = await Promise.all(input.toApps.map((name) => this.pipelines.pipelineApp(pipeline, name)));
      if (targets.some((t) => t.id === source.id)) throw new InvalidInput(`${source.name} cannot be promoted to itself`);
    } else {
      const toStage = parseStage(input.toStage ?? downstream);
      targets = await this.pipelines.stageApps(pipeline, toStage);
    }
    const note = input.note?.trim() || undefined;
    if (note && note.length > 500) throw new InvalidInput('a note is at most 500 characters');
    // An approved request ships the release that was approved, even if the source app has moved on since.
    const release =
      input.version !== undefined
        ? await this.ctx.db.getRepository(ReleaseEntity).findOneBy({ appId: source.id, version: input.version, status: 'succeeded' })
        : source.currentReleaseId
          ? await this.ctx.db.getRepository(ReleaseEntity).findOneBy({ id: source.currentReleaseId })
          : null;
    if (input.version !== undefined && !release?.slugId)
      throw new NotFound(`${source.name} no longer has a good release v${input.version}`);
    if (!release?.slugId)
      throw new InvalidInput(`${source.name} has no release to promote yet; deploy first: \`deploy ${pipeline.name} to ${source.stage}\``);
    if (input.ifVersion !== undefined && release.version !== input.ifVersion) throw movedOn(source, release, input.ifVersion);
    const description = `Promote ${source.name} v${release.version} ${short(release.commit)}`;
    const base = (await this.pipelines.currentReleases(targets)).get(targets[0]!.id)?.commit ?? null;
    const { ahead, commits } = (release.commit && (await this.adds(pipeline, targets, release.commit))) || { ahead: 0, commits: [] };
    const force = await this.locks.force(actor, pipeline, input);
    const details: OperationDetails = {
      promotion: { from: { app: source.name, version: release.version, commit: release.commit }, base, ahead, commits },
      ...(note ? { note } : {}),
    };
    const whole = `${description} to ${describeTargets(targets, targets[0]!.stage)}`;
    const started = await this.startOrFile(
      actor,
      pipeline,
      'promote',
      {
        request: {
          kind: 'promote',
          fromApp: source.name,
          version: release.version,
          toApps: targets.map((t) => t.name),
          ...(note ? { note } : {}),
        },
        stage: targets[0]!.stage,
        description: whole,
        targets,
        details,
      },
      { kind: 'promote', appIds: targets.map((t) => t.id), slugId: release.slugId, commit: release.commit, description },
      { approved: input.approved, force },
    );
    if ('filed' in started) return started.filed;
    return this.operations.operationView(started.op, pipeline);
  }

  /** A new release with an earlier release's slug and config (default: the last succeeded one before the current). */
  async rollback(
    actor: Actor,
    appName: string,
    version?: number,
    options: { ifCurrent?: number; again?: boolean; approved?: number } & Forcing = {},
  ): Promise<OperationView | ApprovalView> {
    const { app, pipeline } = await this.authz.authorizeApp(actor, appName, REQUIRED.rollback, `rollback ${appName}`);
    const releases = this.ctx.db.getRepository(ReleaseEntity);
    if (options.ifCurrent !== undefined) {
      const now = app.currentReleaseId ? await releases.findOneBy({ id: app.currentReleaseId }) : null;
      if (!now) throw new InvalidInput(`${app.name} has no release to roll back`);
      if (now.version !== options.ifCurrent)
        throw new StaleRelease(`${app.name} has moved on since: it now runs v${now.version}, not v${options.ifCurrent}.`, {
          app: app.name,
          version: now.version,
          commit: now.commit,
        });
    }
    let target: Release | null;
    if (version !== undefined) {
      target = await releases.findOneBy({ appId: app.id, version });
      if (!target) throw new NotFound(`${app.name} has no release v${version}; see \`releases ${app.name}\``);
      if (target.status !== 'succeeded')
        throw new InvalidInput(
          `v${version} of ${app.name} ${target.status === 'failed' ? 'failed' : 'has not finished'}; roll back to a release that succeeded (see \`releases ${app.name}\`)`,
        );
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
    const from = app.currentReleaseId ? await releases.findOneBy({ id: app.currentReleaseId }) : null;
    // Releasing a later version again (Re-release, after a rollback) is a rollback to it, as on Heroku; its messages say "again".
    const again = !!options.again;
    const description = again ? `Re-release ${app.name} v${rollbackTo.version}` : `Rollback ${app.name} to v${rollbackTo.version}`;
    const force = await this.locks.force(actor, pipeline, options);
    const details: OperationDetails = {
      rollback: {
        from: { app: app.name, version: from?.version ?? 0, commit: from?.commit ?? null },
        to: { app: app.name, version: rollbackTo.version, commit: rollbackTo.commit },
        ...(again ? { again } : {}),
      },
    };
    const started = await this.startOrFile(
      actor,
      pipeline,
      'rollback',
      {
        request: { kind: 'rollback', app: app.name, version: rollbackTo.version, ...(again ? { again } : {}) },
        stage: app.stage,
        description,
        targets: [app],
        details,
      },
      { kind: 'rollback', appId: app.id, releaseId: rollbackTo.id, again },
      { approved: options.approved, force },
    );
    if ('filed' in started) return started.filed;
    return this.operations.operationView(started.op, pipeline);
  }

  /**
   * An app's config vars. Values need deploy on the pipeline (as setting them
   * does); with less, and always in a chat front, every value is MASKED_VALUE
   * and `hidden` says why.
   */
  async config(actor: Actor, appName: string): Promise<{ vars: Record<string, string>; hidden: string | null }> {
    const { app, pipeline } = await this.authz.authorizeApp(actor, appName, REQUIRED.read, `config ${appName}`);
    const held = await this.authz.permissionOf(actor, pipeline);
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
  async setConfig(actor: Actor, appName: string, vars: Record<string, string>, forcing: Forcing = {}): Promise<OperationView> {
    const { app, pipeline } = await this.authz.authorizeApp(actor, appName, REQUIRED.config, `config:set ${appName}`);
    const keys = Object.keys(vars);
    if (!keys.length) throw new InvalidInput('give at least one KEY=value: `config:set ' + app.name + ' KEY=value`');
    const bad = keys.find((k) => !CONFIG_KEY.test(k));
    if (bad !== undefined)
      throw new InvalidInput(`"${bad.slice(0, 60)}" is not a valid config var name: letters, digits and "_", not starting with a digit`);
    for (const key of keys) checkConfigValue(key, vars[key]!);
    return this.changeConfig(actor, app, pipeline, `Set ${keys.join(', ')} config vars`, { keys, unset: false }, forcing, async (m) => {
      // Measured on the row as locked in this transaction, so concurrent config:sets cannot add up past the limit.
      const [row] = (await m.query('SELECT config FROM apps WHERE id = $1 FOR UPDATE', [app.id])) as [{ config: Record<string, string> }];
      const size = configSize({ ...row.config, ...vars });
      if (size > MAX_CONFIG_BYTES) {
        throw new InvalidInput(
          `config vars are limited to 32 KB per app (${formatBytes(MAX_CONFIG_BYTES)}, keys and values together); ${app.name} uses ${formatBytes(configSize(row.config))} and this would make it ${formatBytes(size)}. Nothing was changed: unset vars you no longer need (\`config:unset ${app.name} KEY\`), or keep large files out of config`,
        );
      }
      await m
        .createQueryBuilder()
        .update(AppEntity)
        .set({ config: () => 'config || :vars::jsonb' })
        .setParameter('vars', JSON.stringify(vars))
        .where('id = :id', { id: app.id })
        .execute();
    });
  }

  async unsetConfig(actor: Actor, appName: string, keys: string[], forcing: Forcing = {}): Promise<OperationView> {
    const { app, pipeline } = await this.authz.authorizeApp(actor, appName, REQUIRED.config, `config:unset ${appName}`);
    if (!keys.length) throw new InvalidInput('name at least one config var: `config:unset ' + app.name + ' KEY`');
    // Own keys only: `toString` or `__proto__` is "in" any object, but not set on the app.
    const missing = keys.filter((k) => !Object.hasOwn(app.config, k));
    if (missing.length)
      throw new NotFound(`${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set on ${app.name}; see \`config ${app.name}\``);
    return this.changeConfig(actor, app, pipeline, `Remove ${keys.join(', ')} config vars`, { keys, unset: true }, forcing, (m) =>
      m
        .createQueryBuilder()
        .update(AppEntity)
        .set({ config: () => 'config - :keys::text[]' })
        .setParameter('keys', keys)
        .where('id = :id', { id: app.id })
        .execute(),
    );
  }

  private async changeConfig(
    actor: Actor,
    app: App,
    pipeline: Pipeline,
    description: string,
    /** The names of the vars it changes (for the audit trail: never a value). */
    config: { keys: string[]; unset: boolean },
    forcing: Forcing,
    change: (m: EntityManager) => Promise<unknown>,
  ): Promise<OperationView> {
    const force = await this.locks.force(actor, pipeline, forcing);
    const op = await this.operations.createOperation(actor, pipeline, 'config', `${description} on ${app.name}`, [app], {
      details: { config },
      alsoInTransaction: async (m) => {
        await this.locks.assertFree(m, actor, pipeline, [app], force);
        await change(m);
      },
      work: { kind: 'config', appId: app.id, description },
    });
    return this.operations.operationView(op, pipeline);
  }

  /**
   * Carries out an operation's work, in whichever flowops process claimed it:
   * what it works on is read again by id. Each target releases under its app's
   * lock; a target destroyed meanwhile fails alone.
   */
  async perform(op: Operation, work: OperationWork, progress: Progress): Promise<void> {
    const durably = <T>(step: string, read: () => Promise<T>) => untilDatabaseAnswers({ operation: op.id, step }, read);
    const appOf = async (id: number) => {
      const app = await durably('read', () => this.ctx.db.getRepository(AppEntity).findOneBy({ id }));
      if (!app) throw new NotFound('the app was destroyed');
      return app;
    };
    const releaseEach = (appIds: number[], make: () => NewRelease) =>
      Promise.all(appIds.map(async (id) => this.execution.release(op, await appOf(id), make, progress)));
    switch (work.kind) {
      case 'deploy': {
        const pipeline = await durably('read', () => this.ctx.db.getRepository(PipelineEntity).findOneByOrFail({ id: op.pipelineId! }));
        const source = await this.ctx.source(pipeline);
        const slug = await this.execution.build(op, pipeline, source, work.sha, progress);
        await releaseEach(work.appIds, () => ({ slugId: slug, commit: work.sha, description: `Deploy ${short(work.sha)}` }));
        return;
      }
      case 'promote':
        await releaseEach(work.appIds, () => ({ slugId: work.slugId, commit: work.commit, description: work.description }));
        return;
      case 'rollback': {
        const to = await durably('read', () => this.ctx.db.getRepository(ReleaseEntity).findOneByOrFail({ id: work.releaseId }));
        await this.execution.release(
          op,
          await appOf(work.appId),
          () => ({
            slugId: to.slugId,
            commit: to.commit,
            description: work.again ? `Re-release of v${to.version}` : `Rollback to v${to.version}`,
            config: to.config,
          }),
          progress,
        );
        return;
      }
      case 'config':
        await this.execution.release(
          op,
          await appOf(work.appId),
          (current) => ({ slugId: current?.slugId ?? null, commit: current?.commit ?? null, description: work.description }),
          progress,
        );
    }
  }

  async releases(actor: Actor, appName: string): Promise<ReleaseView[]> {
    const { app } = await this.authz.authorizeApp(actor, appName, REQUIRED.read, `releases ${appName}`);
    const releases = await this.ctx.db
      .getRepository(ReleaseEntity)
      .find({ where: { appId: app.id }, order: { version: 'DESC' }, take: 100 });
    return releases.map((r) => releaseView(r, app.currentReleaseId));
  }

  async releaseOutput(
    actor: Actor,
    appName: string,
    version?: number,
  ): Promise<{ version: number; status: Release['status']; description: string; output: string }> {
    const { app } = await this.authz.authorizeApp(actor, appName, REQUIRED.read, `releases:output ${appName}`);
    const repo = this.ctx.db.getRepository(ReleaseEntity);
    const release =
      version === undefined
        ? await repo.findOne({ where: { appId: app.id }, order: { version: 'DESC' } })
        : await repo.findOneBy({ appId: app.id, version });
    if (!release)
      throw new NotFound(
        version === undefined ? `${app.name} has no releases yet` : `${app.name} has no release v${version}; see \`releases ${app.name}\``,
      );
    return { version: release.version, status: release.status, description: release.description, output: release.output };
  }

  /** For each stage and its downstream: the commits the upstream app runs that the downstream app does not. */
  async diff(actor: Actor, pipelineName: string): Promise<DiffView[]> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.read, `diff ${pipelineName}`);
    const apps = await this.ctx.db.getRepository(AppEntity).find({ where: { pipelineId: pipeline.id }, order: { name: 'ASC' } });
    const releases = await this.pipelines.currentReleases(apps);
    const source = await this.ctx.source(pipeline);
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
}
