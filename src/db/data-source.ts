import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { Pool, PoolClient } from 'pg';
import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver.js';
import { entities } from './entities.ts';
import { Initial1700000000000 } from './migrations/1700000000000-initial.ts';
import { Chat1700000000001 } from './migrations/1700000000001-chat.ts';
import { GitHub1700000000002 } from './migrations/1700000000002-github.ts';
import { Ci1700000000003 } from './migrations/1700000000003-ci.ts';
import { ReviewApps1700000000004 } from './migrations/1700000000004-review-apps.ts';
import { ExternalRefs1700000000005 } from './migrations/1700000000005-external-refs.ts';
import { SeenRequests1700000000006 } from './migrations/1700000000006-seen-requests.ts';
import { OutboxRetries1700000000008 } from './migrations/1700000000008-outbox-retries.ts';
import { MessageCards1700000000009 } from './migrations/1700000000009-message-cards.ts';
import { DeployLocks1700000000010 } from './migrations/1700000000010-deploy-locks.ts';
import { DefaultAccess1700000000011 } from './migrations/1700000000011-default-access.ts';
import { IdentityLinks1700000000012 } from './migrations/1700000000012-identity-links.ts';
import { Approvals1700000000013 } from './migrations/1700000000013-approvals.ts';
import { Formation1700000000014 } from './migrations/1700000000014-formation.ts';
import { Audit1700000000016 } from './migrations/1700000000016-audit.ts';
import { Nudges1700000000015 } from './migrations/1700000000015-nudges.ts';
import { LiveHome1700000000018 } from './migrations/1700000000018-live-home.ts';
import { Placement1700000000019 } from './migrations/1700000000019-placement.ts';
import { Replicas1700000000020 } from './migrations/1700000000020-replicas.ts';
import { MessageLookup1700000000021 } from './migrations/1700000000021-message-lookup.ts';
import { RefusalRepeats1700000000022 } from './migrations/1700000000022-refusal-repeats.ts';
import { migrateJobQueue } from './job-queue.ts';
import { databaseOutage } from './outage.ts';

export interface Database {
  dataSource: DataSource;
  /** `postgres` or `pglite`, for logs and the start-up line. */
  kind: 'postgres' | 'pglite';
  close(): Promise<void>;
}

const migrations = [
  Initial1700000000000,
  Chat1700000000001,
  GitHub1700000000002,
  Ci1700000000003,
  ReviewApps1700000000004,
  ExternalRefs1700000000005,
  SeenRequests1700000000006,
  OutboxRetries1700000000008,
  MessageCards1700000000009,
  DeployLocks1700000000010,
  DefaultAccess1700000000011,
  IdentityLinks1700000000012,
  Approvals1700000000013,
  Formation1700000000014,
  Audit1700000000016,
  Nudges1700000000015,
  LiveHome1700000000018,
  Placement1700000000019,
  Replicas1700000000020,
  MessageLookup1700000000021,
  RefusalRepeats1700000000022,
];

/**
 * Opens the database and runs pending migrations. With a URL: that Postgres.
 * Without: PGlite stored in `<dataDir>/pgdata` (with `dataDir` null: in memory,
 * gone when closed; for tests), served to the ordinary `pg` driver over a private
 * Unix socket, so every path runs the same driver, entities and SQL. PGlite is
 * one session, so the pool there holds a single connection. On Postgres, the
 * job queue's schema (graphile-worker) is installed too; PGlite runs operations
 * in process.
 */
export async function openDatabase(databaseUrl: string | undefined, dataDir: string | null): Promise<Database> {
  if (databaseUrl) {
    const dataSource = new DataSource({
      type: 'postgres',
      url: databaseUrl,
      entities,
      migrations,
      migrationsTransactionMode: 'each',
      extra: { max: 10 },
      poolErrorHandler: onConnectionError,
    });
    await dataSource.initialize();
    guardConnections(dataSource);
    await migrateOnce(dataSource, databaseUrl).catch(async (err: unknown) => {
      await dataSource.destroy();
      throw err;
    });
    return { dataSource, kind: 'postgres', close: () => dataSource.destroy() };
  }

  if (dataDir !== null) await mkdir(dataDir, { recursive: true });
  const pglite = dataDir === null ? await PGlite.create() : await PGlite.create(path.join(dataDir, 'pgdata'));
  const socketDir = await mkdtemp(path.join(os.tmpdir(), 'flowops-pg-'));
  const server = new PGLiteSocketServer({ db: pglite, path: path.join(socketDir, '.s.PGSQL.5432') });
  await server.start();
  const dataSource = new DataSource({
    type: 'postgres',
    host: socketDir,
    port: 5432,
    username: 'postgres',
    database: 'postgres',
    entities,
    migrations,
    migrationsRun: true,
    migrationsTransactionMode: 'each',
    extra: { max: 1 },
    poolErrorHandler: onConnectionError,
  });
  await dataSource.initialize();
  guardConnections(dataSource);
  return {
    dataSource,
    kind: 'pglite',
    async close() {
      await dataSource.destroy();
      await server.stop();
      await pglite.close();
      await rm(socketDir, { recursive: true, force: true });
    },
  };
}

/** The session advisory lock replicas take around migrations ("migr" in ASCII). */
const MIGRATIONS_LOCK = 0x6d696772;

/**
 * Runs pending migrations, flowops' and then the job queue's (graphile-worker
 * migrates its own schema), holding an advisory lock: replicas starting at
 * once on a new database would otherwise each try the same migration.
 */
async function migrateOnce(dataSource: DataSource, databaseUrl: string): Promise<void> {
  const lock = dataSource.createQueryRunner();
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock($1)', [MIGRATIONS_LOCK]);
    await dataSource.runMigrations({ transaction: 'each' });
    await migrateJobQueue(databaseUrl);
  } finally {
    await lock.query('SELECT pg_advisory_unlock($1)', [MIGRATIONS_LOCK]).catch(() => undefined);
    await lock.release();
  }
}

const onConnectionError = (err: unknown) => databaseOutage.noticed(err, { where: 'connection pool' });

/**
 * pg emits 'error' on a connection that dies while it is checked out between
 * queries (inside a transaction, say), and pg-pool listens only while it is
 * idle: with nobody listening, Node turns that into an uncaught exception and
 * a database restart would take flowops down. Every connection gets a listener
 * when it is checked out; the query that used it fails and says so.
 */
function guardConnections(dataSource: DataSource): void {
  const pool = (dataSource.driver as PostgresDriver).master as Pool;
  pool.on('acquire', (client: PoolClient) => {
    if (!client.listeners('error').includes(onConnectionError)) client.on('error', onConnectionError);
  });
}
