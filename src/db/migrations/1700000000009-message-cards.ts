import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Chat messages follow a subject, not only an operation: an operation
 * (`op:<id>`), a pull request (`pr:<pipeline id>:<number>`) or a push to the
 * deploy branch (`push:<pipeline id>:<sha>`), each one message per channel,
 * updated in place. `live` marks a message that shows buttons, so it is redrawn
 * (and its buttons retired) when something newer happens in its pipeline;
 * `shown_hash` lets a redraw that changes nothing skip the call to Slack;
 * `attempts` and `retry_at` back off a message Slack keeps refusing, so it
 * cannot crowd out the others.
 * Operations remember what caused them (a push, a pull request), and pull
 * requests are kept as GitHub last described them.
 */
export class MessageCards1700000000009 implements MigrationInterface {
  name = 'MessageCards1700000000009';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE status_messages ADD COLUMN subject text;
      ALTER TABLE status_messages ADD COLUMN pipeline text;
      ALTER TABLE status_messages ADD COLUMN live boolean NOT NULL DEFAULT false;
      ALTER TABLE status_messages ADD COLUMN shown_hash text;
      ALTER TABLE status_messages ADD COLUMN attempts integer NOT NULL DEFAULT 0;
      ALTER TABLE status_messages ADD COLUMN retry_at timestamptz;
      UPDATE status_messages m SET subject = 'op:' || m.operation_id,
        pipeline = (SELECT p.name FROM operations o JOIN pipelines p ON p.id = o.pipeline_id WHERE o.id = m.operation_id);
      ALTER TABLE status_messages ALTER COLUMN subject SET NOT NULL;
      ALTER TABLE status_messages DROP COLUMN operation_id;
      ALTER TABLE status_messages ADD CONSTRAINT status_messages_subject_channel UNIQUE (subject, channel);
      CREATE INDEX status_messages_live ON status_messages(pipeline) WHERE live;
      ALTER TABLE operations ADD COLUMN cause text;
      CREATE TABLE pull_requests (
        pipeline_id integer NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
        number integer NOT NULL,
        title text NOT NULL DEFAULT '',
        author text,
        branch text NOT NULL,
        head_sha text NOT NULL,
        state text NOT NULL,
        pushes integer NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (pipeline_id, number)
      );
      CREATE INDEX pull_requests_head ON pull_requests(pipeline_id, head_sha);
      -- What a message looks up on every redraw: whether a release was promoted on, and a push's events.
      CREATE INDEX events_promoted_from ON events ((data->'promotion'->'from'->>'app'), (data->'promotion'->'from'->>'version'))
        WHERE type = 'promote.started';
      CREATE INDEX events_by_sha ON events (pipeline, (data->>'sha'))
        WHERE type IN ('github.push', 'autodeploy.skipped', 'autodeploy.failed');
      CREATE INDEX operations_cause ON operations (cause) WHERE cause IS NOT NULL;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX events_promoted_from, events_by_sha, operations_cause;
      DROP TABLE pull_requests;
      ALTER TABLE operations DROP COLUMN cause;
      DELETE FROM status_messages WHERE subject NOT LIKE 'op:%';
      ALTER TABLE status_messages ADD COLUMN operation_id integer;
      UPDATE status_messages SET operation_id = substr(subject, 4)::integer;
      ALTER TABLE status_messages DROP COLUMN subject, DROP COLUMN pipeline, DROP COLUMN live, DROP COLUMN shown_hash, DROP COLUMN attempts, DROP COLUMN retry_at;
      ALTER TABLE status_messages ALTER COLUMN operation_id SET NOT NULL;
      ALTER TABLE status_messages ADD CONSTRAINT status_messages_operation_id_channel_key UNIQUE (operation_id, channel);
    `);
  }
}
