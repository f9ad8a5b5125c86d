import type { BoardApp, BoardPipeline } from '../blocks/pipeline-board.ts';
import { permits, type Actor } from '../engine/access.ts';
import type { Engine } from '../engine/engine.ts';

/** A pipeline as the board shows it to `actor`: app cards with "ahead by N", and whether Promote/Rollback apply. */
export async function boardPipeline(engine: Engine, actor: Actor, name: string): Promise<BoardPipeline> {
  const info = await engine.pipelineInfo(actor, name);
  const diffs = await engine.diff(actor, name).catch(() => []);
  const apps: BoardApp[] = info.apps.map((app) => {
    const diff = diffs.find((d) => d.upstream === app.name);
    return diff ? { ...app, ahead: { downstream: diff.downstream, count: diff.ahead, commits: diff.commits } } : app;
  });
  return {
    name: info.name,
    apps,
    canDeploy: permits(await engine.permissionOn(actor, name), 'deploy'),
    unsandboxed: info.sandbox === 'none',
  };
}

/** Every pipeline the actor can see, for the App Home board. */
export async function board(engine: Engine, actor: Actor): Promise<BoardPipeline[]> {
  const pipelines = await engine.listPipelines(actor);
  return Promise.all(pipelines.map((p) => boardPipeline(engine, actor, p.name)));
}
