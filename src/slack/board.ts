import type { BoardApp, BoardPipeline } from '../blocks/pipeline-board.ts';
import { permits, type Actor } from '../engine/access.ts';
import type { Engine } from '../engine/engine.ts';

/** A pipeline as the board shows it to `actor`: app cards with what Promote and Rollback would do, where they apply. */
export async function boardPipeline(engine: Engine, actor: Actor, name: string): Promise<BoardPipeline> {
  const info = await engine.pipelineInfo(actor, name);
  const offers = await engine.offers(actor, name);
  const apps: BoardApp[] = info.apps.map((app) => ({ ...app, ...offers[app.name] }));
  return {
    name: info.name,
    apps,
    canDeploy: permits(await engine.permissionOn(actor, name), 'deploy'),
    canOperate: permits(await engine.permissionOn(actor, name), 'operate'),
    unsandboxed: info.sandbox === 'none',
  };
}
