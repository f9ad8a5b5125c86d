import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Deploy locks: one app, or every app of a pipeline's stage, held by one
 * person until they unlock it or it expires. `ended_at` is set when it ends
 * (unlocked, or expired and swept), so the table is also its history; at most
 * one open lock per app and per stage.
 */
export class DeployLocks1700000000010 implements MigrationInterface {
  name = 'DeployLocks1700000000010';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE deploy_locks (
        id serial PRIMARY KEY,
        pipeline_id integer NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
        app_id integer REFERENCES apps(id) ON DELETE CASCADE,
        stage text,
        holder_id integer NOT NULL,
        reason text,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        ended_at timestamptz,
        ended_by text,
        CHECK ((app_id IS NULL) <> (stage IS NULL))
      );
      CREATE UNIQUE INDEX deploy_locks_open_app ON deploy_locks(app_id) WHERE ended_at IS NULL AND app_id IS NOT NULL;
      CREATE UNIQUE INDEX deploy_locks_open_stage ON deploy_locks(pipeline_id, stage) WHERE ended_at IS NULL AND stage IS NOT NULL;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE deploy_locks');
  }
}
