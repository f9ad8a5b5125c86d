import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditView } from '../src/api/types.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

/**
 * A script does not wait for one refusal before the next: refusals sent at
 * once must still count on one record each (same refusal) and stay within
 * REFUSAL_RECORDS_PER_HOUR records plus one '(more)'.
 */
describe('refusals sent at once', () => {
  let t: TestServer;
  let repoDir: string;
  let token: string;

  /** POST /api/commands as `token`, as the CLI does, without waiting for the previous one. */
  const command = (argv: string[]) =>
    fetch(`${t.server.url}/api/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ argv }),
    }).then((r) => r.status);

  beforeAll(async () => {
    repoDir = await mkdtemp(path.join(os.tmpdir(), 'flowops-refusal-race-'));
    const repo = await GitRepo.create(path.join(repoDir, 'shop'), webApp('v1'));
    t = await startTestServer();
    await t.cli(['pipelines:create', 'shop', '--repo', repo.dir]);
    await t.cli(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
    token = (await t.json<{ token: string }>(['users:create', 'mallory'])).token;
  });
  afterAll(async () => {
    await t.close();
    await rm(repoDir, { recursive: true, force: true });
  });

  it('count the same refusal sent 20 times at once on one record', async () => {
    const statuses = await Promise.all(Array.from({ length: 20 }, () => command(['promote', 'shop'])));

    expect(statuses.every((s) => s >= 400)).toBe(true);
    const records = (await t.json<AuditView>(['audit', 'shop', '--user', 'mallory'])).records.filter((r) => r.action === 'promote');
    expect(records.reduce((sum, r) => sum + r.repeats, 0)).toBe(20);
    expect(records).toHaveLength(1);
  });

  it('keep 30 different refusals sent at once within 10 records and one (more)', async () => {
    const tries = Array.from({ length: 30 }, (_, i) => ['config:unset', 'shop-staging', `KEY_${i}`]).concat(
      Array.from({ length: 30 }, (_, i) => ['lock', 'shop:staging', '--reason', `r${i}`]),
    );
    const kinds = [
      ['deploy', 'shop', 'to', 'staging'],
      ['rollback', 'shop-staging'],
      ['ps:scale', 'shop-staging', 'web=2'],
      ['ps:restart', 'shop-staging'],
      ['unlock', 'shop:staging'],
      ['access:add', 'shop', 'mallory', 'manage'],
      ['releases', 'shop-staging'],
      ['pipelines:info', 'shop'],
      ['subscribe', 'shop', '--channel', 'CSPAM'],
      ['config', 'shop-staging'],
      ['audit', 'shop'],
      ['logs', 'shop-staging'],
    ];

    await Promise.all([...kinds, ...tries].map(command));

    const records = (await t.json<AuditView>(['audit', 'shop', '--user', 'mallory'])).records;
    const separate = records.filter((r) => r.action !== '(more)');
    const more = records.filter((r) => r.action === '(more)');
    expect({ separate: separate.length, more: more.length }).toEqual({ separate: Math.min(separate.length, 10), more: 1 });
  });
});
