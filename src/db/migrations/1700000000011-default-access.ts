import type { MigrationInterface, QueryRunner } from 'typeorm';

/** `access:default`: what every member of the Slack workspace holds on a pipeline at least (null: nothing). */
export class DefaultAccess1700000000011 implements MigrationInterface {
  name = 'DefaultAccess1700000000011';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE pipelines ADD COLUMN default_access text CHECK (default_access IN ('view', 'deploy'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE pipelines DROP COLUMN default_access');
  }
}
