import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Initial1700000000000 implements MigrationInterface {
  name = 'Initial1700000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE users (
        id serial PRIMARY KEY,
        name text NOT NULL UNIQUE,
        admin boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE tokens (
        hash text PRIMARY KEY,
        user_id integer NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE pipelines (
        id serial PRIMARY KEY,
        name text NOT NULL UNIQUE,
        repo text NOT NULL,
        branch text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE grants (
        pipeline_id integer NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
        user_id integer NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        permission text NOT NULL CHECK (permission IN ('view','deploy','operate','manage')),
        PRIMARY KEY (pipeline_id, user_id)
      );
      CREATE INDEX grants_user ON grants(user_id);
      CREATE TABLE slugs (
        id text PRIMARY KEY,
        size bigint NOT NULL,
        commit text NOT NULL,
        procfile jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE operations (
        id serial PRIMARY KEY,
        kind text NOT NULL,
        pipeline_id integer REFERENCES pipelines(id) ON DELETE SET NULL,
        status text NOT NULL,
        actor_id integer NOT NULL,
        description text NOT NULL,
        targets jsonb NOT NULL DEFAULT '[]',
        error text,
        runner_id text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX operations_open ON operations(status) WHERE status IN ('pending','running');
      CREATE TABLE apps (
        id serial PRIMARY KEY,
        name text NOT NULL UNIQUE,
        pipeline_id integer NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
        stage text NOT NULL CHECK (stage IN ('development','review','staging','production','test')),
        last_version integer NOT NULL DEFAULT 0,
        current_release_id integer,
        config jsonb NOT NULL DEFAULT '{}',
        locked_by integer,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX apps_pipeline ON apps(pipeline_id);
      CREATE TABLE builds (
        id serial PRIMARY KEY,
        pipeline_id integer NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
        commit text NOT NULL,
        status text NOT NULL,
        output text NOT NULL DEFAULT '',
        slug_id text REFERENCES slugs(id),
        operation_id integer,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE releases (
        id serial PRIMARY KEY,
        app_id integer NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        version integer NOT NULL,
        slug_id text REFERENCES slugs(id),
        commit text,
        config jsonb NOT NULL,
        description text NOT NULL,
        status text NOT NULL CHECK (status IN ('pending','succeeded','failed')),
        output text NOT NULL DEFAULT '',
        operation_id integer,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (app_id, version)
      );
      ALTER TABLE apps ADD FOREIGN KEY (current_release_id) REFERENCES releases(id) ON DELETE SET NULL;
      CREATE TABLE events (
        id bigserial PRIMARY KEY,
        type text NOT NULL,
        pipeline text,
        app text,
        operation_id integer,
        actor text,
        via text NOT NULL,
        message text NOT NULL,
        data jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX events_operation ON events(operation_id, id);
      CREATE INDEX events_pipeline ON events(pipeline, id);
      CREATE TABLE runners (
        id text PRIMARY KEY,
        hostname text NOT NULL,
        pid integer NOT NULL,
        heartbeat_at timestamptz NOT NULL
      );
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE runners, events, releases, builds, apps, operations, slugs, grants, pipelines, tokens, users CASCADE');
  }
}
