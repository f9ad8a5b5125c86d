import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `sweeps`: when each periodic sweep (stale review apps, lock and approval
 * expiry, nudges, audit retention) last ran, whichever flowops process ran it:
 * a process runs a sweep only when it moves `ran_at` on, so replicas sharing
 * the database run each once per period, not once each.
 */
export class Replicas1700000000020 implements MigrationInterface {
  name = 'Replicas1700000000020';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE sweeps (
      name text PRIMARY KEY,
      ran_at timestamptz NOT NULL
    )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE sweeps');
  }
}
