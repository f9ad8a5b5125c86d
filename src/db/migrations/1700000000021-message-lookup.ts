import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A refusal on a clicked button looks up the clicked message (channel and ts)
 * among flowops' own status messages, to tell whether it showed that pipeline
 * there: an index keeps that lookup cheap however many clicks come in.
 */
export class MessageLookup1700000000021 implements MigrationInterface {
  name = 'MessageLookup1700000000021';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX status_messages_at ON status_messages(channel, ts)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX status_messages_at`);
  }
}
