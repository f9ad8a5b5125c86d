import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Where an app runs: `platform` (`local`, the embedded platform, or
 * `kubernetes`) and, on Kubernetes, its `namespace`. `instance_keys`: keys
 * every flowops replica on this database shares, generated once (the key that
 * signs slug URLs for Kubernetes pods).
 */
export class Placement1700000000019 implements MigrationInterface {
  name = 'Placement1700000000019';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE apps ADD COLUMN platform text NOT NULL DEFAULT 'local'`);
    await q.query(`ALTER TABLE apps ADD COLUMN namespace text`);
    await q.query(`CREATE TABLE instance_keys (
      name text PRIMARY KEY,
      value text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE instance_keys');
    await q.query('ALTER TABLE apps DROP COLUMN namespace');
    await q.query('ALTER TABLE apps DROP COLUMN platform');
  }
}
