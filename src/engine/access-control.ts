import { In } from 'typeorm';
import { AppEntity, GrantEntity, PipelineEntity, SubscriptionEntity, type App, type Permission, type Pipeline } from '../db/entities.ts';
import { log } from '../log.ts';
import { permits, type Actor } from './access.ts';
import { NotFound, PermissionDenied } from '../errors.ts';
import type { EngineContext } from './context.ts';

/** A person of the app's own Slack workspace (not a Slack Connect guest): `access:default` reaches them. */
const workspaceMember = (actor: Actor) => actor.via === 'slack' && !actor.guest;

/** A grant, raised to the pipeline's `access:default` for a member of the workspace. */
function withFloor(actor: Actor, pipeline: Pipeline, held: Permission | null): Permission | null {
  const floor = workspaceMember(actor) ? pipeline.defaultAccess : null;
  if (!floor) return held;
  return held && permits(held, floor) ? held : floor;
}

/** Who may do what on a pipeline: every service asks here first. */
export class Access {
  constructor(private readonly ctx: EngineContext) {}

  /** The actor's grant on the pipeline; for a member of the Slack workspace, at least the pipeline's `access:default`. */
  async permissionOf(actor: Actor, pipeline: Pipeline): Promise<Permission | null> {
    if (actor.admin) return 'manage';
    const grant = await this.ctx.db.getRepository(GrantEntity).findOneBy({ pipelineId: pipeline.id, userId: actor.id });
    return withFloor(actor, pipeline, grant?.permission ?? null);
  }

  /** Every pipeline the actor can see, by name, with what the actor holds there: three queries for any number of pipelines. */
  async visiblePipelines(actor: Actor): Promise<{ pipeline: Pipeline; permission: Permission }[]> {
    const ids = await this.visiblePipelineIds(actor);
    if (!ids.length) return [];
    const pipelines = await this.ctx.db.getRepository(PipelineEntity).find({ where: { id: In(ids) }, order: { name: 'ASC' } });
    const grants = actor.admin ? [] : await this.ctx.db.getRepository(GrantEntity).findBy({ userId: actor.id, pipelineId: In(ids) });
    return pipelines.flatMap((pipeline) => {
      const held = actor.admin
        ? 'manage'
        : withFloor(actor, pipeline, grants.find((g) => g.pipelineId === pipeline.id)?.permission ?? null);
      return held ? [{ pipeline, permission: held }] : [];
    });
  }

  /** The ids of the pipelines the actor holds anything on (the rule of permissionOf, for every pipeline at once). */
  async visiblePipelineIds(actor: Actor): Promise<number[]> {
    const rows: { id: number }[] = await this.ctx.db.query(
      `SELECT p.id FROM pipelines p
        WHERE $1 OR EXISTS (SELECT 1 FROM grants g WHERE g.pipeline_id = p.id AND g.user_id = $2) OR ($3 AND p.default_access IS NOT NULL)`,
      [actor.admin, actor.id, workspaceMember(actor)],
    );
    return rows.map((r) => r.id);
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
    const held = await this.permissionOf(actor, pipeline);
    if (permits(held, needed)) return pipeline;
    // The pipeline's managers read every refusal in its audit trail, "not found" ones included.
    const [action = command, ...words] = command.split(' ');
    await this.ctx.refused(actor, pipeline.name, action, words.join(' ') || pipeline.name, `needs ${needed}; has ${held ?? 'none'}`);
    // Nothing held: "not found", so no name leaks; unless the front showed this pipeline to this person.
    if (held === null && !(await this.shown(actor, pipeline))) return null;
    log.warn({ pipeline: pipeline.name, actor: actor.name, needed, held }, 'operation denied');
    const managers = await this.managersOf(pipeline);
    const grant = `\`access:add ${pipeline.name} ${actor.name} ${needed}\``;
    const ask = managers.length ? `Ask a manager of ${pipeline.name} (${managers.join(', ')}): ${grant}` : `Ask an admin: ${grant}`;
    throw new PermissionDenied(`\`${command}\` needs ${needed} on ${pipeline.name}; you have ${held ?? 'none'}. ${ask}`, managers);
  }

  /**
   * Whether flowops showed this pipeline to the actor where they acted: a status
   * message of it (a button's message: the click names it, the table says whose
   * it is), or a channel that is its feed. A forged button value naming another
   * pipeline finds neither and is answered "not found".
   */
  private async shown(actor: Actor, pipeline: Pipeline): Promise<boolean> {
    const { message, channel } = actor.shown ?? {};
    if (message && (await this.ownMessage(pipeline, message))) return true;
    const feed = channel ?? message?.channel;
    return !!feed && this.ctx.db.getRepository(SubscriptionEntity).existsBy({ pipelineId: pipeline.id, channel: feed });
  }

  /** Whether flowops posted that message about the pipeline: a status message, or a reply in its thread (`threaded`: `key ts hash`). */
  private async ownMessage(pipeline: Pipeline, message: { channel: string; ts: string }): Promise<boolean> {
    const rows: unknown[] = await this.ctx.db.query(
      `SELECT 1 FROM status_messages
        WHERE pipeline = $1 AND channel = $2 AND (ts = $3 OR EXISTS (SELECT 1 FROM unnest(threaded) e WHERE split_part(e, ' ', 2) = $3))
        LIMIT 1`,
      [pipeline.name, message.channel, message.ts],
    );
    return rows.length > 0;
  }

  /** The names of the pipeline's managers (grants of manage), at most ten. */
  private async managersOf(pipeline: Pipeline): Promise<string[]> {
    const rows: { name: string }[] = await this.ctx.db.query(
      `SELECT u.name FROM grants g JOIN users u ON u.id = g.user_id WHERE g.pipeline_id = $1 AND g.permission = 'manage' ORDER BY u.name LIMIT 10`,
      [pipeline.id],
    );
    return rows.map((r) => r.name);
  }

  /**
   * Whether the actor may post what they see of a pipeline (its metrics) for a whole
   * channel to read: the channel is one of its feeds (its members already read its
   * events), or the actor manages it (who decides who sees it). Elsewhere, a person
   * with view could put a private pipeline's numbers before people without access.
   */
  async mayShareIn(actor: Actor, pipelineName: string, channel: string): Promise<boolean> {
    const pipeline = await this.ctx.db.getRepository(PipelineEntity).findOneBy({ name: pipelineName });
    if (!pipeline) return false;
    if (permits(await this.permissionOf(actor, pipeline), 'manage')) return true;
    return this.ctx.db.getRepository(SubscriptionEntity).existsBy({ pipelineId: pipeline.id, channel });
  }

  /** The actor's permission on a pipeline (null: none), for fronts that show only the buttons a user may use. */
  async permissionOn(actor: Actor, pipelineName: string): Promise<Permission | null> {
    const pipeline = await this.ctx.db.getRepository(PipelineEntity).findOneBy({ name: pipelineName });
    return pipeline ? this.permissionOf(actor, pipeline) : null;
  }
}
