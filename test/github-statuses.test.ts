import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReleaseView, TestRunView } from '../src/engine/views.ts';
import { retryDelay } from '../src/github/status-notifier.ts';
import { deliver, FakeGitHub, githubSignature, webhookExample } from './helpers/fake-github.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const SECRET = 'github-webhook-secret-for-tests';
const passingTests = {
  ...webApp('statuses v1'),
  'app.json': JSON.stringify({ environments: { test: { scripts: { test: 'echo "1 passing"' } } } }),
};

describe('GitHub statuses and deployments GitHub does not take', () => {
  let t: TestServer;
  let repo: GitRepo;
  let github: FakeGitHub;
  let dir: string;
  let delivery = 0;

  async function push(sha: string): Promise<void> {
    const payload = webhookExample('push', (e) => e.ref === 'refs/heads/master');
    Object.assign(payload, { ref: 'refs/heads/main', after: sha });
    (payload.repository as { full_name: string }).full_name = 'acme/shop';
    const body = JSON.stringify(payload);
    expect((await deliver(t.server.url, 'push', `status-push-${delivery++}`, body, githubSignature(SECRET, body))).status).toBe(202);
  }
  async function until<T>(read: () => T | Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
    for (let i = 0; i < 600; i++) {
      const value = await read();
      if (done(value)) return value;
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}`);
  }
  const taken = (sha: string) => github.statuses.filter((s) => s.sha === sha).map((s) => s.description);
  /** The number of the commit's test run, once the push has started one (it starts after the delivery is answered). */
  const runOf = async (sha: string) =>
    (
      await until(
        () => t.json<TestRunView[]>(['ci', 'shop']),
        (runs) => runs.some((r) => r.commit === sha),
        `the test run of ${sha}`,
      )
    ).find((r) => r.commit === sha)!.number;
  const events = (type: string): Promise<{ message: string; data: { status: number } }[]> =>
    t.server.database.dataSource.query('SELECT message, data FROM events WHERE type = $1 ORDER BY id', [type]);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-github-statuses-'));
    repo = await GitRepo.create(path.join(dir, 'acme-shop'), passingTests);
    github = await FakeGitHub.start('acme/shop', repo);
    t = await startTestServer({ env: { GITHUB_API_URL: github.url, GITHUB_TOKEN: 'ghp_test', GITHUB_WEBHOOK_SECRET: SECRET } });
    await t.cli(['pipelines:create', 'shop', '--repo', 'github:acme/shop']);
    await t.cli(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
    await t.cli(['ci:enable', 'shop']);
  });
  afterAll(async () => {
    await t.close();
    await github.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('backs off 1 s, 2 s, 4 s … up to 5 minutes, or as long as GitHub said', () => {
    const around = (ms: number) => expect.toSatisfy((d: number) => d >= ms * 0.8 && d <= ms * 1.2);

    expect([1, 2, 3, 4].map((n) => retryDelay(n, null))).toEqual([around(1000), around(2000), around(4000), around(8000)]);
    expect(retryDelay(30, null)).toEqual(around(300_000));
    expect(retryDelay(1, 60_000)).toBe(60_000);
  });

  it('skips and records a status GitHub refuses (422), retries one it cannot take (500) until it recovers, and holds up none of the others', async () => {
    const refused = await repo.commit({ 'a.txt': 'a' }, 'GitHub refuses statuses on this one');
    const down = await repo.commit({ 'b.txt': 'b' }, 'GitHub is down for this one');
    const fine = await repo.commit({ 'c.txt': 'c' }, 'This one goes through');
    github.refuse.set(refused, 422);
    github.refuse.set(down, 500);

    await push(refused);
    await push(down);
    await push(fine);

    const n = await runOf(fine);
    await until(
      () => taken(fine),
      (d) => d.includes(`Test run #${n} succeeded`),
      'the last status of the commit GitHub takes',
    );
    expect(taken(fine)).toEqual([
      `Test run #${n} pending`,
      `Test run #${n} building`,
      `Test run #${n} running`,
      `Test run #${n} succeeded`,
    ]);
    const refusals = await until(
      () => events('github.status_refused'),
      (e) => e.length === 4,
      'the refused statuses, recorded',
    );
    expect(refusals[0]!.message).toMatch(
      new RegExp(
        `^GitHub refused the flowops/ci status of ${refused.slice(0, 7)} \\(test run #\\d+ pending\\) with 422; flowops skipped it$`,
      ),
    );
    expect(github.statusAttempts.filter((a) => a.sha === refused).map((a) => a.answered)).toEqual([422, 422, 422, 422]);
    await until(
      () => github.statusAttempts.filter((a) => a.sha === down).length,
      (tries) => tries >= 2,
      'a second attempt at the status GitHub cannot take',
    );
    expect(taken(down)).toEqual([]);

    github.refuse.delete(down);

    const m = await runOf(down);
    await until(
      () => taken(down),
      (d) => d.length === 4,
      'the statuses of the commit once GitHub is back',
    );
    expect(taken(down)).toEqual([
      `Test run #${m} pending`,
      `Test run #${m} building`,
      `Test run #${m} running`,
      `Test run #${m} succeeded`,
    ]);
    // Only the first of its statuses was ever tried while GitHub was down: the later ones waited behind it.
    expect(new Set(github.statusAttempts.filter((a) => a.sha === down && a.answered === 500).map((a) => a.description))).toEqual(
      new Set([`Test run #${m} pending`]),
    );
    // GitHub records the last status a moment before flowops unparks it: nothing stays parked once that lands.
    await until(
      () => t.server.database.dataSource.query('SELECT * FROM outbox_retries') as Promise<unknown[]>,
      (rows) => rows.length === 0,
      'no status left parked',
    );
  });

  it('records a deployment GitHub refuses, and the release goes live all the same', async () => {
    github.refuse.set('deployments', 422);

    await t.cli(['deploy', 'shop', 'to', 'staging']);

    expect((await t.json<ReleaseView[]>(['releases', 'shop-staging']))[0]).toMatchObject({ version: 1, status: 'succeeded' });
    const [refusal] = await until(
      () => events('github.deployment_refused'),
      (e) => e.length === 1,
      'the refused deployment, recorded',
    );
    expect(refusal!.message).toBe('GitHub refused the deployment of shop-staging v1 (created) with 422; flowops skipped it');
    await t.server.statuses.idle();
    expect(await t.server.database.dataSource.query('SELECT * FROM outbox_retries')).toEqual([]);
    github.refuse.delete('deployments');
  });
});
