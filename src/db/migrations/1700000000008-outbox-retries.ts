import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Events an outbox consumer could not deliver yet (GitHub answered 500, or
 * asked to wait): parked here with their next attempt, so the consumer's
 * cursor moves on and one undeliverable event holds up nothing but the events
 * of the same key (the same commit status, the same deployment) behind it.
 */
export class OutboxRetries1700000000008 implements MigrationInterface {
  name = 'OutboxRetries1700000000008';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE outbox_retries (
        consumer text NOT NULL,
        event_id bigint NOT NULL REFERENCES events(id) ON DELETE CASCADE,
        key text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL,
        last_error text,
        PRIMARY KEY (consumer, event_id)
      );
      CREATE INDEX outbox_retries_key ON outbox_retries(consumer, key, event_id);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE outbox_retries');
  }
}
