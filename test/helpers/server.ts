import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readSettings } from '../../src/config.ts';
import { startServer, type RunningServer } from '../../src/server/start-server.ts';
import { freshDatabase } from './database.ts';
import { cliAt } from './server-process.ts';

export interface TestServer {
  server: RunningServer;
  databaseUrl: string | undefined;
  dir: string;
  dropDatabase(): Promise<void>;
  /** Runs `flowops <argv>` against the server over HTTP, as the given token (default: admin). */
  cli(argv: string[], token?: string): Promise<{ code: number; out: string; err: string }>;
  /** Runs `flowops <argv> --json` and parses what it printed. */
  json<T = unknown>(argv: string[], token?: string): Promise<T>;
  /** Stops the server; apps and data go too, unless `restart` keeps them for the next server on the same dir and database. */
  close(options?: { restart?: boolean }): Promise<void>;
}

/** A kubeconfig naming a cluster at a closed port, for replicas whose apps all run on the local platform. */
async function unusedCluster(dir: string): Promise<string> {
  const file = path.join(dir, 'unused-kubeconfig');
  await writeFile(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{ name: unused, cluster: { server: "http://127.0.0.1:9", insecure-skip-tls-verify: true } }]',
      'users: [{ name: flowops, user: { token: unused } }]',
      'contexts: [{ name: unused, context: { cluster: unused, user: flowops } }]',
      'current-context: unused',
      '',
    ].join('\n'),
  );
  return file;
}

/**
 * A real flowops server on a free port, with its own data dir and database
 * (or, with `sharedDatabaseUrl`, another server's Postgres database).
 */
export async function startTestServer(
  options: { sharedDatabaseUrl?: string; env?: Record<string, string>; restartOf?: TestServer } = {},
): Promise<TestServer> {
  const previous = options.restartOf;
  const dir = previous?.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'flowops-test-')));
  // As in a checkout of flowops, the data dir sits inside an ESM package; apps must not notice.
  await writeFile(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  const sharedUrl = options.sharedDatabaseUrl ?? (previous ? (previous.databaseUrl ?? null) : undefined);
  const database =
    sharedUrl !== undefined
      ? { url: sharedUrl ?? undefined, drop: async () => (previous ? previous.dropDatabase() : undefined) }
      : await freshDatabase();
  const server = await startServer(
    readSettings({
      PORT: '0',
      FLOW_DATA_DIR: path.join(dir, 'data'),
      FLOW_BOOT_TIMEOUT: '20',
      // Each test server's router on a port of its own.
      FLOW_ROUTER_PORT: '0',
      ...(database.url ? { DATABASE_URL: database.url } : {}),
      // A second server on a running one's database is a replica: the local platform refuses those, so it
      // runs with FLOW_PLATFORM=kubernetes, which needs a cluster setting. These tests' apps were created on
      // the local platform and stay there: the cluster (a closed port) is never asked.
      ...(options.sharedDatabaseUrl !== undefined
        ? { FLOW_PLATFORM: 'kubernetes', KUBECONFIG: await unusedCluster(dir), FLOW_PUBLIC_URL: 'http://127.0.0.1:9' }
        : {}),
      ...options.env,
    }),
  );
  const cli = (argv: string[], token = server.admin.token) => cliAt(server.url, token, argv);
  return {
    server,
    databaseUrl: database.url,
    dir,
    cli,
    async json<T>(argv: string[], token?: string) {
      const result = await cli([...argv, '--json'], token);
      if (result.code !== 0 && !result.out) throw new Error(`flowops ${argv.join(' ')} failed: ${result.err}`);
      return JSON.parse(result.out) as T;
    },
    dropDatabase: () => database.drop(),
    async close(closeOptions = {}) {
      if (closeOptions.restart) {
        await server.close();
        return;
      }
      // Apps outlive flowops by design; a test stops the ones it started.
      const apps: { name: string }[] = await server.database.dataSource.query('SELECT name FROM apps');
      await server.engine.idle();
      for (const { name } of apps) await server.platform.destroy(name);
      await server.platform.shutdownRuntime();
      await server.close();
      await database.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
