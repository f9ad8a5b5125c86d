import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReviewAppView } from '../src/engine/views.ts';
import { deliver, FakeGitHub, githubSignature, webhookExample } from './helpers/fake-github.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const SECRET = 'github-webhook-secret-for-tests';

describe("a review app's config from app.json, which the repository writes", () => {
  let t: TestServer;
  let repo: GitRepo;
  let github: FakeGitHub;
  let dir: string;
  let delivery = 0;
  let pr = 100;

  /** GitHub's pull_request "opened" payload for a branch, signed and delivered; resolves once flowops has recorded the PR. */
  async function openPullRequest(number: number, branch: string) {
    const sha = (await repo.git('rev-parse', branch)).trim();
    const payload = webhookExample('pull_request', (e) => e.action === 'opened');
    const pull = payload.pull_request as {
      head: { ref: string; sha: string; repo: { full_name: string } };
      base: { repo: { full_name: string } };
      number: number;
    };
    Object.assign(payload, { action: 'opened', number });
    Object.assign(pull, { number });
    Object.assign(pull.head, { ref: branch, sha });
    pull.head.repo.full_name = 'acme/shop';
    pull.base.repo.full_name = 'acme/shop';
    (payload.repository as { full_name: string }).full_name = 'acme/shop';
    const body = JSON.stringify(payload);
    expect((await deliver(t.server.url, 'pull_request', `app-json-${delivery++}`, body, githubSignature(SECRET, body))).status).toBe(202);
    for (let i = 0; i < 200 && !(await t.json<ReviewAppView[]>(['reviewapps', 'shop'])).some((r) => r.pr === number); i++) await sleep(50);
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-app-json-'));
    repo = await GitRepo.create(path.join(dir, 'acme-shop'), webApp('main'));
    github = await FakeGitHub.start('acme/shop', repo);
    t = await startTestServer({ env: { GITHUB_API_URL: github.url, GITHUB_TOKEN: 'ghp_test', GITHUB_WEBHOOK_SECRET: SECRET } });
    await t.cli(['pipelines:create', 'shop', '--repo', 'github:acme/shop']);
    await t.cli(['reviewapps:enable', 'shop']);
  });
  afterAll(async () => {
    await t.close();
    await github.close();
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    [
      'NUL in a value',
      JSON.stringify({ env: { TOKEN: 'a\u0000b' } }),
      'app.json env: the value of TOKEN contains a control character (U+0000 at character 2)',
    ],
    [
      'a lone surrogate in a review value',
      JSON.stringify({ environments: { review: { env: { X: '\uD800' } } } }),
      'app.json environments.review.env: the value of X is not valid Unicode',
    ],
    [
      'a name that is not a config var name',
      JSON.stringify({ env: { 'MY KEY': 'x' } }),
      'app.json env: "MY KEY" is not a valid config var name',
    ],
    [
      'a null entry',
      JSON.stringify({ env: { A: null } }),
      'app.json env.A must be a string, or {"value": "..."}, or {"generator": "secret"}',
    ],
    ['env that is not an object', JSON.stringify({ env: 'A=1' }), 'app.json env must be an object of config vars'],
    ['more than 32 KB of config', JSON.stringify({ env: { BIG: 'x'.repeat(40_000) } }), "app.json's config vars come to 40,"],
    ['app.json that is null', 'null', 'app.json must be a JSON object'],
  ])('marks the review app errored for %s, and creates no app', async (_what, appJson, message) => {
    const number = pr++;
    const branch = `bad-${number}`;
    await repo.git('checkout', '-q', '-b', branch, 'main');
    await repo.commit({ 'app.json': appJson }, 'Hostile app.json');
    await repo.git('checkout', '-q', 'main');
    await openPullRequest(number, branch);
    const before = await t.server.database.dataSource.query(
      'SELECT (SELECT count(*) FROM operations) AS operations, (SELECT count(*) FROM releases) AS releases',
    );

    const run = await t.cli(['reviewapps:create', 'shop', '--pr', String(number)]);

    expect(run.code, run.err).toBe(0);
    expect(run.out).toContain(`Review app shop-pr-${number} for #${number}: errored (${message}`);
    expect((await t.json<ReviewAppView[]>(['reviewapps', 'shop'])).find((r) => r.pr === number)).toMatchObject({
      status: 'errored',
      url: null,
    });
    expect((await t.cli(['config', `shop-pr-${number}`])).err).toContain(`no app "shop-pr-${number}"`);
    expect(
      await t.server.database.dataSource.query(
        'SELECT (SELECT count(*) FROM operations) AS operations, (SELECT count(*) FROM releases) AS releases',
      ),
    ).toEqual(before);
  });
});
