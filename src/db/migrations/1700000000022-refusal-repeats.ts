import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Refusals are recorded by design, so anyone can try the same thing many times:
 * a refusal like one of the same person's within the hour counts on that record
 * (`repeats`, `last_at`) instead of adding a line (src/engine/context.ts).
 */
export class RefusalRepeats1700000000022 implements MigrationInterface {
  name = 'RefusalRepeats1700000000022';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_records ADD COLUMN repeats integer NOT NULL DEFAULT 1, ADD COLUMN last_at timestamptz`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_records DROP COLUMN repeats, DROP COLUMN last_at`);
  }
}
