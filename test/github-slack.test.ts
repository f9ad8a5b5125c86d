import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestRunView } from '../src/engine/views.ts';
import { buttonClick, FakeSlack, postToSlackEndpoint, slashCommand } from './helpers/fake-slack.ts';
import { deliver, FakeGitHub, githubSignature, webhookExample } from './helpers/fake-github.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { frontsEnv } from './helpers/fronts.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const GH_SECRET = 'github-webhook-secret-for-tests';
const SLACK_SECRET = 'slack-signing-secret-for-tests';
const failingTests = {
  ...webApp('feed v1'),
  'app.json': JSON.stringify({ environments: { test: { scripts: { test: 'echo "1 failing"; exit 1' } } } }),
};

describe('GitHub events in a Slack feed', () => {
  let t: TestServer;
  let slack: FakeSlack;
  let github: FakeGitHub;
  let repo: GitRepo;
  let dir: string;
  let n = 0;
  const form = 'application/x-www-form-urlencoded';
  const feedPosts = () =>
    slack
      .callsOf('chat.postMessage')
      .filter((c) => c.args.channel === 'CFEED')
      .map((c) => ({ text: String(c.args.text), blocks: JSON.stringify(c.args.blocks) }));

  async function webhook(name: string, action: string | null, edit: (payload: Record<string, unknown>) => void) {
    const payload = webhookExample(name, (e) => (action ? e.action === action : e.ref === 'refs/heads/master'));
    (payload.repository as { full_name: string }).full_name = 'acme/shop';
    edit(payload);
    const body = JSON.stringify(payload);
    expect((await deliver(t.server.url, name, `d-${n++}`, body, githubSignature(GH_SECRET, body))).status).toBe(202);
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-gh-slack-'));
    repo = await GitRepo.create(path.join(dir, 'acme-shop'), failingTests);
    github = await FakeGitHub.start('acme/shop', repo);
    slack = await FakeSlack.start();
    t = await startTestServer({
      env: frontsEnv({
        github: { fake: github, webhookSecret: GH_SECRET },
        slack: { fake: slack, signingSecret: SLACK_SECRET, admins: 'UADMIN' },
      }),
    });
    await t.cli(['pipelines:create', 'shop', '--repo', 'github:acme/shop']);
    await t.cli(['ci:enable', 'shop']);
    await t.cli(['reviewapps:enable', 'shop', '--autodeploy']);
    await postToSlackEndpoint(
      t.server.url,
      slashCommand({ text: 'subscribe shop', user: 'UADMIN', userName: 'ada', channel: 'CFEED', responseUrl: slack.responseUrl('sub') }),
      { secret: SLACK_SECRET, contentType: form },
    );
    await slack.waitFor(() => slack.responses.find((r) => r.id === 'sub'), 'the subscription');
  });
  afterAll(async () => {
    await t.close();
    await slack.close();
    await github.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('posts a failed test run with Re-run, and Re-run starts a new run', async () => {
    const sha = (await repo.git('rev-parse', 'HEAD')).trim();
    await webhook('push', null, (p) => Object.assign(p, { ref: 'refs/heads/main', after: sha }));

    const failed = await slack.waitFor(
      () => feedPosts().find((m) => m.text.includes('Test run #1') && m.text.includes('failed')),
      'the failed run in the feed',
    );
    expect(failed.blocks).toContain('"action_id":"ci_rerun"');

    await postToSlackEndpoint(
      t.server.url,
      buttonClick({
        actionId: 'ci_rerun',
        value: JSON.stringify({ p: 'shop', n: 1 }),
        user: 'UADMIN',
        userName: 'ada',
        channel: 'CFEED',
        responseUrl: slack.responseUrl('rerun'),
      }),
      { secret: SLACK_SECRET, contentType: form },
    );

    const reply = await slack.waitFor(
      () => slack.responses.find((r) => r.id === 'rerun') as { text: string } | undefined,
      'the re-run answer',
    );
    expect(reply.text).toContain(`Started test run #2 of ${sha.slice(0, 7)}`);
    expect((await t.json<TestRunView[]>(['ci', 'shop']))[0]).toMatchObject({ number: 2, commit: sha });
  });

  it('posts a pull request opened, its review app with the link, and its merge', async () => {
    await repo.git('checkout', '-q', '-b', 'feature');
    await repo.commit(webApp('feature'), 'A feature');
    const sha = (await repo.git('rev-parse', 'HEAD')).trim();
    const pr = (p: Record<string, unknown>, action: string, merged = false) => {
      Object.assign(p, { action, number: 7 });
      const pull = p.pull_request as {
        head: { ref: string; sha: string; repo: { full_name: string } };
        title: string;
        merged: boolean;
        number: number;
      };
      Object.assign(pull, { title: 'Add a feature', merged, number: 7 });
      Object.assign(pull.head, { ref: 'feature', sha });
      pull.head.repo.full_name = 'acme/shop';
    };

    await webhook('pull_request', 'opened', (p) => pr(p, 'opened'));
    const opened = await slack.waitFor(
      () => feedPosts().find((m) => m.text.includes('Pull request #7 "Add a feature" (feature) opened')),
      'the opened PR',
    );
    const up = await slack.waitFor(
      () => feedPosts().find((m) => m.text.includes('Review app shop-pr-7 for #7 (feature) created')),
      'the review app',
    );
    await webhook('pull_request', 'closed', (p) => pr(p, 'closed', true));
    await slack.waitFor(() => feedPosts().find((m) => m.text.includes('Pull request #7 "Add a feature" (feature) merged')), 'the merge');

    expect(opened.text).toContain('shop:');
    expect(up.blocks).toMatch(/<http:\/\/127\.0\.0\.1:\d+\|Open the review app>/);
  });

  it('posts the commit statuses GitHub refused for good to the pipeline feed', async () => {
    const sha = await repo.commit({ 'refused.txt': 'x' }, 'GitHub will refuse statuses on this one');
    github.refuse.set(sha, 422);

    await webhook('push', null, (p) => Object.assign(p, { ref: 'refs/heads/feature', after: sha }));

    const refused = await slack.waitFor(
      () =>
        feedPosts().find((m) => m.text.includes(`GitHub refused the flowops/ci status of ${sha.slice(0, 7)}`) && m.text.includes('failed')),
      'the refused final status in the feed',
    );
    expect(refused.blocks).toContain(':warning: *shop*: GitHub refused the flowops/ci status of');
    expect(refused.text).toMatch(/\(test run #\d+ failed\) with 422; flowops skipped it$/);
    expect(github.statuses.filter((s) => s.sha === sha)).toEqual([]);
  });
});
