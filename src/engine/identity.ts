import { createHash, randomBytes } from 'node:crypto';
import { PERMISSIONS, TokenEntity, UserEntity, type Permission } from '../db/entities.ts';
import { Conflict, InvalidInput, NotFound, PermissionDenied } from '../errors.ts';
import type { Actor } from './access.ts';
import type { EngineContext } from './context.ts';
import type { UserSummary } from './views.ts';

/** How long a `/flow login` code lasts. */
const CODE_MINUTES = 10;
/** Base32 without look-alikes: a code is read off a screen and typed. */
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
const hashCode = (code: string) => createHash('sha256').update(`link:${code}`).digest('hex');

/** `K7QX-M2PD-9RTA`: 60 bits, single use, ten minutes. */
function newCode(): string {
  const bytes = randomBytes(12);
  const chars = [...bytes].map((b) => ALPHABET[b % ALPHABET.length]).join('');
  return `${chars.slice(0, 4)}-${chars.slice(4, 8)}-${chars.slice(8, 12)}`;
}

/**
 * One person, one identity. `/flow login` gives a Slack user a one-time code;
 * `flowops login <code>`, run with the person's own CLI token, makes the CLI
 * user the person behind that Slack account: its grants (the higher of each),
 * its locks and its operations move over, and later Slack requests act as the
 * CLI user. An admin sees links (`users`) and undoes one (`users:unlink`).
 */
export class Identity {
  constructor(private readonly ctx: EngineContext) {}

  /** In Slack: a code to type in the CLI (`flowops login <code>`). */
  async loginCode(actor: Actor): Promise<{ code: string; expires: string }> {
    if (actor.via !== 'slack')
      throw new InvalidInput('`login` without a code is typed in Slack (`/flow login`); it answers the code to give `flowops login`');
    if (await this.ctx.db.getRepository(TokenEntity).existsBy({ userId: actor.id }))
      throw new Conflict(
        `this Slack account is already ${actor.name}, a CLI user; an admin can undo that with \`users:unlink ${actor.name}\``,
      );
    const code = newCode();
    const expires = new Date(Date.now() + CODE_MINUTES * 60_000);
    await this.ctx.transaction(async (m) => {
      await m.query('DELETE FROM link_codes WHERE user_id = $1 OR expires_at < now()', [actor.id]);
      await m.query('INSERT INTO link_codes (hash, user_id, expires_at) VALUES ($1, $2, $3)', [hashCode(code), actor.id, expires]);
    });
    return { code, expires: expires.toISOString() };
  }

  /** In the CLI: links the Slack user who asked for `code` to the CLI user running this. */
  async login(actor: Actor, code: string): Promise<{ user: string; slack: string }> {
    if (actor.via === 'slack')
      throw new InvalidInput('`/flow login` takes no code in Slack: type the code it gives in your terminal, `flowops login <code>`');
    const normalized = code.toUpperCase().replace(/[^A-Z0-9]/g, '');
    if (normalized.length !== 12) throw new InvalidInput('a login code looks like K7QX-M2PD-9RTA: type `/flow login` in Slack for one');
    const formatted = `${normalized.slice(0, 4)}-${normalized.slice(4, 8)}-${normalized.slice(8, 12)}`;
    return this.ctx.transaction(async (m) => {
      const [used] = (await m.query('DELETE FROM link_codes WHERE hash = $1 RETURNING user_id, expires_at', [hashCode(formatted)])) as [
        { user_id: number; expires_at: Date }[],
        number,
      ];
      const row = used[0];
      if (!row || new Date(row.expires_at) < new Date())
        throw new NotFound(
          'this login code is unknown or has expired (codes last 10 minutes and work once): type `/flow login` in Slack for a new one',
        );
      const slackUser = await m.findOneByOrFail(UserEntity, { id: row.user_id });
      const person = await m.findOneByOrFail(UserEntity, { id: actor.id });
      if (slackUser.id === person.id) throw new Conflict(`${person.name} is already this Slack account`);
      if (!slackUser.externalId?.startsWith('slack:') || (await m.existsBy(TokenEntity, { userId: slackUser.id })))
        throw new Conflict('that Slack account is already linked to a flowops user');
      if (person.externalId)
        throw new Conflict(
          `${person.name} is already linked to a Slack account; an admin can undo that with \`users:unlink ${person.name}\``,
        );
      const account = slackUser.externalId;
      await m.query('UPDATE users SET external_id = NULL, linked_to = $2, slack_external_id = $3 WHERE id = $1', [
        slackUser.id,
        person.id,
        account,
      ]);
      // Admin is not carried over: FLOW_SLACK_ADMINS makes the person an admin while in Slack, for as long as it lists them.
      await m.query('UPDATE users SET external_id = $2 WHERE id = $1', [person.id, account]);
      // Grants: the higher of the two on each pipeline, then the Slack user's go.
      const grants: { pipeline_id: number; permission: Permission }[] = await m.query(
        'SELECT pipeline_id, permission FROM grants WHERE user_id = $1',
        [slackUser.id],
      );
      for (const g of grants) {
        const [mine] = (await m.query('SELECT permission FROM grants WHERE user_id = $1 AND pipeline_id = $2', [
          person.id,
          g.pipeline_id,
        ])) as {
          permission: Permission;
        }[];
        const higher = mine && PERMISSIONS.indexOf(mine.permission) >= PERMISSIONS.indexOf(g.permission) ? mine.permission : g.permission;
        await m.query(
          'INSERT INTO grants (pipeline_id, user_id, permission) VALUES ($1, $2, $3) ON CONFLICT (pipeline_id, user_id) DO UPDATE SET permission = EXCLUDED.permission',
          [g.pipeline_id, person.id, higher],
        );
      }
      await m.query('DELETE FROM grants WHERE user_id = $1', [slackUser.id]);
      await m.query('UPDATE deploy_locks SET holder_id = $2 WHERE holder_id = $1 AND ended_at IS NULL', [slackUser.id, person.id]);
      await m.query('UPDATE operations SET actor_id = $2 WHERE actor_id = $1', [slackUser.id, person.id]);
      // Approvals: one person's requests, and one approval per person (approving from both accounts counted once).
      await m.query('UPDATE approval_requests SET requester_id = $2 WHERE requester_id = $1', [slackUser.id, person.id]);
      await m.query(
        'DELETE FROM approvals a WHERE a.user_id = $1 AND EXISTS (SELECT 1 FROM approvals b WHERE b.request_id = a.request_id AND b.user_id = $2)',
        [slackUser.id, person.id],
      );
      await m.query('UPDATE approvals SET user_id = $2 WHERE user_id = $1', [slackUser.id, person.id]);
      await this.ctx.emit(m, {
        type: 'user.linked',
        actor: person.name,
        via: actor.via,
        message: `${person.name} linked the Slack account of ${slackUser.name}: one person now`,
        data: { user: person.name, slackUser: slackUser.name },
      });
      return { user: person.name, slack: slackUser.name };
    });
  }

  /** Every user, with their Slack account and CLI token (admin). */
  async users(actor: Actor): Promise<UserSummary[]> {
    if (!actor.admin) throw new PermissionDenied('`users` needs an admin');
    const rows: { name: string; admin: boolean; external_id: string | null; cli: boolean; linked_from: string | null }[] =
      await this.ctx.db.query(
        `SELECT u.name, u.admin, u.external_id, EXISTS (SELECT 1 FROM tokens t WHERE t.user_id = u.id) AS cli,
              (SELECT s.name FROM users s WHERE s.linked_to = u.id AND s.slack_external_id = u.external_id LIMIT 1) AS linked_from
         FROM users u WHERE u.linked_to IS NULL ORDER BY u.name`,
      );
    return rows.map((r) => ({ name: r.name, admin: r.admin, slack: r.external_id, cli: r.cli, linkedFrom: r.linked_from }));
  }

  /** Undoes a link (admin): the Slack account is its own user again, with no grants (the merged ones stay with the CLI user). */
  async unlink(actor: Actor, name: string): Promise<{ user: string; slack: string }> {
    if (!actor.admin) throw new PermissionDenied('`users:unlink` needs an admin');
    return this.ctx.transaction(async (m) => {
      const person = await m.findOneBy(UserEntity, { name });
      if (!person) throw new NotFound(`no user "${name.slice(0, 40)}"; \`users\` lists them`);
      const [merged] = (await m.query('SELECT id, name FROM users WHERE linked_to = $1 AND slack_external_id = $2', [
        person.id,
        person.externalId,
      ])) as {
        id: number;
        name: string;
      }[];
      if (!person.externalId || !merged) throw new NotFound(`${person.name} is not linked to a Slack account`);
      await m.query('UPDATE users SET external_id = NULL WHERE id = $1', [person.id]);
      await m.query('UPDATE users SET external_id = slack_external_id, linked_to = NULL, slack_external_id = NULL WHERE id = $1', [
        merged.id,
      ]);
      await this.ctx.emit(m, {
        type: 'user.unlinked',
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} unlinked ${person.name} from the Slack account of ${merged.name}`,
        data: { user: person.name, slackUser: merged.name },
      });
      return { user: person.name, slack: merged.name };
    });
  }
}
