import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REQUIRED, permits } from '../src/engine/access.ts';
import type { Permission } from '../src/db/entities.ts';
import { FakeGitHub } from './helpers/fake-github.ts';
import { FakeSlack, postToSlackEndpoint, slashCommand } from './helpers/fake-slack.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { frontsEnv } from './helpers/fronts.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

describe('permissions: view < deploy < operate < manage', () => {
  const table: [Permission | null, keyof typeof REQUIRED, boolean][] = [
    [null, 'read', false],
    ['view', 'read', true],
    ['view', 'deploy', false],
    ['view', 'promote', false],
    ['deploy', 'promote', true],
    ['deploy', 'rollback', true],
    ['deploy', 'config', true],
    ['deploy', 'manageApps', false],
    ['operate', 'deploy', true],
    ['operate', 'manageAccess', false],
    ['manage', 'manageApps', true],
    ['manage', 'manageAccess', true],
  ];

  it.each(table)('a user with %s may %s: %s', (held, operation, allowed) => {
    expect(permits(held, REQUIRED[operation])).toBe(allowed);
  });
});

describe('the permission matrix, through the CLI and Slack', () => {
  const SECRET = 'slack-signing-secret-for-tests';
  let t: TestServer;
  let github: FakeGitHub;
  let slack: FakeSlack;
  let repoDir: string;
  const tokens: Record<string, string> = {};
  let n = 0;

  /** `/flow <text>` typed by a Slack user; resolves with the ephemeral answer. */
  async function flow(text: string, user: string, userName: string) {
    const id = `m${n++}`;
    await postToSlackEndpoint(
      t.server.url,
      slashCommand({ text, user, userName, channel: 'CDEPLOY', responseUrl: slack.responseUrl(id) }),
      { secret: SECRET, contentType: 'application/x-www-form-urlencoded' },
    );
    return slack.waitFor(
      () => slack.responses.find((r) => r.id === id) as { text: string; blocks: { text?: { text: string } }[] } | undefined,
      `the answer to ${text}`,
    );
  }

  beforeAll(async () => {
    repoDir = await mkdtemp(path.join(os.tmpdir(), 'flowops-matrix-'));
    const repo = await GitRepo.create(path.join(repoDir, 'shop'), webApp('matrix v1'));
    github = await FakeGitHub.start('acme/shop', repo);
    slack = await FakeSlack.start();
    t = await startTestServer({ env: frontsEnv({ github: { fake: github }, slack: { fake: slack, signingSecret: SECRET } }) });
    await t.cli(['pipelines:create', 'conn', '--repo', repo.dir]);
    await t.cli(['apps:create', 'conn-staging', '--pipeline', 'conn', '--stage', 'staging']);
    await t.cli(['config:set', 'conn-staging', 'GREETING=hello', 'API_KEY=sk_live_51abc']);
    for (const [user, permission] of [
      ['viv', 'view'],
      ['dee', 'deploy'],
      ['opa', 'operate'],
      ['max', 'manage'],
    ] as const) {
      tokens[user] = (await t.json<{ token: string }>(['users:create', user])).token;
      await t.cli(['access:add', 'conn', user, permission]);
    }
    tokens.nobody = (await t.json<{ token: string }>(['users:create', 'nobody'])).token;
    tokens.admin = t.server.admin.token;
    // Slack users: created on first contact, then granted like anyone.
    await flow('help', 'USVIEW', 'sue');
    await flow('help', 'USDEPLOY', 'sid');
    await t.cli(['access:add', 'conn', 'sue', 'view']);
    await t.cli(['access:add', 'conn', 'sid', 'deploy']);
  });
  afterAll(async () => {
    await t.close();
    await github.close();
    await slack.close();
    await rm(repoDir, { recursive: true, force: true });
  });

  const repoOf = async () => (await t.json<{ repo: string }>(['pipelines:info', 'conn'])).repo;

  it.each([
    ['nobody', 'no pipeline "conn" that you can see'],
    ['viv', '`pipelines:connect conn` needs an admin'],
    ['dee', '`pipelines:connect conn` needs an admin'],
    ['opa', '`pipelines:connect conn` needs an admin'],
    ['max', "`pipelines:connect conn` needs an admin: the pipeline's repository is code that runs on this server"],
  ])('pipelines:connect: %s is refused and the repository stays', async (user, message) => {
    const before = await repoOf();

    const run = await t.cli(['pipelines:connect', 'conn', 'acme/shop'], tokens[user]);

    expect(run.code).toBe(2);
    expect(run.err).toContain(message);
    expect(await repoOf()).toBe(before);
    expect(before).not.toBe('github:acme/shop');
  });

  it.each([
    ['nobody', 'no app "conn-staging" that you can see', null],
    ['viv', 'GREETING:  ********', { GREETING: '********', API_KEY: '********' }],
    ['dee', 'GREETING:  hello', { GREETING: 'hello', API_KEY: 'sk_live_51abc' }],
    ['opa', 'GREETING:  hello', { GREETING: 'hello', API_KEY: 'sk_live_51abc' }],
    ['max', 'GREETING:  hello', { GREETING: 'hello', API_KEY: 'sk_live_51abc' }],
    ['admin', 'GREETING:  hello', { GREETING: 'hello', API_KEY: 'sk_live_51abc' }],
  ])('config: %s sees %j', async (user, text, json) => {
    const run = await t.cli(['config', 'conn-staging'], tokens[user]);
    const asJson = await t.cli(['config', 'conn-staging', '--json'], tokens[user]);

    expect(`${run.out}${run.err}`).toContain(text);
    if (json) {
      expect(JSON.parse(asJson.out)).toEqual(json);
    } else {
      expect([run.code, asJson.code]).toEqual([2, 2]);
    }
    if (user === 'viv') {
      expect(run.out).toContain('(Values are masked: they need deploy on conn; you have view. Ask an admin: `access:add conn viv deploy`)');
      expect(run.out).not.toContain('sk_live');
    }
  });

  it.each([
    ['a view user', 'USVIEW', 'sue'],
    ['a deploy user', 'USDEPLOY', 'sid'],
  ])('config in Slack: %s sees the keys with masked values, never a value', async (_who, user, userName) => {
    const reply = await flow('config conn-staging', user, userName);

    expect(reply.text).toContain('API_KEY:   ********');
    expect(reply.text).toContain('GREETING:  ********');
    expect(JSON.stringify(reply)).not.toContain('sk_live');
    expect(JSON.stringify(reply)).not.toContain('hello');
  });

  it('pipelines:connect: the admin may point the pipeline at another repository', async () => {
    const run = await t.cli(['pipelines:connect', 'conn', 'acme/shop']);

    expect(run.code, run.err).toBe(0);
    expect(run.out).toContain('Connected conn to github:acme/shop');
    expect(await repoOf()).toBe('github:acme/shop');
  });
});
