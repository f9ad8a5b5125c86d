import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { processesOf } from './helpers/processes.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

/**
 * The runtime (router and dynos) dies and is started again while flowops lives on:
 * flowops tells it what runs. Its own release phases, builds and test runs under
 * way belong to a living flowops and must not be taken for a dead one's leftovers.
 */
describe('a runtime restarted while flowops lives', () => {
  let t: TestServer;

  beforeAll(async () => {
    t = await startTestServer();
    const fast = await GitRepo.create(path.join(t.dir, 'fast'), webApp('fast v1'));
    const slow = await GitRepo.create(
      path.join(t.dir, 'slow'),
      webApp('slow v1', 'console.log("migrating..."); setTimeout(() => console.log("migrated"), 8000)'),
    );
    for (const argv of [
      ['pipelines:create', 'fast', '--repo', fast.dir],
      ['apps:create', 'fast-staging', '--pipeline', 'fast', '--stage', 'staging'],
      ['pipelines:create', 'slow', '--repo', slow.dir],
      ['apps:create', 'slow-staging', '--pipeline', 'slow', '--stage', 'staging'],
      ['deploy', 'fast', 'to', 'staging'],
    ])
      expect((await t.cli(argv)).code).toBe(0);
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  it('lets a release phase under way finish', async () => {
    const deploying = t.cli(['deploy', 'slow', 'to', 'staging']);
    const releasePhase = () => processesOf(path.join(t.dir, 'data'), 'slow-staging/release');
    for (let i = 0; i < 600 && !releasePhase().length; i++) await sleep(50);
    expect(releasePhase().length).toBeGreaterThan(0);

    // The runtime dies; the next order starts a new one, and flowops tells it what runs.
    const runtime = JSON.parse(await readFile(path.join(t.dir, 'data', 'runtime', 'runtime.json'), 'utf8')) as { pid: number };
    process.kill(runtime.pid, 'SIGKILL');
    await sleep(200);
    await t.cli(['ps', 'fast-staging']);

    const { code, out, err } = await deploying;
    expect({ code, said: `${out}${err}` }).toMatchObject({ code: 0 });
  }, 120_000);
});
