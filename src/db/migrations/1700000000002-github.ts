import type { MigrationInterface, QueryRunner } from 'typeorm';

/** GitHub webhook deliveries seen, so a redelivery (same X-GitHub-Delivery) changes nothing. */
export class GitHub1700000000002 implements MigrationInterface {
  name = 'GitHub1700000000002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE github_deliveries (
        id text PRIMARY KEY,
        event text NOT NULL,
        repository text,
        received_at timestamptz NOT NULL DEFAULT now()
      );
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE github_deliveries');
  }
}
