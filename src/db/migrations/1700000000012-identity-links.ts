import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One person, one identity: a Slack account linked to a CLI user. A link code
 * (only its sha256) lets the person prove, from their own CLI token, that the
 * Slack account is theirs; the Slack user's row then records which user it was
 * merged into (`linked_to`), so an admin can undo the link.
 */
export class IdentityLinks1700000000012 implements MigrationInterface {
  name = 'IdentityLinks1700000000012';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE link_codes (
        hash text PRIMARY KEY,
        user_id integer NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        expires_at timestamptz NOT NULL
      );
      ALTER TABLE users ADD COLUMN linked_to integer REFERENCES users(id) ON DELETE SET NULL;
      ALTER TABLE users ADD COLUMN slack_external_id text;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE link_codes; ALTER TABLE users DROP COLUMN linked_to, DROP COLUMN slack_external_id');
  }
}
