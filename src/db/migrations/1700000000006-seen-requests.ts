import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Signed requests already taken, until they expire: a replay of one (or Slack's
 * retry of an event) does nothing, across every process sharing the database.
 */
export class SeenRequests1700000000006 implements MigrationInterface {
  name = 'SeenRequests1700000000006';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE seen_requests (
        key text PRIMARY KEY,
        expires_at timestamptz NOT NULL
      );
      CREATE INDEX seen_requests_expires_at ON seen_requests (expires_at);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE seen_requests');
  }
}
