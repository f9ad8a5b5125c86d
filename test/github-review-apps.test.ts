import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReviewAppView } from '../src/engine/views.ts';
import { deliver, FakeGitHub, githubSignature, webhookExample } from './helpers/fake-github.ts';
import { GitRepo } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { startWitness, type Witness } from './helpers/witness.ts';
import { fetchApp } from './helpers/app-http.ts';

const SECRET = 'github-webhook-secret-for-tests';

describe('review apps for pull requests', () => {
  let t: TestServer;
  let repo: GitRepo;
  let github: FakeGitHub;
  let dir: string;
  let delivery = 0;
  let witness: Witness;

  const app = (text: string) => ({
    'index.js': `require('node:http').createServer((q, s) => s.end(process.env.GREETING + ' from ' + process.env.HEROKU_BRANCH + ': ${text}')).listen(process.env.PORT);\n`,
    Procfile: 'web: node index.js\n',
    'app.json': JSON.stringify({
      env: { GREETING: 'hello', SECRET_KEY: { generator: 'secret' } },
      environments: { review: { env: { GREETING: 'review' } } },
      scripts: { postdeploy: witness.report('$HEROKU_APP_NAME seeded'), 'pr-predestroy': witness.report('$HEROKU_PR_NUMBER going') },
    }),
  });

  /** GitHub's pull_request payload (from @octokit/webhooks-examples) for PR `number` at the branch's head, signed and delivered. */
  async function pullRequest(action: string, number: number, branch: string, headRepo = 'acme/shop') {
    const sha = (await repo.git('rev-parse', branch)).trim();
    const payload = webhookExample('pull_request', (e) => e.action === 'opened');
    const pr = payload.pull_request as {
      head: { ref: string; sha: string; repo: { full_name: string } };
      base: { repo: { full_name: string } };
      number: number;
    };
    Object.assign(payload, { action, number });
    Object.assign(pr, { number });
    Object.assign(pr.head, { ref: branch, sha });
    pr.head.repo.full_name = headRepo;
    pr.base.repo.full_name = 'acme/shop';
    (payload.repository as { full_name: string }).full_name = 'acme/shop';
    const body = JSON.stringify(payload);
    const res = await deliver(t.server.url, 'pull_request', `pr-${delivery++}`, body, githubSignature(SECRET, body));
    expect(res.status).toBe(202);
  }

  async function reviewApp(pr: number, done: (r: ReviewAppView | undefined) => boolean): Promise<ReviewAppView | undefined> {
    for (let i = 0; i < 300; i++) {
      const found = (await t.json<ReviewAppView[]>(['reviewapps', 'shop'])).find((r) => r.pr === pr);
      if (done(found)) return found;
      await sleep(100);
    }
    throw new Error(`timed out waiting for the review app of #${pr}`);
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-review-'));
    witness = await startWitness();
    repo = await GitRepo.create(path.join(dir, 'acme-shop'), app('main'));
    await repo.git('checkout', '-q', '-b', 'feature');
    await repo.commit(app('feature v1'), 'Start a feature');
    github = await FakeGitHub.start('acme/shop', repo);
    t = await startTestServer({ env: { GITHUB_API_URL: github.url, GITHUB_TOKEN: 'ghp_test', GITHUB_WEBHOOK_SECRET: SECRET } });
    await t.cli(['pipelines:create', 'shop', '--repo', 'github:acme/shop']);
    const enabled = await t.cli(['reviewapps:enable', 'shop', '--autodeploy', '--autodestroy']);
    expect(enabled.out).toContain('Review apps are on for shop: created for every pull request, destroyed after 5 days without a push');
  });
  afterAll(async () => {
    await t.close();
    await github.close();
    await witness.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a review app serving the branch of an opened pull request, with app.json config and postdeploy', async () => {
    await pullRequest('opened', 7, 'feature');

    const created = await reviewApp(7, (r) => r?.status === 'created' || r?.status === 'errored');

    expect(created).toMatchObject({ app: 'shop-pr-7', branch: 'feature', status: 'created' });
    expect(await (await fetchApp(created!.url!)).text()).toBe('review from feature: feature v1');
    const config = await t.json<Record<string, string>>(['config', 'shop-pr-7']);
    expect(config).toMatchObject({
      GREETING: 'review',
      HEROKU_APP_NAME: 'shop-pr-7',
      HEROKU_BRANCH: 'feature',
      HEROKU_PR_NUMBER: '7',
      FLOW_APP_NAME: 'shop-pr-7',
      FLOW_BRANCH: 'feature',
      FLOW_PR_NUMBER: '7',
    });
    expect(config.SECRET_KEY).toMatch(/^[0-9a-f]{64}$/);
    expect(witness.reports).toEqual(['shop-pr-7 seeded']);
  });

  it('redeploys the review app on every push to the pull request', async () => {
    await repo.commit(app('feature v2'), 'More feature');

    await pullRequest('synchronize', 7, 'feature');

    const sha = (await repo.git('rev-parse', 'feature')).trim();
    const updated = await reviewApp(7, (r) => r?.commit === sha && r.status === 'created');
    for (let i = 0; i < 100 && (await (await fetchApp(updated!.url!)).text()) !== 'review from feature: feature v2'; i++) await sleep(100);
    expect(await (await fetchApp(updated!.url!)).text()).toBe('review from feature: feature v2');
  });

  it('destroys the review app when the pull request closes, after pr-predestroy', async () => {
    const { url } = (await reviewApp(7, (r) => r?.status === 'created'))!;

    await pullRequest('closed', 7, 'feature');

    await reviewApp(7, (r) => r?.status === 'deleted');
    expect(witness.reports).toEqual(['shop-pr-7 seeded', '7 going']);
    expect((await fetchApp(url!)).status).toBe(404);
    expect((await t.cli(['releases', 'shop-pr-7'])).err).toContain('no app "shop-pr-7"');
  });

  it('does not create review apps for pull requests from forks', async () => {
    await pullRequest('opened', 8, 'feature', 'stranger/shop');
    await sleep(300);

    expect(await reviewApp(8, (r) => !!r)).toMatchObject({ status: 'pending', url: null });
    expect(existsSync(path.join(t.dir, 'data', 'apps', 'shop-pr-8'))).toBe(false);
  });

  it('gives two pipelines on one repository distinct review apps, even when one is named what the other is shortened to', async () => {
    const long = 'payments-gateway-for-europe-x';
    const short = 'payments-gateway-f-d690'; // what `long` is shortened to for its review apps
    for (const name of [long, short]) {
      expect((await t.cli(['pipelines:create', name, '--repo', 'github:acme/shop'])).code).toBe(0);
      expect((await t.cli(['reviewapps:enable', name])).code).toBe(0);
    }
    expect((await t.cli(['reviewapps:disable', 'shop'])).code).toBe(0);

    await pullRequest('opened', 123, 'feature');

    const appOf = async (pipeline: string) => {
      for (let i = 0; i < 100; i++) {
        const found = (await t.json<ReviewAppView[]>(['reviewapps', pipeline])).find((r) => r.pr === 123);
        if (found) return found.app;
        await sleep(100);
      }
      throw new Error(`no review app of #123 on ${pipeline}`);
    };
    const apps = [await appOf(long), await appOf(short)];
    expect(apps[0]).toBe('payments-gateway-f-d690-pr-123');
    expect(apps[1]).not.toBe(apps[0]);
    expect(apps[1]).toMatch(/^payments-gateway-[a-z0-9-]*-[0-9a-f]{4}-pr-123$/);
  });
});
