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
      .map((c) => ({ text: String(c.args.text), blocks: JSON.stringify(c.args.blocks), thread: !!c.args.thread_ts }));
  /** Every drawing of a top-level message in the feed: first posts and updates. */
  const feedDrawings = () =>
    slack.calls
      .filter((c) => c.args.channel === 'CFEED' && (c.method === 'chat.update' || (c.method === 'chat.postMessage' && !c.args.thread_ts)))
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

  it('posts a push to the deploy branch as one message: failed tests offer Re-run, and the re-run updates that message', async () => {
    const sha = (await repo.git('rev-parse', 'HEAD')).trim();
    await webhook('push', null, (p) =>
      Object.assign(p, {
        ref: 'refs/heads/main',
        after: sha,
        head_commit: { ...(p.head_commit as object), message: 'First version\n\nbody' },
      }),
    );

    const failed = await slack.waitFor(
      () => feedDrawings().find((m) => /^❌ main [0-9a-f]{7} · tests failed$/.test(m.text) && m.blocks.includes('(run #1)')),
      'the failed run in the feed',
    );
    expect(failed.blocks).toContain('"action_id":"ci_rerun"');
    expect(failed.blocks).toContain(`pushed <${github.url}/acme/shop/commit/${sha}|\`${sha.slice(0, 7)}\`> to \`main\` First version`);
    const reply = await slack.waitFor(
      () => slack.callsOf('chat.postMessage').find((c) => c.args.channel === 'CFEED' && c.args.thread_ts),
      'the failure reply',
    );
    expect(String(reply.args.reply_broadcast)).toBe('true');
    expect(JSON.stringify(reply.args.blocks)).toContain('1 failing');

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

    const answer = await slack.waitFor(
      () => slack.responses.find((r) => r.id === 'rerun') as { text: string } | undefined,
      'the re-run answer',
    );
    expect(answer.text).toContain(`Started test run #2 of ${sha.slice(0, 7)}`);
    expect((await t.json<TestRunView[]>(['ci', 'shop']))[0]).toMatchObject({ number: 2, commit: sha });
    await slack.waitFor(
      () => feedDrawings().find((m) => m.text.includes('tests failed') && m.blocks.includes('(run #2)')),
      'run #2 on the card',
    );
    expect(feedPosts().filter((m) => !m.thread)).toHaveLength(1);
  });

  it('follows a pull request in one message: opened, its tests, its review app, pushes, merged', async () => {
    const before = feedPosts().filter((m) => !m.thread).length;
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

    // GitHub sends the branch's push first (its test run starts), then the pull request.
    await webhook('push', null, (p) => Object.assign(p, { ref: 'refs/heads/feature', after: sha }));
    await webhook('pull_request', 'opened', (p) => pr(p, 'opened'));
    const up = await slack.waitFor(
      () => feedDrawings().find((m) => m.blocks.includes(':eyes: Review app <http://') && m.blocks.includes('Tests failed')),
      'the card with its tests and review app',
    );
    expect(up.blocks).toContain(`<${github.url}/acme/shop/pull/7|#7 Add a feature>`);
    expect(up.text).toMatch(/^PR #7 Add a feature · tests failed · review app up$/);
    await webhook('pull_request', 'synchronize', (p) => pr(p, 'synchronize'));
    await slack.waitFor(() => feedDrawings().find((m) => m.blocks.includes('1 push since opened')), 'the push on the card');
    await webhook('pull_request', 'closed', (p) => pr(p, 'closed', true));

    const merged = await slack.waitFor(
      () =>
        feedDrawings().find((m) => m.text.startsWith('PR #7 Add a feature merged') && m.blocks.includes('Review app shop-pr-7 destroyed')),
      'the merged card',
    );
    await t.server.slack!.idle();
    expect(feedPosts().filter((m) => !m.thread).length - before).toBe(1);
    // Merged: Re-run no longer applies.
    expect(merged.blocks).not.toContain('ci_rerun');
  });

  it('posts the commit statuses GitHub refused for good to the pipeline feed', async () => {
    const sha = await repo.commit({ 'refused.txt': 'x' }, 'GitHub will refuse statuses on this one');
    github.refuse.set(sha, 422);

    await webhook('push', null, (p) => Object.assign(p, { ref: 'refs/heads/feature', after: sha }));

    const refused = await slack.waitFor(
      () =>
        feedPosts().find(
          (m) => m.text.includes(`GitHub refused the flowops/ci status of ${sha.slice(0, 7)}`) && /succeeded|failed/.test(m.text),
        ),
      'the refused final status in the feed',
    );
    expect(refused.blocks).toContain(':warning: *shop*: GitHub refused the flowops/ci status of');
    expect(refused.text).toMatch(/\(test run #\d+ (succeeded|failed)\) with 422; flowops skipped it$/);
    expect(github.statuses.filter((s) => s.sha === sha)).toEqual([]);
  });

  it('posts a push that auto-deploys in one message: its tests, then the release they led to', async () => {
    await repo.git('checkout', '-q', 'main');
    await t.cli(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
    await t.cli(['autodeploy:enable', 'shop', '--branch', 'main', '--wait-for-ci']);
    const sha = await repo.commit(
      { 'app.json': JSON.stringify({ environments: { test: { scripts: { test: 'echo "all green"' } } } }) },
      'Fix the tests',
    );
    const before = feedPosts().filter((m) => !m.thread).length;

    await webhook('push', null, (p) => Object.assign(p, { ref: 'refs/heads/main', after: sha }));

    const live = await slack.waitFor(
      () => feedDrawings().find((m) => m.text === `⬆️ main ${sha.slice(0, 7)} · tests passed · shop-staging v1 is live`),
      'the push card with its deploy',
    );
    expect(live.blocks).toContain(':white_check_mark: Tests passed (run #');
    expect(live.blocks).toContain('shop-staging v1> is live*');
    await t.server.slack!.idle();
    expect(feedPosts().filter((m) => !m.thread).length - before).toBe(1);
  });
});
