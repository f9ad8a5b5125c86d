import { processTypes } from '../platform/local/procfile.ts';
import { AppEntity, EventEntity, PipelineEntity, ReleaseEntity, SlugEntity, type App } from '../db/entities.ts';
import { InvalidInput } from '../errors.ts';
import { log } from '../log.ts';
import type { AppProcesses, LogPage, LogQuery } from '../platform/platform.ts';
import { REQUIRED, type Actor } from './access.ts';
import type { Access } from './access-control.ts';
import type { EngineContext } from './context.ts';

/** The most dynos of one process type: this machine runs them all. */
export const MAX_DYNOS_PER_TYPE = 10;
/** The most log lines one request returns. */
export const MAX_LOG_LINES = 1500;

export interface ProcessesView extends AppProcesses {
  url: string | null;
}

/**
 * An app's dynos as Heroku's dyno manager runs them: `ps`, `ps:scale`,
 * `ps:restart`, `ps:stop`, `logs`, and the crashes the platform reports, which
 * become one `dyno.crashed` event (a feed message) per crash episode.
 */
export class Dynos {
  private crashWatch: NodeJS.Timeout | undefined;
  private collecting: Promise<void> | null = null;

  constructor(
    private readonly ctx: EngineContext,
    private readonly authz: Access,
  ) {}

  async processes(actor: Actor, appName: string): Promise<ProcessesView> {
    const { app } = await this.authz.authorizeApp(actor, appName, REQUIRED.read, `ps ${appName}`);
    return { ...(await this.ctx.platform.ps(app.name)), url: this.ctx.platform.url(app.name, app.platform) };
  }

  /** Sets how many dynos of each process type run (deploy): kept in the app's formation across releases and restarts. */
  async scale(actor: Actor, appName: string, changes: Record<string, number>): Promise<ProcessesView> {
    const { app, pipeline } = await this.authz.authorizeApp(actor, appName, REQUIRED.deploy, `ps:scale ${appName}`);
    const types = await this.processTypes(app);
    if (!Object.keys(changes).length) throw new InvalidInput('ps:scale needs <type>=<count>, like web=2');
    for (const [type, count] of Object.entries(changes)) {
      if (!types.includes(type))
        throw new InvalidInput(
          types.length
            ? `${app.name} has no process type "${type}": its Procfile has ${types.join(', ')}`
            : `${app.name} runs no release with processes yet: deploy it first`,
        );
      if (!Number.isInteger(count) || count < 0 || count > MAX_DYNOS_PER_TYPE)
        throw new InvalidInput(`${type}=${count}: a process type runs 0 to ${MAX_DYNOS_PER_TYPE} dynos here`);
    }
    const said = Object.entries(changes)
      .map(([t, n]) => `${t}=${n}`)
      .join(' ');
    await this.ctx.transaction(async (m) => {
      const now = await m.findOneByOrFail(AppEntity, { id: app.id });
      await m.update(AppEntity, { id: app.id }, { formation: { ...now.formation, ...changes } });
      await this.ctx.emit(m, {
        type: 'formation.changed',
        pipeline: pipeline.name,
        app: app.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} scaled ${app.name} to ${said}`,
        data: { formation: changes },
      });
    });
    await this.ctx.platform.note(app.name, 'api', `Scale to ${said} by ${actor.name}`).catch(() => undefined);
    return { ...(await this.ctx.platform.scale(app.name, changes)), url: this.ctx.platform.url(app.name, app.platform) };
  }

  /** Restarts the app's dynos, a type's or one (deploy). */
  async restartDynos(actor: Actor, appName: string, target?: string): Promise<{ app: string; dynos: string[] }> {
    const { app, pipeline } = await this.authz.authorizeApp(actor, appName, REQUIRED.deploy, `ps:restart ${appName}`);
    await this.checkTarget(app, target);
    if (!(await this.ctx.platform.ps(app.name)).dynos.length)
      throw new InvalidInput(`${app.name} runs no dynos to restart: deploy it first`);
    await this.ctx.transaction((m) =>
      this.ctx.emit(m, {
        type: 'dyno.restarted',
        pipeline: pipeline.name,
        app: app.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} restarted ${target ? `${app.name} ${target}` : app.name}`,
        data: { target: target ?? null },
      }),
    );
    await this.ctx.platform.note(app.name, 'api', `Restart ${target ?? 'all'} by ${actor.name}`).catch(() => undefined);
    return { app: app.name, dynos: await this.ctx.platform.restart(app.name, target) };
  }

  /** Stops a dyno or a type's until the next restart, scale or release (deploy). */
  async stopDynos(actor: Actor, appName: string, target: string): Promise<{ app: string; dynos: string[] }> {
    const { app, pipeline } = await this.authz.authorizeApp(actor, appName, REQUIRED.deploy, `ps:stop ${appName}`);
    await this.checkTarget(app, target);
    await this.ctx.transaction((m) =>
      this.ctx.emit(m, {
        type: 'dyno.stopped',
        pipeline: pipeline.name,
        app: app.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} stopped ${app.name} ${target}`,
        data: { target },
      }),
    );
    await this.ctx.platform.note(app.name, 'api', `Stop ${target} by ${actor.name}`).catch(() => undefined);
    return { app: app.name, dynos: await this.ctx.platform.stop(app.name, target) };
  }

  /** Lines of the app's log (view). */
  async logs(actor: Actor, appName: string, query: LogQuery): Promise<LogPage & { app: string }> {
    const { app } = await this.authz.authorizeApp(actor, appName, REQUIRED.read, `logs ${appName}`);
    const num = Math.min(query.num ?? 100, MAX_LOG_LINES);
    const page = await this.ctx.platform.logs(app.name, { ...query, num });
    return { app: app.name, ...page, lines: page.lines.slice(-MAX_LOG_LINES) };
  }

  /** Watches for crashes (every 2 s) until stopped. */
  watch(): void {
    this.crashWatch = setInterval(() => void this.collectCrashes(), 2000);
    this.crashWatch.unref();
  }

  async unwatch(): Promise<void> {
    clearInterval(this.crashWatch);
    await this.collecting;
  }

  /**
   * Turns each crash episode the platform reports into one `dyno.crashed`
   * event, then tells the platform it was taken; an episode already recorded
   * (flowops died between the two) is not recorded again.
   */
  collectCrashes(): Promise<void> {
    this.collecting ??= this.collect()
      .catch((err: unknown) => log.warn({ err }, 'crashes not collected'))
      .finally(() => (this.collecting = null));
    return this.collecting;
  }

  private async collect(): Promise<void> {
    for (const crash of await this.ctx.platform.crashes()) {
      const app = await this.ctx.db.getRepository(AppEntity).findOneBy({ name: crash.app });
      const pipeline = app ? await this.ctx.db.getRepository(PipelineEntity).findOneBy({ id: app.pipelineId }) : null;
      if (app && pipeline)
        await this.ctx.transaction(async (m) => {
          const seen = await m
            .createQueryBuilder(EventEntity, 'e')
            .where("e.type = 'dyno.crashed' AND e.data->>'episode' = :id", { id: crash.id })
            .getCount();
          if (seen) return;
          const status = crash.exitCode === null ? 'could not start' : `exit ${crash.exitCode}`;
          await this.ctx.emit(m, {
            type: 'dyno.crashed',
            pipeline: pipeline.name,
            app: app.name,
            via: 'system',
            message: `${app.name} ${crash.dyno} crashed (${status})`,
            data: { episode: crash.id, dyno: crash.dyno, exitCode: crash.exitCode, lines: crash.lines },
          });
        });
      await this.ctx.platform.takeCrash(crash.id);
    }
  }

  /** The process types of the app's live release (without `release`). */
  private async processTypes(app: App): Promise<string[]> {
    const release = app.currentReleaseId ? await this.ctx.db.getRepository(ReleaseEntity).findOneBy({ id: app.currentReleaseId }) : null;
    const slug = release?.slugId ? await this.ctx.db.getRepository(SlugEntity).findOneBy({ id: release.slugId }) : null;
    return processTypes(slug?.procfile ?? {});
  }

  /** A type (`web`) or a dyno (`web.1`) the app runs. */
  private async checkTarget(app: App, target: string | undefined): Promise<void> {
    if (target === undefined) return;
    const { dynos } = await this.ctx.platform.ps(app.name);
    if (!dynos.some((d) => d.name === target || d.type === target))
      throw new InvalidInput(
        `${app.name} has no dyno or process type "${target}"${dynos.length ? `: it runs ${dynos.map((d) => d.name).join(', ')}` : ''}`,
      );
  }
}
