import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `nudges`: each nudge flowops sent, one per kind, subject and (UTC) day. The
 * unique key is what keeps a nudge from going out twice, across restarts and
 * across processes: the row and the event that delivers it are written in one
 * transaction, and a second writer's insert does nothing.
 * `subscriptions.opt_ins`: what a feed asked for beyond its events
 * (`subscribe <pipeline> --nudges`); nothing for the feeds there are already.
 */
export class Nudges1700000000015 implements MigrationInterface {
  name = 'Nudges1700000000015';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE nudges (
      id serial PRIMARY KEY,
      kind text NOT NULL,
      subject text NOT NULL,
      day date NOT NULL,
      pipeline text,
      data jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (kind, subject, day)
    )`);
    await q.query(`ALTER TABLE subscriptions ADD COLUMN opt_ins text[] NOT NULL DEFAULT '{}'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('ALTER TABLE subscriptions DROP COLUMN opt_ins');
    await q.query('DROP TABLE nudges');
  }
}
