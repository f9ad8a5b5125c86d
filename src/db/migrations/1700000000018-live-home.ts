import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `commit_logs`: what the source said lies between two commits of a pipeline
 * (commits never change, so neither does the answer), so the App Home shows
 * "ahead by N commits" without a git or GitHub call per pipeline.
 * `home_views`: who opened flowops' App Home and when, so a change re-publishes
 * it for the people looking at it, also after a restart; and the pipeline
 * each picked when more than fit.
 */
export class LiveHome1700000000018 implements MigrationInterface {
  name = 'LiveHome1700000000018';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE commit_logs (
      pipeline_id integer NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
      base text NOT NULL,
      head text NOT NULL,
      ahead integer NOT NULL,
      commits jsonb NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (pipeline_id, base, head)
    )`);
    await q.query(`CREATE TABLE home_views (
      team_id text NOT NULL,
      user_id text NOT NULL,
      opened_at timestamptz NOT NULL,
      picked text,
      PRIMARY KEY (team_id, user_id)
    )`);
    await q.query('CREATE INDEX home_views_opened_at ON home_views (opened_at)');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE home_views');
    await q.query('DROP TABLE commit_logs');
  }
}
