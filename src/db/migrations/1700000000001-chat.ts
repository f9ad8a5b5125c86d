import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Chat fronts: users known by an external account, channel feeds, the messages kept up to date, and outbox cursors. */
export class Chat1700000000001 implements MigrationInterface {
  name = 'Chat1700000000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE users ADD COLUMN external_id text UNIQUE;
      CREATE TABLE subscriptions (
        pipeline_id integer NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
        channel text NOT NULL,
        events text[] NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (pipeline_id, channel)
      );
      CREATE TABLE status_messages (
        id serial PRIMARY KEY,
        operation_id integer NOT NULL,
        channel text NOT NULL,
        ts text,
        wanted bigint NOT NULL DEFAULT 1,
        shown bigint NOT NULL DEFAULT 0,
        threaded text[] NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (operation_id, channel)
      );
      CREATE INDEX status_messages_behind ON status_messages(id) WHERE wanted > shown;
      CREATE TABLE outbox_cursors (
        consumer text PRIMARY KEY,
        last_event_id bigint NOT NULL DEFAULT 0,
        leased_by text,
        leased_until timestamptz
      );
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE outbox_cursors, status_messages, subscriptions; ALTER TABLE users DROP COLUMN external_id');
  }
}
