import { randomUUID } from 'node:crypto';
import { Outbox } from '../../src/engine/outbox.ts';
import path from 'node:path';
import { openDatabase, type Database } from '../../src/db/data-source.ts';
import { SYSTEM, type Actor } from '../../src/engine/access.ts';
import { Engine } from '../../src/engine/engine.ts';
import type { PlacementSettings } from '../../src/engine/placement.ts';
import type { ApprovalView, OperationView } from '../../src/engine/views.ts';
import { NotFound } from '../../src/errors.ts';
import { freshDatabase } from './database.ts';
import { MemoryPlatform } from './memory-platform.ts';
import { MemorySource } from './memory-source.ts';

export interface TestEngine {
  engine: Engine;
  /** An admin acting through the CLI. */
  admin: Actor;
  platform: MemoryPlatform;
  database: Database;
  /** The repository a pipeline named `repo` reads from (created on first use). */
  repo(name: string): MemorySource;
  /** A user holding nothing yet. */
  user(name: string): Promise<Actor>;
  /** Waits until the operation has ended, and returns it as the engine reports it. */
  /** Waits for the operation to end and returns it as it ended; an approval request filed instead fails the test. */
  settled(op: OperationView | ApprovalView): Promise<OperationView>;
  close(): Promise<void>;
}

/**
 * The engine with everything real but where apps run and where code comes
 * from: PGlite in memory with the migrations (with DATABASE_URL, as in CI, a
 * fresh database on that Postgres), an in-memory `Platform` and in-memory
 * sources. For service rules that need no processes: it starts in about a
 * second and a release takes milliseconds.
 */
export async function createTestEngine(options: { placement?: PlacementSettings } = {}): Promise<TestEngine> {
  const postgres = await freshDatabase();
  const database = await openDatabase(postgres.url, null);
  const platform = new MemoryPlatform();
  const repos = new Map<string, MemorySource>();
  // A pipeline's repo string is a path (resolved) or github:owner/name; either names a repository here.
  const keyOf = (repo: string) => (repo.startsWith('github:') ? repo : path.resolve(repo));
  const repo = (name: string) => {
    const key = keyOf(name);
    if (!repos.has(key)) repos.set(key, new MemorySource());
    return repos.get(key)!;
  };
  const engine = new Engine(database.dataSource, platform, {
    openSource: async (name) => {
      const source = repos.get(keyOf(name));
      if (!source) throw new NotFound(`no repository ${name}`);
      return source;
    },
    outbox: new Outbox(database.dataSource, randomUUID()),
    ...(options.placement ? { placement: options.placement } : {}),
    // On Postgres, operations go through the job queue, as in a server.
    jobQueue: postgres.url ? { databaseUrl: postgres.url, concurrency: 8 } : undefined,
  });
  const admin: Actor = { id: 0, name: 'admin', admin: true, via: 'cli' };
  await engine.ensureAdmin('admin-token');
  Object.assign(admin, await engine.authenticate('admin-token', 'cli'));
  return {
    engine,
    admin,
    platform,
    database,
    repo,
    async user(name) {
      const { token } = await engine.createUser(admin, name);
      return engine.authenticate(token, 'cli');
    },
    async settled(op) {
      if (op.kind === 'approval') throw new Error(`expected an operation, got approval request ${op.id} (${op.description})`);
      await engine.idle();
      return (await engine.operation(SYSTEM, op.id)).operation;
    },
    async close() {
      await engine.idle();
      await engine.stopWorker();
      await database.close();
      await postgres.drop();
    },
  };
}
