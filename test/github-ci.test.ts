import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReleaseView, TestRunView } from '../src/engine/views.ts';
import { deliver, FakeGitHub, githubSignature, webhookExample } from './helpers/fake-github.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const SECRET = 'github-webhook-secret-for-tests';

/** An app with a test suite: `node test.js` passes while RESULT is "pass". */
const appWithTests = (text: string, result: 'pass' | 'fail') => ({
  ...webApp(text),
  'app.json': JSON.stringify({
    environments: { test: { env: { EXPECTED: 'pass' }, scripts: { 'test-setup': 'echo setting up', test: 'node test.js' } } },
  }),
  'test.js': `const r = '${result}'; console.log('1 test, result: ' + r); process.exit(r === process.env.EXPECTED ? 0 : 1);\n`,
});

describe('CI and auto-deploy from GitHub pushes', () => {
  let t: TestServer;
  let repo: GitRepo;
  let github: FakeGitHub;
  let repoDir: string;
  let delivery = 0;

  /** GitHub's push payload (from @octokit/webhooks-examples) for the repository's current main, signed and delivered. */
  async function push(): Promise<string> {
    const sha = (await repo.git('rev-parse', 'HEAD')).trim();
    const payload = webhookExample('push', (e) => e.ref === 'refs/heads/master');
    Object.assign(payload, { ref: 'refs/heads/main', after: sha });
    (payload.repository as { full_name: string }).full_name = 'acme/shop';
    const body = JSON.stringify(payload);
    const res = await deliver(t.server.url, 'push', `push-${delivery++}`, body, githubSignature(SECRET, body));
    expect(res.status).toBe(202);
    return sha;
  }

  async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
    for (let i = 0; i < 300; i++) {
      const value = await read();
      if (done(value)) return value;
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}`);
  }
  const runs = () => t.json<TestRunView[]>(['ci', 'shop']);
  const stagingCommit = async () => (await t.json<ReleaseView[]>(['releases', 'shop-staging'])).find((r) => r.current)?.commit ?? null;

  beforeAll(async () => {
    repoDir = await mkdtemp(path.join(os.tmpdir(), 'flowops-github-ci-'));
    repo = await GitRepo.create(path.join(repoDir, 'acme-shop'), appWithTests('ci v1', 'pass'));
    github = await FakeGitHub.start('acme/shop', repo);
    t = await startTestServer({ env: { GITHUB_API_URL: github.url, GITHUB_TOKEN: 'ghp_test', GITHUB_WEBHOOK_SECRET: SECRET } });
    await t.cli(['pipelines:create', 'shop', '--repo', 'github:acme/shop']);
    await t.cli(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
    expect((await t.cli(['ci:enable', 'shop'])).out).toContain('CI is on for shop');
    expect((await t.cli(['autodeploy:enable', 'shop', '--branch', 'main', '--wait-for-ci'])).out).toContain(
      'Pushes to main deploy to staging of shop once CI passes',
    );
  });
  afterAll(async () => {
    await t.close();
    await github.close();
    await rm(repoDir, { recursive: true, force: true });
  });

  it('tests a push, posts pending then success as flowops/ci, and deploys the green commit to staging', async () => {
    const sha = await push();

    const [run] = await until(
      runs,
      (r) => r[0]?.status === 'succeeded' || r[0]?.status === 'failed' || r[0]?.status === 'errored',
      'the test run',
    );
    expect(run).toMatchObject({ number: 1, commit: sha, branch: 'main', status: 'succeeded' });
    await until(stagingCommit, (c) => c === sha, 'the auto-deploy');
    await t.server.statuses.idle();
    const ours = github.statuses.filter((s) => s.sha === sha && s.context === 'flowops/ci');
    expect(ours[0]!.state).toBe('pending');
    expect(ours.at(-1)).toMatchObject({ state: 'success', description: 'Test run #1 succeeded' });
    const info = await t.cli(['ci:info', 'shop', '1']);
    expect(info.out).toContain('Running test-setup: echo setting up');
    expect(info.out).toContain('1 test, result: pass');
  });

  it('posts failure for a red commit and never deploys it', async () => {
    const before = await stagingCommit();
    const sha = (await repo.commit(appWithTests('ci v2', 'fail'), 'Break a test'), await push());

    const [run] = await until(
      runs,
      (r) => r[0]?.commit === sha && !['pending', 'building', 'running'].includes(r[0].status),
      'the red test run',
    );

    expect(run!.status).toBe('failed');
    await t.server.statuses.idle();
    expect(github.statuses.filter((s) => s.sha === sha).at(-1)).toMatchObject({ state: 'failure', context: 'flowops/ci' });
    await t.server.engine.idle();
    expect(await stagingCommit()).toBe(before);
  });

  it('does not deploy a green commit while another check on it has failed', async () => {
    await repo.commit(appWithTests('ci v3', 'pass'), 'Fix the test');
    const sha = (await repo.git('rev-parse', 'HEAD')).trim();
    github.otherStatuses.set(sha, [{ state: 'failure', context: 'security/scan' }]);
    const before = await stagingCommit();

    await push();
    await until(runs, (r) => r[0]?.commit === sha && r[0].status === 'succeeded', 'the green run');
    await t.server.engine.idle();

    expect(await stagingCommit()).toBe(before);
    const skipped = await t.server.database.dataSource.query("SELECT message FROM events WHERE type = 'autodeploy.skipped'");
    expect(skipped).toEqual([{ message: `Not deploying ${sha.slice(0, 7)}: other checks on the commit are failure` }]);
  });

  it('re-runs a test run on request', async () => {
    const [latest] = await runs();

    const rerun = await t.json<TestRunView>(['ci:rerun', 'shop']);

    expect(rerun).toMatchObject({ number: latest!.number + 1, commit: latest!.commit, status: 'pending' });
    await until(runs, (r) => r[0]?.number === rerun.number && r[0].status === 'succeeded', 'the re-run');
    await t.server.statuses.idle();
    expect(github.statuses.filter((s) => s.sha === latest!.commit && s.description === `Test run #${rerun.number} succeeded`)).toHaveLength(
      1,
    );
  });

  it('cancels a running test run, stopping its tests, and reports it as error', async () => {
    await repo.commit({ ...appWithTests('ci v4', 'pass'), 'test.js': 'setTimeout(() => {}, 60000);\n' }, 'A slow test');
    const sha = await push();
    const [running] = await until(runs, (r) => r[0]?.commit === sha && r[0].status === 'running', 'the running test run');

    const cancelled = await t.cli(['ci:cancel', 'shop', String(running!.number)]);

    expect(cancelled.out).toContain(`Cancelled test run #${running!.number}`);
    await t.server.engine.idle();
    expect((await runs())[0]).toMatchObject({ number: running!.number, status: 'cancelled' });
    await t.server.statuses.idle();
    expect(github.statuses.filter((s) => s.sha === sha).at(-1)).toMatchObject({
      state: 'error',
      description: `Test run #${running!.number} cancelled`,
    });
    expect((await t.cli(['ci:cancel', 'shop', String(running!.number)])).err).toContain('has already ended (cancelled)');
  });
});
