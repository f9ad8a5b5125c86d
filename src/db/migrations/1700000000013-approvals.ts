import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The two-person rule. `approval_rules`: the stages of a pipeline where a
 * deploy, promotion or rollback needs approvals first. `approval_requests`: one
 * such operation as asked for, pinned (`request` holds the exact commit,
 * release or version it ships), until it is approved and shipped (`operation_id`),
 * rejected, withdrawn, expired, or fails to start. `approvals`: who approved,
 * one row per person.
 */
export class Approvals1700000000013 implements MigrationInterface {
  name = 'Approvals1700000000013';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE approval_rules (
        pipeline_id integer NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
        stage text NOT NULL,
        approvers integer NOT NULL CHECK (approvers BETWEEN 1 AND 5),
        created_by text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (pipeline_id, stage)
      );
      CREATE TABLE approval_requests (
        id serial PRIMARY KEY,
        pipeline_id integer NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
        stage text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('deploy', 'promote', 'rollback')),
        requester_id integer NOT NULL,
        requester_admin boolean NOT NULL DEFAULT false,
        via text NOT NULL,
        description text NOT NULL,
        targets text[] NOT NULL,
        request jsonb NOT NULL,
        details jsonb NOT NULL DEFAULT '{}',
        needed integer NOT NULL,
        status text NOT NULL DEFAULT 'pending',
        operation_id integer REFERENCES operations(id) ON DELETE SET NULL,
        decided_by text,
        reason text,
        cause text,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX approval_requests_open ON approval_requests(pipeline_id) WHERE status IN ('pending', 'approved');
      CREATE TABLE approvals (
        request_id integer NOT NULL REFERENCES approval_requests(id) ON DELETE CASCADE,
        user_id integer NOT NULL,
        name text NOT NULL,
        via text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (request_id, user_id)
      );
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE approvals; DROP TABLE approval_requests; DROP TABLE approval_rules');
  }
}
