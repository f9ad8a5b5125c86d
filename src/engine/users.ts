import { In } from 'typeorm';
import { createHash, randomBytes } from 'node:crypto';
import { GrantEntity, PipelineEntity, TokenEntity, UserEntity, type Permission, type User } from '../db/entities.ts';
import { log } from '../log.ts';
import { REQUIRED, isPermission, type Actor } from './access.ts';
import { Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated } from '../errors.ts';
import type { EngineContext } from './context.ts';
import type { Access } from './access-control.ts';

const USER_NAME = /^[a-z][a-z0-9._-]{1,38}$/;
const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');
/** Users, their tokens and grants, and the users behind chat accounts. */
export class Users {
  constructor(
    private readonly ctx: EngineContext,
    private readonly authz: Access,
  ) {}

  /** The user a bearer token belongs to. */
  async authenticate(token: string | undefined, via: Actor['via']): Promise<Actor> {
    if (!token)
      throw new Unauthenticated('no token: set FLOW_TOKEN to your flowops token (an admin creates one with `users:create <you>`)');
    const found = await this.ctx.db.getRepository(TokenEntity).findOneBy({ hash: hashToken(token) });
    const user = found ? await this.ctx.db.getRepository(UserEntity).findOneBy({ id: found.userId }) : null;
    if (!user) {
      // Worth an audit line, which says nothing of the token: a near miss would give most of it away.
      log.warn({ via }, 'authentication failed: unknown token');
      throw new Unauthenticated('this token is not valid: check FLOW_TOKEN (an admin can issue a new one with `users:create <you>`)');
    }
    return { id: user.id, name: user.name, admin: user.admin, via };
  }

  /** Makes sure the admin user exists and answers to `token` (besides any token it had). */
  async ensureAdmin(token: string): Promise<void> {
    await this.ctx.db.transaction(async (m) => {
      await m.upsert(UserEntity, { name: 'admin', admin: true }, ['name']);
      const admin = await m.findOneByOrFail(UserEntity, { name: 'admin' });
      await m.upsert(TokenEntity, { hash: hashToken(token), userId: admin.id }, ['hash']);
    });
  }

  async createUser(actor: Actor, name: string): Promise<{ name: string; token: string }> {
    if (!actor.admin) throw new PermissionDenied('`users:create` needs an admin; ask one to run it for you');
    if (!USER_NAME.test(name))
      throw new InvalidInput(`"${name}" is not a valid user name: use lowercase letters, digits, ".", "_" or "-", starting with a letter`);
    const token = `flo_${randomBytes(24).toString('base64url')}`;
    await this.ctx.transaction(async (m) => {
      if (await m.existsBy(UserEntity, { name })) throw new Conflict(`user ${name} exists already`);
      const user = await m.save(UserEntity, m.create(UserEntity, { name, admin: false }));
      await m.insert(TokenEntity, { hash: hashToken(token), userId: user.id });
      await this.ctx.emit(m, { type: 'user.created', actor: actor.name, via: actor.via, message: `${actor.name} created user ${name}` });
    });
    return { name, token };
  }

  async access(actor: Actor, pipelineName: string): Promise<{ user: string; permission: Permission }[]> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.read, `access ${pipelineName}`);
    const rows: { user: string; permission: Permission }[] = await this.ctx.db.query(
      'SELECT u.name AS "user", g.permission FROM grants g JOIN users u ON u.id = g.user_id WHERE g.pipeline_id = $1 ORDER BY u.name',
      [pipeline.id],
    );
    return rows;
  }

  async addAccess(
    actor: Actor,
    pipelineName: string,
    userName: string,
    permission: string,
  ): Promise<{ user: string; permission: Permission }> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.manageAccess, `access:add ${pipelineName}`);
    if (!isPermission(permission)) throw new InvalidInput(`"${permission}" is not a permission: use view, deploy, operate or manage`);
    const user = await this.findUser(userName);
    await this.ctx.transaction(async (m) => {
      await m.upsert(GrantEntity, { pipelineId: pipeline.id, userId: user.id, permission }, ['pipelineId', 'userId']);
      await this.ctx.emit(m, {
        type: 'access.added',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} gave ${user.name} ${permission} on ${pipeline.name}`,
        data: { user: user.name, permission },
      });
    });
    return { user: user.name, permission };
  }

  /**
   * What every member of the Slack workspace holds on the pipeline at least
   * (`none`, `view` or `deploy`), the way Heroku Teams give members view on a
   * pipeline's apps. Grants above it stay as they are.
   */
  async setDefaultAccess(
    actor: Actor,
    pipelineName: string,
    permission: string,
  ): Promise<{ pipeline: string; permission: 'none' | 'view' | 'deploy' }> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.manageAccess, `access:default ${pipelineName}`);
    if (permission !== 'none' && permission !== 'view' && permission !== 'deploy')
      throw new InvalidInput(
        `"${permission.slice(0, 30)}" is not a default: use none, view or deploy (operate and manage are granted one by one)`,
      );
    await this.ctx.transaction(async (m) => {
      await m.update(PipelineEntity, { id: pipeline.id }, { defaultAccess: permission === 'none' ? null : permission });
      await this.ctx.emit(m, {
        type: 'access.default',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message:
          permission === 'none'
            ? `${actor.name} made ${pipeline.name} visible to its grants only`
            : `${actor.name} gave every member of the Slack workspace at least ${permission} on ${pipeline.name}`,
        data: { permission },
      });
    });
    return { pipeline: pipeline.name, permission };
  }

  async removeAccess(actor: Actor, pipelineName: string, userName: string): Promise<{ user: string; floor: 'view' | 'deploy' | null }> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.manageAccess, `access:remove ${pipelineName}`);
    const user = await this.findUser(userName);
    await this.ctx.transaction(async (m) => {
      const removed = await m.delete(GrantEntity, { pipelineId: pipeline.id, userId: user.id });
      if (!removed.affected) throw new NotFound(`${user.name} has no access to ${pipeline.name}`);
      await this.ctx.emit(m, {
        type: 'access.removed',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} removed ${user.name} from ${pipeline.name}`,
        data: { user: user.name },
      });
    });
    // A Slack user keeps the pipeline's access:default: the answer says so, lest "no longer has access" mislead.
    return { user: user.name, floor: user.externalId?.startsWith('slack:') ? pipeline.defaultAccess : null };
  }

  /**
   * The flowops user behind an account on a chat front (`slack:<team>:<user>`),
   * created on first contact with no grants. `admin` comes from the front's
   * settings (FLOW_SLACK_ADMINS) and is applied on every contact.
   */
  async externalUser(input: { externalId: string; name: string; admin: boolean; via: Actor['via']; guest?: boolean }): Promise<Actor> {
    const users = this.ctx.db.getRepository(UserEntity);
    let user = await users.findOneBy({ externalId: input.externalId });
    // First contact may come twice at once (a command and a click): insert-or-ignore, then read.
    const base =
      input.name
        .toLowerCase()
        .replace(/[^a-z0-9._-]+/g, '-')
        .replace(/^[^a-z]+/, '')
        .slice(0, 30) || 'user';
    const suffix = input.externalId.split(':').pop()!.toLowerCase();
    for (const name of [base, `${base}-${suffix}`.slice(0, 39)]) {
      if (user || !USER_NAME.test(name)) continue;
      await this.ctx.transaction(async (m) => {
        const inserted = await m
          .createQueryBuilder()
          .insert()
          .into(UserEntity)
          .values({ name, admin: input.admin, externalId: input.externalId })
          .orIgnore()
          .returning('id')
          .execute();
        if ((inserted.raw as unknown[]).length) {
          await this.ctx.emit(m, {
            type: 'user.created',
            actor: name,
            via: input.via,
            message: `${name} joined from ${input.externalId.split(':')[0]}`,
          });
        }
      });
      user = await users.findOneBy({ externalId: input.externalId });
    }
    if (!user) throw new Conflict(`could not create a flowops user for ${input.name}; an admin can create one with \`users:create\``);
    // FLOW_SLACK_ADMINS decides a Slack-only user's admin. A CLI user linked to the account keeps their own
    // admin flag, and is an admin in Slack besides while FLOW_SLACK_ADMINS lists the account.
    const cliUser = await this.ctx.db.getRepository(TokenEntity).existsBy({ userId: user.id });
    const guest = input.guest ? { guest: true } : {};
    if (cliUser) return { id: user.id, name: user.name, admin: user.admin || input.admin, via: input.via, ...guest };
    if (user.admin !== input.admin) {
      await users.update({ id: user.id }, { admin: input.admin });
      user.admin = input.admin;
    }
    return { id: user.id, name: user.name, admin: user.admin, via: input.via, ...guest };
  }

  /** The pipeline's `access:default` (null: none), for answers that list who can do what. */
  async defaultAccess(actor: Actor, pipelineName: string): Promise<'view' | 'deploy' | null> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.read, `access ${pipelineName}`);
    return pipeline.defaultAccess;
  }

  /** The chat accounts (`slack:<team>:<user>`) of the named users that have one, so a front can mention them. */
  async externalIds(names: string[]): Promise<Record<string, string>> {
    if (!names.length) return {};
    const rows = await this.ctx.db.getRepository(UserEntity).findBy({ name: In(names.slice(0, 200)) });
    return Object.fromEntries(rows.flatMap((u) => (u.externalId ? [[u.name, u.externalId]] : [])));
  }

  private async findUser(name: string): Promise<User> {
    const user = await this.ctx.db.getRepository(UserEntity).findOneBy({ name });
    if (!user) throw new NotFound(`no user "${name}"; an admin creates one with \`users:create ${name}\``);
    return user;
  }
}
