import { mkdtemp, readFile, rm } from 'node:fs/promises';
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
import { freePort } from '../src/platform/local/processes.ts';
import { runCli } from '../src/cli/cli.ts';
import { cliAt, killHard, spawnServer, stopRuntime, type ServerProcess } from './helpers/server-process.ts';
import { fetchApp } from './helpers/app-http.ts';

describe('a flowops restart in the middle of an operation', () => {
  let dir: string;
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let server: ServerProcess;
  let routerPort: number;
  const dataDir = () => path.join(dir, 'data');
  const env = () => ({
    FLOW_DATA_DIR: dataDir(),
    PORT: '0',
    FLOW_ROUTER_PORT: String(routerPort),
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
    routerPort = await freePort();
  });
  afterAll(async () => {
    await flowops('apps:destroy', 'crash-staging', '--confirm', 'crash-staging').catch(() => undefined);
    server?.child.kill('SIGTERM');
    await stopRuntime(dataDir());
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
    expect(await (await fetchApp(info.apps[0]!.url!)).text()).toBe('steady v1\n');
    expect(releasePhase.filter(processAlive)).toEqual([]);
    const retry = await flowops<OperationView>('config:set', 'crash-staging', 'AFTER=restart');
    expect(retry.status).toBe('succeeded');
  });

  it('serves every request through the router while flowops is killed with SIGKILL and started again', async () => {
    const { url } = (await flowops<{ apps: AppView[] }>('pipelines:info', 'crash')).apps[0]!;
    const pids = processesOf(dataDir(), 'dyno:crash-staging/web.1');
    const answers: string[] = [];
    const load = (async () => {
      for (let i = 0; i < 50; i++) {
        answers.push(await (await fetchApp(url!)).text().catch((err: unknown) => `failed: ${String(err)}`));
        await sleep(100);
      }
    })();
    await sleep(1000);
    await killHard(server);
    await sleep(1500);
    server = await spawnServer(env());
    await load;
    expect(answers).toHaveLength(50);
    expect(new Set(answers)).toEqual(new Set(['steady v1\n']));
    // The new flowops found the runtime: the same dynos serve, nobody restarted them.
    expect(processesOf(dataDir(), 'dyno:crash-staging/web.1')).toEqual(pids);
  });

  it('keeps a CLI that waits on a deploy through a flowops restart, and reports how the deploy really ended', async () => {
    const repo = await GitRepo.create(path.join(dir, 'patient'), {
      ...webApp('patient v1'),
      Procfile: 'web: node index.js\nrelease: sleep 2\n',
    });
    await flowops('pipelines:create', 'patient', '--repo', repo.dir);
    await flowops('apps:create', 'patient-staging', '--pipeline', 'patient', '--stage', 'staging');
    let out = '';
    let err = '';
    const waiting = runCli(['deploy', 'patient', 'to', 'staging'], {
      out: (text) => (out += `${text}\n`),
      err: (text) => (err += `${text}\n`),
      env: { FLOW_URL: server.url, FLOW_TOKEN: 'test-admin-token-0123456789' },
    });
    for (let i = 0; i < 100 && !out.includes('Running release phase'); i++) await sleep(100);
    // A restart: SIGTERM lets the running deploy finish, then flowops stops; another starts on the same port.
    const port = new URL(server.url).port;
    const stopped = once(server.child, 'exit');
    server.child.kill('SIGTERM');
    await stopped;
    server = await spawnServer({ ...env(), PORT: port });

    expect(await waiting).toBe(0);
    expect(err).toContain('the server went away; waiting for it to come back');
    expect(out).toContain('patient-staging: v1 succeeded');
    await flowops('apps:destroy', 'patient-staging', '--confirm', 'patient-staging');
  });

  it('keeps the app answering while flowops is down; after everything died (a reboot) brings it back on its release at the same URL', async () => {
    const before = (await flowops<{ apps: AppView[] }>('pipelines:info', 'crash')).apps[0]!;
    expect(before.url).toBe(`http://crash-staging.localhost:${routerPort}`);
    const oldPids = processesOf(dataDir(), 'dyno:crash-staging/web.1');
    expect(oldPids.length).toBeGreaterThan(0);
    const stopped = once(server.child, 'exit');
    server.child.kill('SIGTERM');
    await stopped;
    expect(await (await fetchApp(before.url!)).text()).toBe('steady v1\n');

    // The machine goes down: the runtime and the dynos die too.
    const runtime = JSON.parse(await readFile(path.join(dataDir(), 'runtime', 'runtime.json'), 'utf8')) as { pid: number };
    process.kill(runtime.pid, 'SIGKILL');
    for (const pid of oldPids) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
    await expect(fetchApp(before.url!)).rejects.toThrow();

    server = await spawnServer(env());

    const after = (await flowops<{ apps: AppView[] }>('pipelines:info', 'crash')).apps[0]!;
    expect(after.url).toBe(before.url);
    expect(after.release!.version).toBe(before.release!.version);
    expect(await (await fetchApp(after.url!)).text()).toBe('steady v1\n');
    const newPids = processesOf(dataDir(), 'dyno:crash-staging/web.1');
    expect(newPids.length).toBeGreaterThan(0);
    expect(newPids.filter((pid) => oldPids.includes(pid))).toEqual([]);
  });
});
