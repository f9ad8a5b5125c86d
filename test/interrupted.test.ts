import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processAlive } from '../src/exec.ts';
import type { AppView, OperationView, ReleaseView } from '../src/engine/views.ts';
import { freshDatabase } from './helpers/database.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { processesOf } from './helpers/processes.ts';
import { cliAt, killHard, spawnServer, type ServerProcess } from './helpers/server-process.ts';

describe('a flowops restart in the middle of an operation', () => {
  let dir: string;
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let server: ServerProcess;
  const dataDir = () => path.join(dir, 'data');
  const env = () => ({
    FLOW_DATA_DIR: dataDir(),
    PORT: '0',
    FLOW_ADMIN_TOKEN: 'test-admin-token-0123456789',
    ...(database.url ? { DATABASE_URL: database.url } : {}),
  });

  async function flowops<T>(...argv: string[]): Promise<T> {
    const { out, err } = await cliAt(server.url, 'test-admin-token-0123456789', [...argv, '--json']);
    if (!out) throw new Error(err);
    return JSON.parse(out) as T;
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-interrupt-'));
    database = await freshDatabase();
  });
  afterAll(async () => {
    await flowops('apps:destroy', 'crash-staging', '--confirm', 'crash-staging').catch(() => undefined);
    server?.child.kill('SIGTERM');
    await database.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('ends the operation as failed ("interrupted") and the app keeps serving its whole current release', async () => {
    const repo = await GitRepo.create(path.join(dir, 'repo'), webApp('steady v1'));
    server = await spawnServer(env());
    await flowops('pipelines:create', 'crash', '--repo', repo.dir);
    await flowops('apps:create', 'crash-staging', '--pipeline', 'crash', '--stage', 'staging');
    await flowops('deploy', 'crash', 'to', 'staging');
    await repo.commit({ ...webApp('never live'), Procfile: 'web: node index.js\nrelease: exec sleep 60\n' }, 'Slow migration');
    const op = await flowops<OperationView>('deploy', 'crash', 'to', 'staging', '--no-wait');
    for (let i = 0; i < 100; i++) {
      const releases = await flowops<ReleaseView[]>('releases', 'crash-staging');
      if (releases[0]?.version === 2) break;
      await sleep(100);
    }
    await sleep(300);
    const releasePhase = processesOf(dataDir(), 'crash-staging/release');
    expect(releasePhase.length).toBeGreaterThan(0);

    await killHard(server);
    server = await spawnServer(env());

    const { operation } = (await (
      await fetch(`${server.url}/api/operations/${op.id}`, { headers: { authorization: 'Bearer test-admin-token-0123456789' } })
    ).json()) as { operation: OperationView };
    expect(operation.status).toBe('failed');
    expect(operation.error).toMatch(/^interrupted/);
    expect(operation.targets).toEqual([{ app: 'crash-staging', version: 2, status: 'failed', error: 'interrupted' }]);
    const releases = await flowops<ReleaseView[]>('releases', 'crash-staging');
    expect(releases.map((r) => [r.version, r.status, r.current])).toEqual([
      [2, 'failed', false],
      [1, 'succeeded', true],
    ]);
    const info = await flowops<{ apps: AppView[] }>('pipelines:info', 'crash');
    expect(await (await fetch(info.apps[0]!.url!)).text()).toBe('steady v1\n');
    expect(releasePhase.filter(processAlive)).toEqual([]);
    const retry = await flowops<OperationView>('config:set', 'crash-staging', 'AFTER=restart');
    expect(retry.status).toBe('succeeded');
  });

  it('restarts an app whose processes died while flowops was down, on its current release, at the same URL', async () => {
    const before = (await flowops<{ apps: AppView[] }>('pipelines:info', 'crash')).apps[0]!;
    const oldPids = processesOf(dataDir(), 'crash-staging/web.1');
    expect(oldPids.length).toBeGreaterThan(0);
    const stopped = once(server.child, 'exit');
    server.child.kill('SIGTERM');
    await stopped;
    await expect(fetch(before.url!)).rejects.toThrow();
    for (const pid of oldPids) process.kill(pid, 'SIGKILL');

    server = await spawnServer(env());

    const after = (await flowops<{ apps: AppView[] }>('pipelines:info', 'crash')).apps[0]!;
    expect(after.url).toBe(before.url);
    expect(after.release!.version).toBe(before.release!.version);
    expect(await (await fetch(after.url!)).text()).toBe('steady v1\n');
    const newPids = processesOf(dataDir(), 'crash-staging/web.1');
    expect(newPids.length).toBeGreaterThan(0);
    expect(newPids.filter((pid) => oldPids.includes(pid))).toEqual([]);
  });
});
