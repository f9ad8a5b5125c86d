import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Review apps: the pipeline's settings, and one row per pull request. */
export class ReviewApps1700000000004 implements MigrationInterface {
  name = 'ReviewApps1700000000004';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE pipelines ADD COLUMN review_apps jsonb;
      CREATE TABLE review_apps (
        id serial PRIMARY KEY,
        pipeline_id integer NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
        pr integer NOT NULL,
        branch text NOT NULL,
        head_sha text NOT NULL,
        fork boolean NOT NULL DEFAULT false,
        status text NOT NULL CHECK (status IN ('pending','creating','created','deleting','deleted','errored')),
        app_name text NOT NULL,
        error text,
        last_push_at timestamptz NOT NULL DEFAULT now(),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (pipeline_id, pr)
      );
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE review_apps; ALTER TABLE pipelines DROP COLUMN review_apps');
  }
}
