import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OperationView, ReleaseView } from '../src/engine/views.ts';
import { freshDatabase } from './helpers/database.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { cliAt, spawnServer, type ServerProcess } from './helpers/server-process.ts';
import { TcpProxy } from './helpers/tcp-proxy.ts';

const TOKEN = 'test-admin-token-outage-0123456789';

// A database that goes away is a Postgres server's failure: the embedded PGlite lives in flowops' own process.
describe.skipIf(!process.env.DATABASE_URL)(
  'a database outage while an operation finishes (Postgres only: skipped without DATABASE_URL)',
  () => {
    let dir: string;
    let database: Awaited<ReturnType<typeof freshDatabase>>;
    let proxy: TcpProxy;
    let server: ServerProcess;

    async function flowops<T>(...argv: string[]): Promise<T> {
      const { out, err } = await cliAt(server.url, TOKEN, [...argv, '--json']);
      if (!out) throw new Error(err);
      return JSON.parse(out) as T;
    }
    async function until<T>(read: () => T | Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
      for (let i = 0; i < 600; i++) {
        const value = await read();
        if (done(value)) return value;
        await sleep(100);
      }
      throw new Error(`timed out waiting for ${what}; server output:\n${server.output()}`);
    }
    const logLines = () =>
      server
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'));

    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-outage-'));
      database = await freshDatabase();
      const url = new URL(database.url!);
      proxy = await TcpProxy.start({ host: url.hostname, port: Number(url.port || 5432) });
      url.hostname = '127.0.0.1';
      url.port = String(proxy.port);
      server = await spawnServer({
        FLOW_DATA_DIR: path.join(dir, 'data'),
        PORT: '0',
        FLOW_ADMIN_TOKEN: TOKEN,
        DATABASE_URL: url.toString(),
      });
    });
    afterAll(async () => {
      proxy.restore();
      await flowops('apps:destroy', 'outage-staging', '--confirm', 'outage-staging').catch(() => undefined);
      server?.child.kill('SIGTERM');
      await proxy.close();
      await database.drop();
      await rm(dir, { recursive: true, force: true });
    });

    it('waits for the database to come back, then records the deploy as it really ended, and keeps serving', async () => {
      const repo = await GitRepo.create(
        path.join(dir, 'repo'),
        webApp('outage v1', 'setTimeout(() => console.log("migrated 2 tables"), 1500)'),
      );
      await flowops('pipelines:create', 'outage', '--repo', repo.dir);
      await flowops('apps:create', 'outage-staging', '--pipeline', 'outage', '--stage', 'staging');
      const op = await flowops<OperationView>('deploy', 'outage', 'to', 'staging', '--no-wait');
      await until(
        () => flowops<ReleaseView[]>('releases', 'outage-staging'),
        (r) => r[0]?.status === 'pending',
        'the release phase to start',
      );

      proxy.cut();
      // The operation's next write (the release phase's end) finds no database: it says so once, and waits.
      await until(
        logLines,
        (lines) => lines.some((l) => l.includes(`"operation":${op.id}`) && /database unreachable|waiting for the database/.test(l)),
        'the operation to wait for the database',
      );
      proxy.restore();

      const operation = await until(
        () =>
          fetch(`${server.url}/api/operations/${op.id}`, { headers: { authorization: `Bearer ${TOKEN}` } }).then(
            async (r) => ((await r.json()) as { operation: OperationView }).operation,
          ),
        (o) => o.status !== 'pending' && o.status !== 'running',
        'the operation to end',
      );

      expect(server.child.exitCode).toBeNull();
      expect(operation).toMatchObject({
        status: 'succeeded',
        error: null,
        targets: [{ app: 'outage-staging', version: 1, status: 'succeeded' }],
      });
      expect((await flowops<ReleaseView[]>('releases', 'outage-staging'))[0]).toMatchObject({
        version: 1,
        status: 'succeeded',
        current: true,
      });
      expect((await flowops<{ output: string }>('releases:output', 'outage-staging')).output).toContain('migrated 2 tables');
      // Once per outage for the operation, not once per try; and once when it is over.
      expect(
        logLines().filter((l) => l.includes(`"operation":${op.id}`) && /database unreachable|waiting for the database/.test(l)),
      ).toHaveLength(1);
      expect(logLines().filter((l) => l.includes('database is back')).length).toBeGreaterThanOrEqual(1);
      expect(server.output()).not.toMatch(/unhandled|uncaught/i);
    });
  },
);
