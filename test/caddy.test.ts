import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppView, ProcessesView } from '../src/api/types.ts';
import { freePort } from '../src/platform/local/processes.ts';
import { fetchApp } from './helpers/app-http.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

// .ci/run installs Debian's caddy; on a machine without it there is nothing to drive.
const caddyInstalled = spawnSync('caddy', ['version'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!caddyInstalled)('FLOW_ROUTER=caddy: a real Caddy routes to the apps through its admin API', () => {
  let dir: string;
  let caddy: ChildProcess;
  let t: TestServer;
  let admin: string;
  let port: number;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-caddy-'));
    const adminPort = await freePort();
    port = await freePort();
    admin = `http://127.0.0.1:${adminPort}`;
    const config = path.join(dir, 'caddy.json');
    await writeFile(config, JSON.stringify({ admin: { listen: `127.0.0.1:${adminPort}` } }));
    caddy = spawn('caddy', ['run', '--config', config], {
      env: { PATH: process.env.PATH, HOME: dir, XDG_CONFIG_HOME: dir, XDG_DATA_HOME: dir },
      stdio: 'ignore',
    });
    for (let i = 0; i < 100; i++) {
      const up = await fetch(`${admin}/config/`).then(
        () => true,
        () => false,
      );
      if (up) break;
      await sleep(100);
    }
    t = await startTestServer({ env: { FLOW_ROUTER: 'caddy', FLOW_CADDY_ADMIN: admin, FLOW_ROUTER_PORT: String(port) } });
    const repo = await GitRepo.create(path.join(dir, 'repo'), webApp('served by caddy'));
    for (const argv of [
      ['pipelines:create', 'shop', '--repo', repo.dir],
      ['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging'],
      ['deploy', 'shop', 'to', 'staging'],
    ]) {
      const done = await t.cli(argv);
      expect(done.code, done.out + done.err).toBe(0);
    }
  });
  afterAll(async () => {
    await t?.close();
    if (caddy && caddy.exitCode === null) {
      caddy.kill('SIGTERM');
      await once(caddy, 'exit');
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the app at <app>.localhost on Caddy’s port, and 503 naming the app when no web dyno is up', async () => {
    const app = (await t.json<{ apps: AppView[] }>(['pipelines:info', 'shop'])).apps[0]!;
    expect(app.url).toBe(`http://shop-staging.localhost:${port}`);
    expect(await (await fetchApp(app.url!)).text()).toBe('served by caddy\n');
    const config = (await (await fetch(`${admin}/config/apps/http/servers/flowops`)).json()) as { listen: string[] };
    expect(config.listen).toEqual([`:${port}`]);

    expect((await t.cli(['ps:scale', 'shop-staging', 'web=0'])).code).toBe(0);
    let down = await fetchApp(app.url!);
    for (let i = 0; i < 50 && down.status !== 503; i++) down = await sleep(100).then(() => fetchApp(app.url!));
    expect(down.status).toBe(503);
    expect(await down.text()).toContain('shop-staging is not running');

    expect((await t.cli(['ps:scale', 'shop-staging', 'web=2'])).code).toBe(0);
    for (let i = 0; i < 100; i++) {
      const p = await t.json<ProcessesView>(['ps', 'shop-staging']);
      if (p.dynos.filter((d) => d.state === 'up' && d.type === 'web').length === 2) break;
      await sleep(100);
    }
    let up = await fetchApp(app.url!);
    for (let i = 0; i < 50 && up.status !== 200; i++) up = await sleep(100).then(() => fetchApp(app.url!));
    expect(await up.text()).toBe('served by caddy\n');
    const unknown = await fetchApp(`http://other.localhost:${port}/`);
    expect(unknown.status).toBe(404);
  });
});
