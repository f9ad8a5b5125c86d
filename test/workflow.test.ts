import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processAlive } from '../src/exec.ts';
import type { AppView, DiffView, OperationView, ReleaseView } from '../src/engine/views.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { processesOf } from './helpers/processes.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { fetchApp } from './helpers/app-http.ts';

type Info = { name: string; apps: AppView[] };

async function body(url: string | null): Promise<string> {
  if (!url) throw new Error('the app has no URL');
  return (await (await fetchApp(url)).text()).trim();
}

describe('the Heroku Flow workflow, through the flowops CLI', () => {
  let t: TestServer;
  let repo: GitRepo;
  const app = (info: Info, name: string) => info.apps.find((a) => a.name === name)!;

  beforeAll(async () => {
    t = await startTestServer();
    repo = await GitRepo.create(path.join(t.dir, 'repo'), webApp('hello v1'));
  });
  afterAll(() => t.close());

  it('creates a pipeline with a staging and a production app', async () => {
    expect((await t.cli(['pipelines:create', 'demo', '--repo', repo.dir])).code).toBe(0);
    expect((await t.cli(['apps:create', 'demo-staging', '--pipeline', 'demo', '--stage', 'staging'])).code).toBe(0);
    expect((await t.cli(['apps:create', 'demo', '--pipeline', 'demo', '--stage', 'prod'])).code).toBe(0);

    const info = await t.json<Info>(['pipelines:info', 'demo']);

    expect(info.apps.map((a) => [a.name, a.stage, a.release])).toEqual([
      ['demo-staging', 'staging', null],
      ['demo', 'production', null],
    ]);
  });

  it('deploys to staging, showing progress, and serves the commit', async () => {
    const run = await t.cli(['deploy', 'demo', 'to', 'staging']);

    expect(run.code).toBe(0);
    expect(run.out).toMatch(/Deploying [0-9a-f]{7} to demo-staging \(staging\)\.\.\./);
    expect(run.out).toContain('Running release phase for demo-staging v1');
    expect(run.out).toContain('demo-staging: v1 succeeded');
    const info = await t.json<Info>(['pipelines:info', 'demo']);
    expect(await body(app(info, 'demo-staging').url)).toBe('hello v1');
    expect(app(info, 'demo').release).toBeNull();
  });

  it('deploys new commits to staging without touching production, and diff lists exactly them', async () => {
    const first = (await repo.git('rev-parse', 'HEAD')).trim();
    const second = await repo.commit({ 'message.json': JSON.stringify({ text: 'hello v2' }) }, 'Say hello v2');
    const third = await repo.commit({ 'NOTES.md': 'notes\n' }, 'Add notes');
    await t.cli(['deploy', 'demo', 'to', 'staging']);
    const promoteFirst = await t.json<OperationView>(['deploy', 'demo/' + first, 'to', 'prod/demo']);
    expect(promoteFirst.status).toBe('succeeded');

    const diff = await t.json<DiffView[]>(['diff', 'demo']);

    expect(diff).toHaveLength(1);
    expect(diff[0]).toMatchObject({ upstream: 'demo-staging', downstream: 'demo', ahead: 2 });
    expect(diff[0]!.commits.map((c) => [c.sha, c.author, c.message])).toEqual([
      [third, 'Dana Dev', 'Add notes'],
      [second, 'Dana Dev', 'Say hello v2'],
    ]);
    const info = await t.json<Info>(['pipelines:info', 'demo']);
    expect(await body(app(info, 'demo-staging').url)).toBe('hello v2');
    expect(await body(app(info, 'demo').url)).toBe('hello v1');
  });

  it('promotes the staging slug unchanged to production, without a rebuild', async () => {
    const staging = (await t.json<ReleaseView[]>(['releases', 'demo-staging']))[0]!;

    const run = await t.cli(['promote', 'demo']);

    expect(run.code).toBe(0);
    expect(run.out).toContain(`Promoting demo-staging v${staging.version} ${staging.commit!.slice(0, 7)} to demo (production)`);
    expect(run.out).not.toContain('Building');
    const prod = (await t.json<ReleaseView[]>(['releases', 'demo']))[0]!;
    expect(prod).toMatchObject({
      slug: staging.slug,
      commit: staging.commit,
      status: 'succeeded',
      current: true,
      description: `Promote demo-staging v${staging.version} ${staging.commit!.slice(0, 7)}`,
    });
    const info = await t.json<Info>(['pipelines:info', 'demo']);
    expect(await body(app(info, 'demo').url)).toBe('hello v2');
    expect((await t.json<DiffView[]>(['diff', 'demo']))[0]!.ahead).toBe(0);
  });

  it('sets a config var on production as a new release, leaving staging untouched', async () => {
    const stagingBefore = await t.json<ReleaseView[]>(['releases', 'demo-staging']);
    const prodBefore = (await t.json<ReleaseView[]>(['releases', 'demo']))[0]!;

    const run = await t.cli(['config:set', 'demo', 'SUFFIX=-prod']);

    expect(run.code).toBe(0);
    const prod = (await t.json<ReleaseView[]>(['releases', 'demo']))[0]!;
    expect(prod).toMatchObject({
      version: prodBefore.version + 1,
      description: 'Set SUFFIX config vars',
      slug: prodBefore.slug,
      status: 'succeeded',
    });
    expect(await t.json(['config', 'demo'])).toEqual({ SUFFIX: '-prod' });
    expect(await t.json(['config', 'demo-staging'])).toEqual({});
    expect(await t.json<ReleaseView[]>(['releases', 'demo-staging'])).toEqual(stagingBefore);
    const info = await t.json<Info>(['pipelines:info', 'demo']);
    expect(await body(app(info, 'demo').url)).toBe('hello v2-prod');
    expect(await body(app(info, 'demo-staging').url)).toBe('hello v2');
  });

  it('keeps the previous release serving when the release phase fails, and shows why', async () => {
    const before = (await t.json<ReleaseView[]>(['releases', 'demo-staging']))[0]!;
    await repo.commit(webApp('hello v3', 'console.error("error: relation users already exists"); process.exit(3)'), 'Break the migration');

    const run = await t.cli(['deploy', 'demo', 'to', 'staging']);

    expect(run.code).toBe(1);
    expect(run.out).toContain(`demo-staging: v${before.version + 1} failed`);
    const releases = await t.json<ReleaseView[]>(['releases', 'demo-staging']);
    expect(releases[0]).toMatchObject({ version: before.version + 1, status: 'failed', current: false });
    expect(releases[1]).toMatchObject({ version: before.version, current: true });
    const info = await t.json<Info>(['pipelines:info', 'demo']);
    expect(app(info, 'demo-staging').release!.version).toBe(before.version);
    expect(await body(app(info, 'demo-staging').url)).toBe('hello v2');
    const output = await t.cli(['releases:output', 'demo-staging']);
    expect(output.out).toContain('error: relation users already exists');
  });

  it('rolls production back to the previous release, slug and config', async () => {
    const [current, previous] = await t.json<ReleaseView[]>(['releases', 'demo']);

    const run = await t.cli(['rollback', 'demo']);

    expect(run.code).toBe(0);
    const latest = (await t.json<ReleaseView[]>(['releases', 'demo']))[0]!;
    expect(latest).toMatchObject({
      version: current!.version + 1,
      description: `Rollback to v${previous!.version}`,
      slug: previous!.slug,
      current: true,
    });
    expect(await t.json(['config', 'demo'])).toEqual({});
    const info = await t.json<Info>(['pipelines:info', 'demo']);
    expect(await body(app(info, 'demo').url)).toBe('hello v2');
  });

  it("refuses a view-only user's promote, naming the permission, and changes nothing", async () => {
    const { token } = await t.json<{ name: string; token: string }>(['users:create', 'vic']);
    await t.cli(['access:add', 'demo', 'vic', 'view']);
    const before = await t.json<ReleaseView[]>(['releases', 'demo']);

    const run = await t.cli(['promote', 'demo'], token);

    expect(run.code).toBe(2);
    expect(run.err).toContain('`promote demo` needs deploy on demo; you have view');
    expect(await t.json<ReleaseView[]>(['releases', 'demo'])).toEqual(before);
    expect((await t.cli(['releases', 'demo'], token)).code).toBe(0);
  });

  it('destroys an app only with --confirm, stopping its processes and freeing its URL', async () => {
    const prod = app(await t.json<Info>(['pipelines:info', 'demo']), 'demo');
    const pids = processesOf(path.join(t.dir, 'data'), 'dyno:demo/');
    expect(pids.length).toBeGreaterThan(0);

    const refused = await t.cli(['apps:destroy', 'demo']);
    const destroyed = await t.cli(['apps:destroy', 'demo', '--confirm', 'demo']);

    expect(refused.err).toContain('run again with --confirm demo');
    expect(destroyed.out).toContain('Destroyed demo');
    expect((await t.json<Info>(['pipelines:info', 'demo'])).apps.map((a) => a.name)).toEqual(['demo-staging']);
    // The router no longer knows the app: the page says so.
    const gone = await fetchApp(prod.url!);
    expect(gone.status).toBe(404);
    expect(await gone.text()).toContain('There is no app at demo.localhost');
    expect(pids.filter(processAlive)).toEqual([]);
  });
});
