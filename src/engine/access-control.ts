import { AppEntity, GrantEntity, PipelineEntity, type App, type Permission, type Pipeline } from '../db/entities.ts';
import { log } from '../log.ts';
import { permits, type Actor } from './access.ts';
import { NotFound, PermissionDenied } from '../errors.ts';
import type { EngineContext } from './context.ts';

/** Who may do what on a pipeline: every service asks here first. */
export class Access {
  constructor(private readonly ctx: EngineContext) {}

  async permissionOf(actor: Actor, pipelineId: number): Promise<Permission | null> {
    if (actor.admin) return 'manage';
    const grant = await this.ctx.db.getRepository(GrantEntity).findOneBy({ pipelineId, userId: actor.id });
    return grant?.permission ?? null;
  }

  /** The pipeline, if the actor holds `needed` on it; otherwise a denial that says what to ask for. */
  async authorize(actor: Actor, pipelineName: string, needed: Permission, command: string): Promise<Pipeline> {
    const pipeline = await this.ctx.db.getRepository(PipelineEntity).findOneBy({ name: pipelineName });
    const allowed = pipeline ? await this.check(actor, pipeline, needed, command) : null;
    if (!allowed) throw new NotFound(`no pipeline "${pipelineName}" that you can see; \`pipelines\` lists yours`);
    return allowed;
  }

  async authorizeApp(actor: Actor, appName: string, needed: Permission, command: string): Promise<{ app: App; pipeline: Pipeline }> {
    const app = await this.ctx.db.getRepository(AppEntity).findOneBy({ name: appName });
    const pipeline = app ? await this.ctx.db.getRepository(PipelineEntity).findOneBy({ id: app.pipelineId }) : null;
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
      throw new PermissionDenied(
        `\`${command}\` needs ${needed} on ${pipeline.name}; you have ${held}. Ask an admin: \`access:add ${pipeline.name} ${actor.name} ${needed}\``,
      );
    }
    return pipeline;
  }

  /** The actor's permission on a pipeline (null: none), for fronts that show only the buttons a user may use. */
  async permissionOn(actor: Actor, pipelineName: string): Promise<Permission | null> {
    const pipeline = await this.ctx.db.getRepository(PipelineEntity).findOneBy({ name: pipelineName });
    return pipeline ? this.permissionOf(actor, pipeline.id) : null;
  }
}
