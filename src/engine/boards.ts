import { In } from 'typeorm';
import { AppEntity, ReleaseEntity, type App, type Release } from '../db/entities.ts';
import type { Actor } from './access.ts';
import { permits } from './access.ts';
import type { Access } from './access-control.ts';
import { promoteOfferOf, ref } from './cards.ts';
import { rangeKey, type CommitLog, type CommitLogs, type CommitRange } from './commit-logs.ts';
import type { EngineContext } from './context.ts';
import type { DeployLocks } from './deploy-locks.ts';
import type { Pipelines } from './pipelines.ts';
import { DOWNSTREAM, STAGE_ORDER } from './stages.ts';
import type { BoardApp, BoardPipeline } from './views.ts';

export interface Boards {
  pipelines: BoardPipeline[];
  /** Ranges of commits whose count the boards do not know yet (`countCommits` asks the source). */
  counting: number;
}

/**
 * Every pipeline a person can see, as boards (the App Home): built from what
 * flowops recorded, in the same few queries for one pipeline or a hundred, and
 * never waiting for git or GitHub — "ahead by N commits" comes from the commit
 * logs kept; a range not kept yet shows as not counted until `countCommits`.
 */
export class BoardService {
  constructor(
    private readonly ctx: EngineContext,
    private readonly authz: Access,
    private readonly pipelines: Pipelines,
    private readonly locks: DeployLocks,
    private readonly commitLogs: CommitLogs,
  ) {}

  async boards(actor: Actor): Promise<Boards> {
    const { pipelines, unknown } = await this.gather(actor);
    return { pipelines, counting: unknown.length };
  }

  /** Asks the source for the ranges the actor's boards do not know yet (a few at a time); how many it learned. */
  async countCommits(actor: Actor): Promise<number> {
    const { unknown, byId } = await this.gather(actor);
    let learned = 0;
    for (let i = 0; i < unknown.length; i += 4) {
      const answers = await Promise.all(unknown.slice(i, i + 4).map((r) => this.commitLogs.get(byId.get(r.pipelineId)!, r.base, r.head)));
      learned += answers.filter(Boolean).length;
    }
    return learned;
  }

  private async gather(actor: Actor) {
    const db = this.ctx.db;
    const visible = await this.authz.visiblePipelines(actor);
    const byId = new Map(visible.map((v) => [v.pipeline.id, v.pipeline]));
    const ids = [...byId.keys()];
    const apps = ids.length ? await db.getRepository(AppEntity).find({ where: { pipelineId: In(ids) } }) : [];
    const running = await this.pipelines.currentReleases(apps);
    const locks = await this.locks.locksOfApps(ids, apps);
    const live = (app: App) => {
      const release = running.get(app.id);
      return release?.status === 'succeeded' ? release : null;
    };
    const previous = await this.previousGood(apps.filter((a) => a.stage === 'production' && live(a)));
    const crashed = await this.ctx.platform.crashed().catch(() => ({}) as Record<string, string[]>);

    // The ranges every Promote and Rollback would ship, then what is kept of them, in one query.
    const ranges: CommitRange[] = [];
    const downstreamOf = (app: App) => {
      const stage = DOWNSTREAM[app.stage];
      return stage
        ? apps.filter((a) => a.pipelineId === app.pipelineId && a.stage === stage).sort((a, b) => a.name.localeCompare(b.name))
        : [];
    };
    for (const app of apps) {
      const release = live(app);
      if (!release?.commit) continue;
      for (const down of downstreamOf(app)) {
        const base = running.get(down.id)?.commit ?? null;
        if (base !== release.commit) ranges.push({ pipelineId: app.pipelineId, base, head: release.commit });
      }
      const to = previous.get(app.id);
      if (to?.commit && to.commit !== release.commit) ranges.push({ pipelineId: app.pipelineId, base: to.commit, head: release.commit });
    }
    const logs = await this.commitLogs.lookup(ranges);
    const unknown = [...new Map(ranges.filter((r) => !logs.has(rangeKey(r))).map((r) => [rangeKey(r), r])).values()];
    const logOf = (pipelineId: number, base: string | null, head: string): CommitLog | null =>
      logs.get(rangeKey({ pipelineId, base, head })) ?? null;

    const pipelines: BoardPipeline[] = visible.map(({ pipeline, permission }) => {
      const own = apps
        .filter((a) => a.pipelineId === pipeline.id)
        .sort((a, b) => STAGE_ORDER[a.stage] - STAGE_ORDER[b.stage] || a.name.localeCompare(b.name));
      return {
        name: pipeline.name,
        canDeploy: permits(permission, 'deploy'),
        canOperate: permits(permission, 'operate'),
        unsandboxed: this.ctx.platform.isolation === 'none',
        apps: own.map((app): BoardApp => {
          const view: BoardApp = {
            ...this.pipelines.appView(app, pipeline, running.get(app.id) ?? null),
            lock: locks.get(app.name) ?? null,
            crashed: (crashed as Record<string, string[]>)[app.name] ?? [],
            promote: null,
            rollback: null,
          };
          const release = live(app);
          if (!release) return view;
          const down = downstreamOf(app);
          if (release.commit && down.length) {
            view.promote = promoteOfferOf(
              {
                downstream: DOWNSTREAM[app.stage]!,
                apps: down.map((d) => d.name),
                bases: down.map((d) => running.get(d.id)?.commit ?? null),
                head: release.commit,
              },
              (base) => logOf(pipeline.id, base, release.commit!),
            );
          }
          const to = previous.get(app.id);
          if (to) {
            const log = to.commit && release.commit && to.commit !== release.commit ? logOf(pipeline.id, to.commit, release.commit) : null;
            view.rollback = { from: ref(app.name, release), to: ref(app.name, to), ahead: log?.ahead ?? 0, commits: log?.commits ?? [] };
          }
          return view;
        }),
      };
    });
    return { pipelines, unknown, byId };
  }

  /** For each app, its latest good release before the one it runs (what Rollback goes back to): one query. */
  private async previousGood(apps: App[]): Promise<Map<number, Release>> {
    if (!apps.length) return new Map();
    const releases = await this.ctx.db
      .getRepository(ReleaseEntity)
      .createQueryBuilder('r')
      .distinctOn(['r.app_id'])
      .innerJoin('App', 'a', 'a.id = r.app_id')
      .innerJoin('Release', 'c', 'c.id = a.current_release_id')
      .where('r.app_id IN (:...ids) AND r.status = :ok AND r.version < c.version', { ids: apps.map((a) => a.id), ok: 'succeeded' })
      .orderBy('r.app_id')
      .addOrderBy('r.version', 'DESC')
      .getMany();
    return new Map(releases.map((r) => [r.appId, r]));
  }
}
