import type { MigrationInterface, QueryRunner } from 'typeorm';

/** `apps.formation`: the dynos per process type an app runs (`ps:scale web=2`), kept across releases and restarts. */
export class Formation1700000000014 implements MigrationInterface {
  name = 'Formation1700000000014';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE apps ADD COLUMN formation jsonb NOT NULL DEFAULT '{}'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE apps DROP COLUMN formation');
  }
}
