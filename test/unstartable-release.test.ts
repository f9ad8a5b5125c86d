import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReleaseView } from '../src/engine/views.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { processesOf } from './helpers/processes.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { fetchApp } from './helpers/app-http.ts';

/** A command longer than Linux takes for one argument (MAX_ARG_STRLEN, 128 KB): exec fails with E2BIG. */
const tooLong = `echo ${'x'.repeat(200_000)}`;

describe('a release whose processes cannot even start', () => {
  let t: TestServer;
  let repo: GitRepo;

  beforeAll(async () => {
    t = await startTestServer();
    repo = await GitRepo.create(path.join(t.dir, 'repo'), webApp('works'));
    await t.cli(['pipelines:create', 'e2big', '--repo', repo.dir]);
    await t.cli(['apps:create', 'e2big-staging', '--pipeline', 'e2big', '--stage', 'staging']);
    await t.cli(['deploy', 'e2big', 'to', 'staging']);
  });
  afterAll(() => t.close());

  it.each([
    ['release phase', `web: node index.js\nrelease: ${tooLong}\n`, /release phase exited with 127/],
    ['web dyno', `web: ${tooLong}\n`, /processes did not start/],
  ])('fails the release, with the reason, when the %s cannot be executed; the next deploy works', async (_what, procfile, why) => {
    await repo.commit({ Procfile: procfile }, 'An impossible command');

    const failed = await t.cli(['deploy', 'e2big', 'to', 'staging']);

    expect(failed.code).not.toBe(0);
    expect(failed.out + failed.err).toMatch(why);
    const [latest] = await t.json<ReleaseView[]>(['releases', 'e2big-staging']);
    expect(latest!.status).toBe('failed');
    expect((await t.cli(['releases:output', 'e2big-staging'])).out).toContain('E2BIG');

    await repo.commit(webApp('works again'), 'Back to normal');
    const fixed = await t.cli(['deploy', 'e2big', 'to', 'staging']);

    expect(fixed.code).toBe(0);
    const [live] = await t.json<ReleaseView[]>(['releases', 'e2big-staging']);
    expect(live).toMatchObject({ status: 'succeeded', current: true });
  });
});

describe('Procfile commands', () => {
  let t: TestServer;

  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.close());

  it('runs a process type as a shell line, as Heroku does: several commands, then the server', async () => {
    const repo = await GitRepo.create(path.join(t.dir, 'repo'), {
      ...webApp('after a preamble'),
      Procfile: 'web: echo warming up; SUFFIX=" (set inline)" node index.js\n',
    });
    await t.cli(['pipelines:create', 'shell', '--repo', repo.dir]);
    await t.cli(['apps:create', 'shell-staging', '--pipeline', 'shell', '--stage', 'staging']);

    const deployed = await t.cli(['deploy', 'shell', 'to', 'staging']);

    expect(deployed.code).toBe(0);
    const info = await t.json<{ apps: { url: string }[] }>(['pipelines:info', 'shell']);
    expect(await (await fetchApp(info.apps[0]!.url)).text()).toBe('after a preamble (set inline)\n');
  });
});

describe('a build that never ends', () => {
  let t: TestServer;

  beforeAll(async () => {
    t = await startTestServer({ env: { FLOW_BUILD_TIMEOUT: '3' } });
  });
  afterAll(() => t.close());

  it('is stopped after FLOW_BUILD_TIMEOUT, with the reason, its processes gone, and the next build works', async () => {
    const app = (build: string) => ({
      'package.json': JSON.stringify({ name: 'slow', version: '1.0.0', scripts: { build, start: 'node index.js' } }),
      'index.js': "require('node:http').createServer((q, s) => s.end('built')).listen(process.env.PORT);\n",
    });
    const repo = await GitRepo.create(path.join(t.dir, 'repo'), app('sleep 600'));
    await t.cli(['pipelines:create', 'slow', '--repo', repo.dir]);
    await t.cli(['apps:create', 'slow-staging', '--pipeline', 'slow', '--stage', 'staging']);

    const stuck = await t.cli(['deploy', 'slow', 'to', 'staging']);

    expect(stuck.code).not.toBe(0);
    expect(stuck.out + stuck.err).toContain('the build took longer than 3 s and was stopped (FLOW_BUILD_TIMEOUT)');
    expect(processesOf(path.join(t.dir, 'data'), 'build')).toEqual([]);
    await repo.commit(app('echo built'), 'A build that ends');
    expect((await t.cli(['deploy', 'slow', 'to', 'staging'])).code).toBe(0);
  });
});
