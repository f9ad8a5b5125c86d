import { In, type DataSource } from 'typeorm';
import { EventEntity, StatusMessageEntity, type FlowEvent, type StatusMessage } from '../db/entities.ts';

const LEASE_SECONDS = 30;

/**
 * Delivery of the events table (the outbox) to a front, and the status messages
 * a front keeps up to date. Front-agnostic: a "channel" and a message id are
 * strings; Slack's notifier is one consumer.
 */
export class Outbox {
  constructor(
    private readonly db: DataSource,
    /** The runner (flowops process) that takes leases: its id in the runners table. */
    readonly runnerId: string,
  ) {}

  /**
   * The next events after the consumer's cursor, if this process holds the
   * consumer's lease (taken or renewed here). Another process draining the
   * same consumer makes this return null.
   */
  async next(consumer: string, limit: number): Promise<FlowEvent[] | null> {
    await this.db.query(
      'INSERT INTO outbox_cursors (consumer, last_event_id) SELECT $1, coalesce(max(id), 0) FROM events ON CONFLICT DO NOTHING',
      [consumer],
    );
    const leased: { last_event_id: string }[] = (
      await this.db.query(
        `UPDATE outbox_cursors SET leased_by = $2, leased_until = now() + interval '${LEASE_SECONDS} seconds'
          WHERE consumer = $1 AND (leased_by IS NULL OR leased_by = $2 OR leased_until < now())
          RETURNING last_event_id`,
        [consumer, this.runnerId],
      )
    )[0];
    if (!leased.length) return null;
    return this.db
      .getRepository(EventEntity)
      .createQueryBuilder('e')
      .where('e.id > :after', { after: leased[0]!.last_event_id })
      .orderBy('e.id', 'ASC')
      .limit(limit)
      .getMany();
  }

  async advance(consumer: string, lastEventId: string): Promise<void> {
    await this.db.query('UPDATE outbox_cursors SET last_event_id = $2 WHERE consumer = $1 AND leased_by = $3', [
      consumer,
      lastEventId,
      this.runnerId,
    ]);
  }

  /**
   * Parks an event the consumer could not deliver (yet), to be tried again at
   * `nextAttemptAt`; the cursor moves on past it. `key` names what it updates
   * (one commit status, one deployment): later events of the key wait behind it.
   */
  async park(
    consumer: string,
    event: FlowEvent,
    key: string,
    retry: { attempts: number; nextAttemptAt: Date; error: string | null },
  ): Promise<void> {
    await this.db.query(
      `INSERT INTO outbox_retries (consumer, event_id, key, attempts, next_attempt_at, last_error) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (consumer, event_id) DO UPDATE SET attempts = EXCLUDED.attempts, next_attempt_at = EXCLUDED.next_attempt_at, last_error = EXCLUDED.last_error`,
      [consumer, event.id, key, retry.attempts, retry.nextAttemptAt, retry.error],
    );
  }

  /** Whether an event of `key` is parked, so a later one of the same key must not overtake it. */
  async isParked(consumer: string, key: string): Promise<boolean> {
    const rows: unknown[] = await this.db.query('SELECT 1 FROM outbox_retries WHERE consumer = $1 AND key = $2 LIMIT 1', [consumer, key]);
    return rows.length > 0;
  }

  async unpark(consumer: string, eventId: string): Promise<void> {
    await this.db.query('DELETE FROM outbox_retries WHERE consumer = $1 AND event_id = $2', [consumer, eventId]);
  }

  /** Parked events due for another attempt, each the first of its key, oldest first; none unless this process holds the consumer's lease. */
  async due(consumer: string, limit: number): Promise<{ event: FlowEvent; attempts: number }[]> {
    const rows: { event_id: string; attempts: number }[] = await this.db.query(
      `SELECT r.event_id, r.attempts FROM outbox_retries r
        WHERE r.consumer = $1 AND r.next_attempt_at <= now()
          AND NOT EXISTS (SELECT 1 FROM outbox_retries o WHERE o.consumer = r.consumer AND o.key = r.key AND o.event_id < r.event_id)
          AND EXISTS (SELECT 1 FROM outbox_cursors c WHERE c.consumer = r.consumer AND c.leased_by = $2)
        ORDER BY r.event_id LIMIT $3`,
      [consumer, this.runnerId, limit],
    );
    if (!rows.length) return [];
    const events = await this.db.getRepository(EventEntity).findBy({ id: In(rows.map((r) => r.event_id)) });
    return rows.flatMap((r) => {
      const event = events.find((e) => String(e.id) === String(r.event_id));
      return event ? [{ event, attempts: r.attempts }] : [];
    });
  }

  /** When the next parked event (the first of its key) is due, or null when none is parked. */
  async nextDue(consumer: string): Promise<Date | null> {
    const rows: { at: Date | null }[] = await this.db.query(
      `SELECT min(r.next_attempt_at) AS at FROM outbox_retries r
        WHERE r.consumer = $1 AND NOT EXISTS (SELECT 1 FROM outbox_retries o WHERE o.consumer = r.consumer AND o.key = r.key AND o.event_id < r.event_id)`,
      [consumer],
    );
    return rows[0]?.at ? new Date(rows[0].at) : null;
  }

  async release(consumer: string): Promise<void> {
    await this.db.query('UPDATE outbox_cursors SET leased_by = NULL, leased_until = NULL WHERE consumer = $1 AND leased_by = $2', [
      consumer,
      this.runnerId,
    ]);
  }

  /** The channels that are feeds of `pipeline` for operations of `kind`. */
  async feedChannels(pipeline: string, kind: string): Promise<string[]> {
    const rows: { channel: string }[] = await this.db.query(
      'SELECT s.channel FROM subscriptions s JOIN pipelines p ON p.id = s.pipeline_id WHERE p.name = $1 AND $2 = ANY(s.events)',
      [pipeline, kind],
    );
    return rows.map((r) => r.channel);
  }

  /** The channels that are feeds of `pipeline` and asked for `optIn` (`subscribe <pipeline> --nudges`). */
  async optInChannels(pipeline: string, optIn: string): Promise<string[]> {
    const rows: { channel: string }[] = await this.db.query(
      'SELECT s.channel FROM subscriptions s JOIN pipelines p ON p.id = s.pipeline_id WHERE p.name = $1 AND $2 = ANY(s.opt_ins) ORDER BY s.channel',
      [pipeline, optIn],
    );
    return rows.map((r) => r.channel);
  }

  /** A message of `subject` in `channel` (idempotent): posted by the front's next sweep, then kept up to date. */
  async addStatusMessage(subject: string, pipeline: string | null, channel: string): Promise<void> {
    await this.db.createQueryBuilder().insert().into(StatusMessageEntity).values({ subject, pipeline, channel }).orIgnore().execute();
  }

  /** Marks the messages of these subjects as behind. */
  async touch(subjects: string[]): Promise<void> {
    if (subjects.length) await this.db.query('UPDATE status_messages SET wanted = wanted + 1 WHERE subject = ANY($1)', [subjects]);
  }

  /** Marks the pipeline's messages that show buttons as behind, so they are redrawn (and retired when stale). */
  async touchLive(pipeline: string): Promise<void> {
    await this.db.query('UPDATE status_messages SET wanted = wanted + 1 WHERE pipeline = $1 AND live', [pipeline]);
  }

  /** Messages behind their subject and due, oldest first (one Slack keeps refusing waits its turn, backing off). */
  behind(limit: number): Promise<StatusMessage[]> {
    return this.db
      .getRepository(StatusMessageEntity)
      .createQueryBuilder('m')
      .where('m.wanted > m.shown AND (m.retry_at IS NULL OR m.retry_at <= now())')
      .orderBy('m.id', 'ASC')
      .limit(limit)
      .getMany();
  }

  /** Records what the message shows as of `wanted` (a newer event keeps it behind). */
  async shown(
    message: StatusMessage,
    patch: { ts: string | null; threaded: string[]; live: boolean; shownHash: string | null },
  ): Promise<void> {
    await this.db
      .getRepository(StatusMessageEntity)
      .update({ id: message.id }, { shown: message.wanted, attempts: 0, retryAt: null, ...patch });
  }

  /**
   * The front could not deliver the message. `permanent` (the channel is gone
   * or archived, the bot was removed): this state is given up, and only a later
   * change tries again. Otherwise it is tried again after a back-off that grows
   * to ten minutes.
   */
  async undelivered(message: StatusMessage, permanent: boolean): Promise<void> {
    const attempts = message.attempts + 1;
    const waitMs = Math.min(5_000 * 2 ** (attempts - 1), 600_000);
    await this.db
      .getRepository(StatusMessageEntity)
      .update(
        { id: message.id },
        permanent ? { shown: message.wanted, live: false, attempts, retryAt: null } : { attempts, retryAt: new Date(Date.now() + waitMs) },
      );
  }

  /** Records what was posted so far (the message's id, its thread replies), so a sweep cut short never posts them twice. */
  async posted(message: StatusMessage, patch: { ts: string; threaded: string[] }): Promise<void> {
    await this.db.getRepository(StatusMessageEntity).update({ id: message.id }, patch);
  }

  /** Remembers an id a host gave for one of ours (kind "github-deployment", key "shop-staging@v3"). */
  async remember(kind: string, key: string, value: string): Promise<void> {
    await this.db.query(
      'INSERT INTO external_refs (kind, key, value) VALUES ($1, $2, $3) ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value',
      [kind, key, value],
    );
  }

  async recall(kind: string, key: string): Promise<string | null> {
    const rows: { value: string }[] = await this.db.query('SELECT value FROM external_refs WHERE kind = $1 AND key = $2', [kind, key]);
    return rows[0]?.value ?? null;
  }
}
