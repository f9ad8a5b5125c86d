import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Ids that a source host gave for flowops' objects (a GitHub deployment per release). */
export class ExternalRefs1700000000005 implements MigrationInterface {
  name = 'ExternalRefs1700000000005';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE external_refs (
        kind text NOT NULL,
        key text NOT NULL,
        value text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (kind, key)
      );
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE external_refs');
  }
}
