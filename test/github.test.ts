import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppView, DiffView, ReleaseView } from '../src/engine/views.ts';
import { deliver, FakeGitHub, githubSignature, webhookExample } from './helpers/fake-github.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { fetchApp } from './helpers/app-http.ts';

const SECRET = 'github-webhook-secret-for-tests';

describe('a pipeline connected to a GitHub repository', () => {
  let t: TestServer;
  let repo: GitRepo;
  let github: FakeGitHub;

  let repoDir: string;

  beforeAll(async () => {
    // The repository GitHub holds; flowops reads it only through the fake API.
    repoDir = await mkdtemp(path.join(os.tmpdir(), 'flowops-github-'));
    repo = await GitRepo.create(path.join(repoDir, 'acme-shop'), webApp('from github v1'));
    github = await FakeGitHub.start('acme/shop', repo);
    t = await startTestServer({ env: { GITHUB_API_URL: github.url, GITHUB_TOKEN: 'ghp_test', GITHUB_WEBHOOK_SECRET: SECRET } });
  });
  afterAll(async () => {
    await t.close();
    await github.close();
    await rm(repoDir, { recursive: true, force: true });
  });

  it('deploys a commit fetched as a tarball through the API', async () => {
    expect((await t.cli(['pipelines:create', 'shop', '--repo', 'github:acme/shop'])).code).toBe(0);
    await t.cli(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
    await t.cli(['apps:create', 'shop', '--pipeline', 'shop', '--stage', 'production']);

    const run = await t.cli(['deploy', 'shop', 'to', 'staging']);

    expect(run.code, run.out + run.err).toBe(0);
    const sha = (await repo.git('rev-parse', 'HEAD')).trim();
    expect(github.calls.map((c) => c.path)).toEqual(
      // The pipeline follows the default branch the repository reports (GET /repos/acme/shop).
      expect.arrayContaining([`/repos/acme/shop`, `/repos/acme/shop/commits/main`, `/repos/acme/shop/tarball/${sha}`]),
    );
    const [app] = (await t.json<{ apps: AppView[] }>(['pipelines:info', 'shop'])).apps;
    expect(await (await fetchApp(app!.url!)).text()).toBe('from github v1\n');
  });

  it("makes every release a GitHub deployment to the app's environment, in progress then success with its URL", async () => {
    const [app] = (await t.json<{ apps: AppView[] }>(['pipelines:info', 'shop'])).apps;

    await t.server.statuses.idle();

    expect(github.deployments).toEqual([
      expect.objectContaining({
        ref: app!.release!.commit,
        environment: 'shop-staging',
        transient: false,
        production: false,
        statuses: [{ state: 'in_progress' }, { state: 'success', environment_url: app!.url }],
      }),
    ]);
  });

  it('lists what staging runs ahead of production through the compare API', async () => {
    await t.cli(['promote', 'shop']);
    const second = await repo.commit({ 'message.json': JSON.stringify({ text: 'from github v2' }) }, 'Say v2');
    const third = await repo.commit({ 'NOTES.md': 'x\n' }, 'Add notes');
    await t.cli(['deploy', 'shop', 'to', 'staging']);
    const [prod] = await t.json<ReleaseView[]>(['releases', 'shop']);

    const diff = await t.json<DiffView[]>(['diff', 'shop']);

    expect(diff).toEqual([
      {
        upstream: 'shop-staging',
        downstream: 'shop',
        ahead: 2,
        commits: [
          expect.objectContaining({ sha: third, message: 'Add notes', author: 'Dana Dev' }),
          expect.objectContaining({ sha: second, message: 'Say v2' }),
        ],
      },
    ]);
    expect(github.calls.map((c) => c.path)).toContain(`/repos/acme/shop/compare/${prod!.commit}...${third}`);
    expect(github.unexpected).toEqual([]);
  });

  it('connects an existing pipeline to the repository with pipelines:connect', async () => {
    const local = await GitRepo.create(path.join(repoDir, 'local-copy'), webApp('local'));
    await t.cli(['pipelines:create', 'other', '--repo', local.dir]);

    const connected = await t.cli(['pipelines:connect', 'other', 'acme/shop']);
    const missing = await t.cli(['pipelines:connect', 'other', 'acme/nope']);

    expect(connected.out.trim()).toBe('Connected other to github:acme/shop (branch main)');
    expect((await t.json<{ name: string; repo: string }[]>(['pipelines'])).find((p) => p.name === 'other')!.repo).toBe('github:acme/shop');
    expect([missing.code, missing.err.trim()]).toEqual([2, 'flowops: acme/nope has no branch "main"']);
  });

  it('refuses a deploy of a ref GitHub does not have, with nothing changed', async () => {
    const before = await t.json<ReleaseView[]>(['releases', 'shop-staging']);

    const run = await t.cli(['deploy', 'shop/no-such-branch', 'to', 'staging']);

    expect(run.err.trim()).toBe('flowops: no branch, tag or commit "no-such-branch" in acme/shop');
    expect(await t.json<ReleaseView[]>(['releases', 'shop-staging'])).toEqual(before);
  });

  it('accepts a signed push delivery once: a redelivery changes nothing', async () => {
    const push = webhookExample('push', (e) => typeof e.ref === 'string' && e.ref.startsWith('refs/heads/') && !e.deleted);
    (push.repository as { full_name: string }).full_name = 'acme/shop';
    push.after = (await repo.git('rev-parse', 'HEAD')).trim();
    const body = JSON.stringify(push);

    const first = await deliver(t.server.url, 'push', 'delivery-1', body, githubSignature(SECRET, body));
    const again = await deliver(t.server.url, 'push', 'delivery-1', body, githubSignature(SECRET, body));

    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ duplicate: true });
    const events = await t.server.database.dataSource.query(
      "SELECT pipeline, message FROM events WHERE type = 'github.push' AND pipeline = 'shop'",
    );
    expect(events).toEqual([
      {
        pipeline: 'shop',
        message: `${(push.pusher as { name: string }).name} pushed ${String(push.after).slice(0, 7)} to ${String(push.ref).slice(11)}`,
      },
    ]);
  });

  it('refuses a forged delivery with nothing recorded', async () => {
    const ping = webhookExample('ping');
    const body = JSON.stringify(ping);

    const forged = await deliver(t.server.url, 'ping', 'delivery-forged', body, githubSignature('not-the-secret', body));
    const unsigned = await fetch(`${t.server.url}/github/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'ping', 'x-github-delivery': 'd2' },
      body,
    });

    expect(forged.status).toBe(401);
    expect(unsigned.status).toBe(400);
    expect(await t.server.database.dataSource.query("SELECT id FROM github_deliveries WHERE id IN ('delivery-forged', 'd2')")).toEqual([]);
    const ok = await deliver(t.server.url, 'ping', 'delivery-ping', body, githubSignature(SECRET, body));
    expect(ok.status).toBe(202);
  });
});
