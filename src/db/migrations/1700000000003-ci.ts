import type { MigrationInterface, QueryRunner } from 'typeorm';

/** CI test runs per pipeline, and the pipeline's CI and auto-deploy settings. */
export class Ci1700000000003 implements MigrationInterface {
  name = 'Ci1700000000003';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE pipelines ADD COLUMN ci_enabled boolean NOT NULL DEFAULT false;
      ALTER TABLE pipelines ADD COLUMN autodeploy jsonb;
      ALTER TABLE pipelines ADD COLUMN last_test_run integer NOT NULL DEFAULT 0;
      CREATE TABLE test_runs (
        id serial PRIMARY KEY,
        pipeline_id integer NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
        number integer NOT NULL,
        commit text NOT NULL,
        branch text,
        status text NOT NULL CHECK (status IN ('pending','building','running','succeeded','failed','errored','cancelled')),
        output text NOT NULL DEFAULT '',
        runner_id text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (pipeline_id, number)
      );
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE test_runs; ALTER TABLE pipelines DROP COLUMN ci_enabled, DROP COLUMN autodeploy, DROP COLUMN last_test_run');
  }
}
