import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppView, ReleaseView } from '../src/engine/views.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const root = path.resolve(import.meta.dirname, '..');

describe('the API and the CLI refuse bad input and change nothing', () => {
  let t: TestServer;
  let deployer: string;
  let outsider: string;

  beforeAll(async () => {
    t = await startTestServer();
    const repo = await GitRepo.create(path.join(t.dir, 'repo'), webApp('api v1'));
    await t.cli(['pipelines:create', 'shop', '--repo', repo.dir]);
    await t.cli(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
    await t.cli(['apps:create', 'shop', '--pipeline', 'shop', '--stage', 'production']);
    deployer = (await t.json<{ token: string }>(['users:create', 'dee'])).token;
    outsider = (await t.json<{ token: string }>(['users:create', 'otto'])).token;
    await t.cli(['access:add', 'shop', 'dee', 'deploy']);
  });
  afterAll(() => t.close());

  const post = (body: string, token?: string) =>
    fetch(`${t.server.url}/api/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body,
    });

  it('answers /healthz', async () => {
    const res = await fetch(`${t.server.url}/healthz`);

    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it.each([
    ['no token', '{"argv":["pipelines"]}', undefined, 401, 'no token'],
    ['a wrong token', '{"argv":["pipelines"]}', 'flo_wrong', 401, 'this token is not valid'],
    ['a body that is not JSON', '{argv', 'admin', 400, 'not valid JSON'],
    ['a body without argv', '{"text":"pipelines"}', 'admin', 400, 'must be {"argv"'],
    ['an unknown command', '{"argv":["promtoe","shop"]}', 'admin', 400, 'Did you mean `promote`?'],
  ])('refuses %s', async (_what, body, token, status, message) => {
    const res = await post(body, token === 'admin' ? t.server.admin.token : token);

    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(message);
  });

  it('answers GitHub deliveries with what to set when GITHUB_WEBHOOK_SECRET is not set', async () => {
    const res = await fetch(`${t.server.url}/github/webhooks`, {
      method: 'POST',
      headers: { 'x-github-event': 'ping', 'x-github-delivery': 'd1', 'x-hub-signature-256': 'sha256=00' },
      body: '{}',
    });

    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('set GITHUB_WEBHOOK_SECRET');
  });

  it('lets a deploy user deploy, but not create apps or grant access', async () => {
    expect((await t.cli(['deploy', 'shop', 'to', 'staging'], deployer)).code).toBe(0);

    const create = await t.cli(['apps:create', 'shop-qa', '--pipeline', 'shop', '--stage', 'staging'], deployer);
    const grant = await t.cli(['access:add', 'shop', 'dee', 'manage'], deployer);
    const user = await t.cli(['users:create', 'mallory'], deployer);

    expect(create.err).toContain('`apps:create shop-qa` needs manage on shop; you have deploy');
    expect(grant.err).toContain('needs manage on shop; you have deploy');
    expect(user.err).toContain('`users:create` needs an admin');
    expect((await t.json<{ apps: AppView[] }>(['pipelines:info', 'shop'])).apps.map((a) => a.name)).toEqual(['shop-staging', 'shop']);
    expect(await t.json(['access', 'shop'])).toEqual([{ user: 'dee', permission: 'deploy' }]);
  });

  it('hides pipelines from users without a grant', async () => {
    expect(await t.json(['pipelines'], outsider)).toEqual([]);
    expect((await t.cli(['releases', 'shop-staging'], outsider)).err).toContain('no app "shop-staging" that you can see');
    expect((await t.cli(['promote', 'shop'], outsider)).err).toContain('no pipeline "shop" that you can see');
  });

  it.each([
    [['deploy', 'shop', 'to', 'review'], 'shop has no app in review; add one'],
    [['deploy', 'shop/no-such-branch', 'to', 'staging'], 'no branch, tag or commit "no-such-branch"'],
    [['deploy', 'shop', 'to', 'qa'], '"qa" is not a stage'],
    [['promote', 'shop', 'from', 'production'], 'shop is in production, which has no downstream stage'],
    [['rollback', 'shop-staging', 'v9'], 'shop-staging has no release v9'],
    [['config:set', 'shop', '1X=2'], '"1X" is not a valid config var name'],
    [['config:unset', 'shop', 'NOPE'], 'NOPE is not set on shop'],
    [['apps:create', 'Bad_Name', '--pipeline', 'shop', '--stage', 'staging'], '"Bad_Name" is not a valid app name'],
    [['pipelines:create', 'other', '--repo', '/nonexistent/repo'], '/nonexistent/repo is not a git repository'],
    [['pipelines:destroy', 'shop'], 'this destroys shop and its 2 apps (shop-staging, shop); run again with --confirm shop'],
  ])('refuses %j with a clear message', async (argv, message) => {
    const before = await t.json<ReleaseView[]>(['releases', 'shop-staging']);

    const run = await t.cli(argv);

    expect(run.code).toBe(2);
    expect(run.err).toContain(message);
    expect(run.err.trim().split('\n')).toHaveLength(1);
    expect(await t.json<ReleaseView[]>(['releases', 'shop-staging'])).toEqual(before);
  });

  it('runs as the `flowops` bin, with one line for a missing token and for a typo', async () => {
    const env = { PATH: process.env.PATH, FLOW_URL: t.server.url, FLOW_DATA_DIR: path.join(t.dir, 'nowhere') };
    // The server runs in this process, so the bin must run without blocking it.
    const flowops = (args: string[], extra: Record<string, string> = {}) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(path.join(root, 'bin/flowops.js'), args, { env: { ...env, ...extra } }, (error, stdout, stderr) => {
          resolve({ status: error ? Number(error.code) : 0, stdout, stderr });
        });
      });

    const noToken = await flowops(['pipelines']);
    const typo = await flowops(['pipline']);
    const listed = await flowops(['pipelines'], { FLOW_TOKEN: t.server.admin.token });

    expect([noToken.status, noToken.stderr.trim()]).toEqual([2, expect.stringMatching(/^flowops: no token: set FLOW_TOKEN/)]);
    expect([typo.status, typo.stderr.trim()]).toEqual([
      2,
      'flowops: "pipline" is not a flowops command. Did you mean `pipelines`? `help` lists the commands',
    ]);
    expect(listed.stdout).toMatch(/^Pipeline\s+Apps\s+Branch\s+Repository\nshop\s+2\s+main\s+/);
  });
});
