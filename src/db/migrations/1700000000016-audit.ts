import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `audit_records`: the audit trail — who did what to a pipeline, when, from
 * which front, and how it ended — written in the transaction of the change it
 * records (or alone, for a refusal, which changes nothing else). Apart from the
 * events table (the outbox, which the fronts and the CLI read), so retention
 * (FLOW_AUDIT_RETENTION_DAYS) can delete old records without touching anything
 * else. `subject` ties a record to the operation or approval request whose end
 * settles its outcome (`op:12`, `approval:3`).
 */
export class Audit1700000000016 implements MigrationInterface {
  name = 'Audit1700000000016';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE audit_records (
      id bigserial PRIMARY KEY,
      created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      pipeline text NOT NULL,
      actor text NOT NULL,
      via text NOT NULL,
      action text NOT NULL,
      target text NOT NULL DEFAULT '',
      outcome text NOT NULL,
      detail text,
      subject text
    )`);
    await q.query('CREATE INDEX audit_records_pipeline ON audit_records (pipeline, created_at)');
    await q.query('CREATE INDEX audit_records_created_at ON audit_records (created_at)');
    await q.query('CREATE INDEX audit_records_subject ON audit_records (subject) WHERE subject IS NOT NULL');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE audit_records');
  }
}
