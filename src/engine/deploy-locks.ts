import type { EntityManager } from 'typeorm';
import { AppEntity, type App, type Pipeline } from '../db/entities.ts';
import { Conflict, InvalidInput, LockHeld, NotFound } from '../errors.ts';
import { log } from '../log.ts';
import { until } from '../format.ts';
import { permits, REQUIRED, type Actor } from './access.ts';
import type { Access } from './access-control.ts';
import type { EngineContext } from './context.ts';
import { parseStage } from './stages.ts';
import type { LockView } from './views.ts';

/** How long a lock lasts when no `--for` is given, and the longest one may last. */
export interface LockSettings {
  defaultMs: number;
  maxMs: number;
}

export const DEFAULT_LOCK_SETTINGS: LockSettings = { defaultMs: 2 * 3_600_000, maxMs: 24 * 3_600_000 };

/** `--force --reason "…"` as given: ship through someone else's deploy lock (manage), announced. */
export interface Forcing {
  force?: boolean;
  reason?: string;
}

/** A checked `--force --reason`. */
export interface Force {
  reason: string;
}

interface LockRow {
  id: number;
  pipeline_id: number;
  pipeline: string;
  app: string | null;
  stage: string | null;
  holder_id: number;
  holder: string;
  reason: string | null;
  created_at: Date;
  expires_at: Date;
}

/** The first key of the advisory locks that serialize lock changes (the second is the pipeline id). */
const LOCKS_NAMESPACE = 0x10c5;

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `30m`, `2h`, `1d`: a lock's length. */
export function parseDuration(text: string): number {
  const match = /^(\d{1,6})([smhd])$/.exec(text);
  if (!match || Number(match[1]) === 0)
    throw new InvalidInput(`"${text.slice(0, 20)}" is not a length of time: write it like 30m, 2h or 1d`);
  return Number(match[1]) * UNITS[match[2]!]!;
}

/** "2h", "1d 3h", "45m": how long, for messages. */
export function formatDuration(ms: number): string {
  const minutes = Math.max(1, Math.round(ms / 60_000));
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 ? `${hours}h ${minutes % 60}m` : `${hours}h`;
  return hours % 24 ? `${Math.floor(hours / 24)}d ${hours % 24}h` : `${Math.floor(hours / 24)}d`;
}

const clock = (d: Date) => until(d.toISOString());

/** What a lock row locks, as typed: the app, or `pipeline:stage`. */
const targetName = (row: LockRow) => row.app ?? `${row.pipeline}:${row.stage}`;

function lockView(row: LockRow): LockView {
  return {
    id: row.id,
    target: targetName(row),
    pipeline: row.pipeline,
    app: row.app,
    stage: (row.stage as LockView['stage']) ?? null,
    holder: row.holder,
    reason: row.reason,
    since: new Date(row.created_at).toISOString(),
    until: new Date(row.expires_at).toISOString(),
  };
}

/** A lock that holds now: not ended, not past its time (an expired one not yet swept counts as ended). */
const OPEN = 'l.ended_at IS NULL AND l.expires_at > now()';

const SELECT = `SELECT l.id, l.pipeline_id, p.name AS pipeline, a.name AS app, l.stage, l.holder_id, coalesce(u.name, 'flowops') AS holder, l.reason, l.created_at, l.expires_at
  FROM deploy_locks l JOIN pipelines p ON p.id = l.pipeline_id LEFT JOIN apps a ON a.id = l.app_id LEFT JOIN users u ON u.id = l.holder_id`;

/**
 * Deploy locks (Shipit's, with an end): `lock shop-staging` or `lock shop:staging`
 * keeps everyone but the holder from shipping there — deploys, promotions,
 * rollbacks and config changes — until `unlock` or the lock expires. An
 * emergency goes through with `--force --reason`, for managers, and says so in
 * the feeds and the audit trail.
 */
export class DeployLocks {
  constructor(
    private readonly ctx: EngineContext,
    private readonly authz: Access,
    private readonly settings: LockSettings,
  ) {}

  /** Locks an app or a stage (operate). The holder locking again extends it. */
  async lock(actor: Actor, target: string, options: { reason?: string; for?: string } = {}): Promise<LockView> {
    const { pipeline, app, stage, name } = await this.target(actor, target, 'lock');
    const length = options.for === undefined ? this.settings.defaultMs : parseDuration(options.for);
    if (length > this.settings.maxMs)
      throw new InvalidInput(`a lock lasts at most ${formatDuration(this.settings.maxMs)} here (FLOW_LOCK_MAX); lock again when it ends`);
    const reason = options.reason?.trim() || null;
    if (reason && reason.length > 500) throw new InvalidInput('a lock reason is at most 500 characters');
    return this.change(pipeline, app, stage, async (m, held) => {
      if (held && held.holder_id !== actor.id)
        throw new LockHeld(`${name} is already locked: ${this.describe(held)}`, { target: name, holder: held.holder });
      // A lock of someone else's that covers part of this target (the stage of this app, an app of this stage).
      const apps: App[] = app ? [app] : await m.findBy(AppEntity, { pipelineId: pipeline.id, stage: stage as App['stage'] });
      const other = (await this.openLocksOn(m, pipeline, apps)).find((r) => r.holder_id !== actor.id);
      if (other)
        throw new LockHeld(`${targetName(other)} (part of ${name}) is locked by ${this.describe(other)}`, {
          target: targetName(other),
          holder: other.holder,
        });
      // A deploy already under way there would ship into the lock: it ends first.
      const busy: { description: string }[] = await m.query(
        `SELECT o.description FROM operations o
          WHERE o.pipeline_id = $1 AND o.status IN ('pending', 'running')
            AND EXISTS (SELECT 1 FROM jsonb_array_elements(o.targets) t WHERE t->>'app' = ANY($2))
          LIMIT 1`,
        [pipeline.id, apps.map((a) => a.name)],
      );
      if (busy[0]) throw new Conflict(`${name} has an operation under way (${busy[0].description}); lock it when that ends`);
      const expires = new Date(Date.now() + length);
      if (held) {
        await m.query('UPDATE deploy_locks SET expires_at = $2, reason = coalesce($3, reason) WHERE id = $1', [held.id, expires, reason]);
      } else {
        await m.query(
          'INSERT INTO deploy_locks (pipeline_id, app_id, stage, holder_id, reason, expires_at) VALUES ($1, $2, $3, $4, $5, $6)',
          [pipeline.id, app?.id ?? null, app ? null : stage, actor.id, reason, expires],
        );
      }
      await this.added(
        m,
        actor,
        { pipeline, app, name },
        expires,
        reason ?? held?.reason ?? null,
        held ? 'extended the lock on' : 'locked',
      );
      return lockView((await this.openOn(m, pipeline, app, stage))!);
    }).catch(this.ctx.lockRefusal(actor, pipeline.name, 'lock', name));
  }

  /** Ends a lock (operate): the holder's, or anyone's, as in Shipit. `ifLock`: only that lock (a button names the one it was shown for). */
  async unlock(actor: Actor, target: string, options: { ifLock?: number } = {}): Promise<LockView> {
    const { pipeline, app, stage, name } = await this.target(actor, target, 'unlock');
    return this.change(pipeline, app, stage, async (m, held) => {
      if (!held) throw new NotFound(`${name} is not locked; \`locks ${pipeline.name}\` lists the pipeline's locks`);
      if (options.ifLock !== undefined && held.id !== options.ifLock)
        throw new Conflict(`that lock on ${name} has ended; ${name} is locked again, by ${this.describe(held)}. Nothing was unlocked`);
      await m.query('UPDATE deploy_locks SET ended_at = now(), ended_by = $2 WHERE id = $1', [held.id, actor.name]);
      await this.ctx.emit(m, {
        type: 'lock.removed',
        pipeline: pipeline.name,
        app: app?.name ?? null,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} unlocked ${name}${held.holder_id === actor.id ? '' : ` (locked by ${held.holder})`}`,
        data: { target: name, holder: held.holder },
      });
      return lockView(held);
    });
  }

  /**
   * Extends the actor's own lock by `byMs` (an hour from the lock's
   * **Extend 1h**), at most to FLOW_LOCK_MAX from now. Operate is checked again
   * and only the holder extends: a lock is one person's. `ifLock`: only that
   * lock (the button names the one it was shown for).
   */
  async extendLock(actor: Actor, target: string, options: { ifLock?: number; byMs?: number } = {}): Promise<LockView> {
    const { pipeline, app, stage, name } = await this.target(actor, target, 'lock');
    const byMs = options.byMs ?? 3_600_000;
    return this.change(pipeline, app, stage, async (m, held) => {
      if (!held) throw new NotFound(`${name} is not locked any more; \`lock ${name}\` locks it again`);
      if (options.ifLock !== undefined && held.id !== options.ifLock)
        throw new Conflict(`that lock on ${name} has ended; ${name} is locked again, by ${this.describe(held)}. Nothing was extended`);
      if (held.holder_id !== actor.id)
        throw new Conflict(`only ${held.holder}, who holds the lock on ${name}, can extend it; nothing changed`);
      const now = Date.now();
      const cap = now + this.settings.maxMs;
      const was = new Date(held.expires_at).getTime();
      const expires = new Date(Math.min(was + byMs, cap));
      if (expires.getTime() <= was)
        throw new InvalidInput(`a lock lasts at most ${formatDuration(this.settings.maxMs)} here (FLOW_LOCK_MAX); lock again when it ends`);
      await m.query('UPDATE deploy_locks SET expires_at = $2 WHERE id = $1', [held.id, expires]);
      await this.added(m, actor, { pipeline, app, name }, expires, held.reason, 'extended the lock on', { extended: true });
      return lockView((await this.openOn(m, pipeline, app, stage))!);
    });
  }

  /**
   * The `lock.added` event of a lock taken, taken again by its holder, or
   * extended (`extended`: a nudge's Extend 1h, which the audit trail records as
   * lock:extend).
   */
  private added(
    m: EntityManager,
    actor: Actor,
    target: { pipeline: Pipeline; app: App | null; name: string },
    expires: Date,
    reason: string | null,
    verb: 'locked' | 'extended the lock on',
    extra: { extended?: true } = {},
  ): Promise<void> {
    return this.ctx.emit(m, {
      type: 'lock.added',
      pipeline: target.pipeline.name,
      app: target.app?.name ?? null,
      actor: actor.name,
      via: actor.via,
      message: `${actor.name} ${verb} ${target.name} until ${clock(expires)}${reason ? `: ${reason}` : ''}`,
      data: { target: target.name, until: expires.toISOString(), reason, ...extra },
    });
  }

  /**
   * A change to the locks of a target, in one transaction: one lock change at a
   * time per pipeline (two clicks at once give one lock and a clear answer, never
   * a key violation), expired locks ended first, and `work` given the target's
   * open lock (null: none).
   */
  private change<T>(
    pipeline: Pipeline,
    app: App | null,
    stage: string | null,
    work: (m: EntityManager, held: LockRow | null) => Promise<T>,
  ): Promise<T> {
    return this.ctx.transaction(async (m) => {
      await m.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCKS_NAMESPACE, pipeline.id]);
      await this.sweep(m, pipeline.id);
      return work(m, await this.openOn(m, pipeline, app, stage));
    });
  }

  /** The open locks that end after `from` and by `to`, with their holder's chat account (`slack:<team>:<user>`), for a reminder. */
  async endingBetween(from: Date, to: Date): Promise<{ lock: LockView; holderAccount: string | null }[]> {
    const rows: (LockRow & { holder_account: string | null })[] = await this.ctx.db.query(
      `SELECT l.id, l.pipeline_id, p.name AS pipeline, a.name AS app, l.stage, l.holder_id, coalesce(u.name, 'flowops') AS holder,
              l.reason, l.created_at, l.expires_at, u.external_id AS holder_account
         FROM deploy_locks l JOIN pipelines p ON p.id = l.pipeline_id LEFT JOIN apps a ON a.id = l.app_id LEFT JOIN users u ON u.id = l.holder_id
        WHERE l.ended_at IS NULL AND l.expires_at > $1 AND l.expires_at <= $2 ORDER BY l.id`,
      [from, to],
    );
    return rows.map((r) => ({ lock: lockView(r), holderAccount: r.holder_account }));
  }

  /** The open locks of the pipelines the actor can see (or of one). */
  async locks(actor: Actor, pipelineName?: string): Promise<LockView[]> {
    const ids = pipelineName
      ? [(await this.authz.authorize(actor, pipelineName, REQUIRED.read, `locks ${pipelineName}`)).id]
      : await this.authz.visiblePipelineIds(actor);
    if (!ids.length) return [];
    const rows: LockRow[] = await this.ctx.db.query(`${SELECT} WHERE ${OPEN} AND l.pipeline_id = ANY($1) ORDER BY p.name, l.id`, [ids]);
    return rows.map(lockView);
  }

  /** The open lock that applies to each app of a pipeline (the app's own, or its stage's), by app name. */
  async locksOf(pipeline: Pipeline): Promise<Map<string, LockView>> {
    return this.locksOfApps([pipeline.id], await this.ctx.db.getRepository(AppEntity).findBy({ pipelineId: pipeline.id }));
  }

  /** The open lock on each of these apps (of these pipelines), by app name: one query for any number of pipelines. */
  async locksOfApps(pipelineIds: number[], apps: App[]): Promise<Map<string, LockView>> {
    const found = new Map<string, LockView>();
    if (!pipelineIds.length) return found;
    const rows: LockRow[] = await this.ctx.db.query(`${SELECT} WHERE ${OPEN} AND l.pipeline_id = ANY($1)`, [pipelineIds]);
    for (const app of apps) {
      const row =
        rows.find((r) => r.app === app.name) ??
        rows.find((r) => r.app === null && r.pipeline_id === app.pipelineId && r.stage === app.stage);
      if (row) found.set(app.name, lockView(row));
    }
    return found;
  }

  /**
   * Checks `--force --reason` before the operation's transaction (the
   * permission is read outside it, where the embedded database can answer):
   * a reason is required, and manage.
   */
  async force(actor: Actor, pipeline: Pipeline, input: Forcing): Promise<Force | undefined> {
    if (!input.force) return undefined;
    const reason = input.reason?.trim();
    if (!reason) throw new InvalidInput('--force needs a --reason: it is announced in the feeds and kept in the audit trail');
    const held = await this.authz.permissionOf(actor, pipeline);
    if (!permits(held, 'manage')) {
      await this.ctx.refused(actor, pipeline.name, '--force', pipeline.name, `needs manage; has ${held ?? 'none'}`);
      throw new InvalidInput(
        `--force needs manage on ${pipeline.name}; without it, ask the lock's holder or someone with operate to unlock`,
      );
    }
    return { reason: reason.slice(0, 500) };
  }

  /**
   * Refuses to ship to `targets` while someone else holds a lock on one of
   * them, naming the holder, the reason and the times. In the transaction that
   * creates the operation, so a lock taken a moment before counts. `force`
   * (manage, with a reason) ships anyway, and is announced.
   */
  async assertFree(m: EntityManager, actor: Actor, pipeline: Pipeline, targets: App[], force?: Force): Promise<void> {
    const blocking = (await this.openLocksOn(m, pipeline, targets)).filter((r) => r.holder_id !== actor.id);
    if (!blocking.length) return;
    if (!force) {
      const lock = blocking[0]!;
      const what = targetName(lock);
      throw new LockHeld(
        `${what} is locked by ${this.describe(lock)}. Only ${lock.holder} can ship there until then: ask them, \`unlock ${what}\` (operate), or in an emergency add \`--force --reason "…"\` (manage)`,
        { target: what, holder: lock.holder },
      );
    }
    for (const lock of blocking) {
      await this.ctx.emit(m, {
        type: 'lock.overridden',
        pipeline: pipeline.name,
        app: lock.app,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} shipped through ${lock.holder}'s lock on ${targetName(lock)} with --force: ${force.reason}`,
        data: { target: targetName(lock), holder: lock.holder, reason: force.reason },
      });
    }
  }

  /** Ends the locks whose time is up, each with a `lock.expired` event (the feeds say so). */
  async expireLocks(): Promise<void> {
    try {
      await this.ctx.transaction((m) => this.sweep(m, null));
    } catch (err) {
      log.warn({ err }, 'expired locks not swept');
    }
  }

  private async sweep(m: EntityManager, pipelineId: number | null): Promise<void> {
    // An UPDATE … RETURNING answers [rows, affected].
    const [ended] = (await m.query(
      `UPDATE deploy_locks l SET ended_at = l.expires_at, ended_by = 'expired'
        WHERE l.ended_at IS NULL AND l.expires_at <= now() AND ($1::int IS NULL OR l.pipeline_id = $1)
        RETURNING l.id`,
      [pipelineId],
    )) as [{ id: number }[], number];
    if (!ended.length) return;
    const rows: LockRow[] = await m.query(`${SELECT} WHERE l.id = ANY($1)`, [ended.map((r) => r.id)]);
    for (const row of rows) {
      await this.ctx.emit(m, {
        type: 'lock.expired',
        pipeline: row.pipeline,
        app: row.app,
        via: 'system',
        message: `${row.holder}'s lock on ${targetName(row)} expired`,
        data: { target: targetName(row), holder: row.holder },
      });
    }
  }

  /** The open locks on any of `apps`: their own, or their stages'. */
  private openLocksOn(m: EntityManager, pipeline: Pipeline, apps: App[]): Promise<LockRow[]> {
    return m.query(`${SELECT} WHERE ${OPEN} AND l.pipeline_id = $1 AND (l.app_id = ANY($2) OR l.stage = ANY($3))`, [
      pipeline.id,
      apps.map((a) => a.id),
      [...new Set(apps.map((a) => a.stage))],
    ]);
  }

  private describe(lock: LockRow): string {
    return `${lock.holder} since ${clock(new Date(lock.created_at))}, until ${clock(new Date(lock.expires_at))}${lock.reason ? ` ("${lock.reason}")` : ''}`;
  }

  private async openOn(m: EntityManager, pipeline: Pipeline, app: App | null, stage: string | null): Promise<LockRow | null> {
    const rows: LockRow[] = app
      ? await m.query(`${SELECT} WHERE l.ended_at IS NULL AND l.app_id = $1`, [app.id])
      : await m.query(`${SELECT} WHERE l.ended_at IS NULL AND l.pipeline_id = $1 AND l.stage = $2`, [pipeline.id, stage]);
    return rows[0] ?? null;
  }

  /** `shop-staging` (an app) or `shop:staging` (a stage of a pipeline), with operate checked. */
  private async target(
    actor: Actor,
    target: string,
    command: string,
  ): Promise<{ pipeline: Pipeline; app: App | null; stage: string | null; name: string }> {
    const colon = target.indexOf(':');
    if (colon < 0) {
      const { app, pipeline } = await this.authz.authorizeApp(actor, target, 'operate', `${command} ${target}`);
      return { pipeline, app, stage: null, name: app.name };
    }
    const stage = parseStage(target.slice(colon + 1));
    const pipeline = await this.authz.authorize(actor, target.slice(0, colon), 'operate', `${command} ${target}`);
    return { pipeline, app: null, stage, name: `${pipeline.name}:${stage}` };
  }
}
