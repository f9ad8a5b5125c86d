import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReleaseView } from '../src/engine/views.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

/** Releases, config, pipelines, access and the counts of what a command can add: what a refused command must leave alone. */
async function snapshot(t: TestServer) {
  const [counts] = (await t.server.database.dataSource.query(
    `SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM operations) AS operations, (SELECT count(*) FROM users) AS users,
            (SELECT count(*) FROM builds) AS builds, (SELECT count(*) FROM subscriptions) AS subscriptions,
            (SELECT json_agg(json_build_object('name', name, 'repo', repo, 'branch', branch, 'autodeploy', autodeploy, 'reviewApps', review_apps) ORDER BY name) FROM pipelines) AS pipelines`,
  )) as [Record<string, unknown>];
  return {
    counts,
    staging: await t.json<ReleaseView[]>(['releases', 'shop-staging']),
    production: await t.json<ReleaseView[]>(['releases', 'shop']),
    stagingConfig: await t.json(['config', 'shop-staging']),
    productionConfig: await t.json(['config', 'shop']),
    apps: await t.json(['pipelines:info', 'shop']),
    access: await t.json(['access', 'shop']),
  };
}

describe('bad input gets a clear refusal and changes nothing', () => {
  let t: TestServer;
  let repo: GitRepo;

  beforeAll(async () => {
    t = await startTestServer();
    repo = await GitRepo.create(path.join(t.dir, 'repo'), webApp('input v1'));
    await t.cli(['pipelines:create', 'shop', '--repo', repo.dir]);
    await t.cli(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
    await t.cli(['apps:create', 'shop', '--pipeline', 'shop', '--stage', 'production']);
    await t.cli(['deploy', 'shop', 'to', 'staging']);
    await t.cli(['config:set', 'shop', 'GREETING=hello']);
    await t.cli(['users:create', 'bob']);
  });
  afterAll(() => t.close());

  const long = (n: number) => 'a'.repeat(n);

  const refusals: [string, string[], string][] = [
    // NUL and other control characters, in every kind of word a command takes
    ['NUL in a pipeline name', ['pipelines:info', 'sh\0op'], '"sh\\u0000op" contains a control character (U+0000 at character 3)'],
    ['NUL in a new pipeline name', ['pipelines:create', 'ot\0her', '--repo', '/tmp/x'], 'contains a control character (U+0000'],
    ['NUL in an app name', ['releases', 'shop\0'], '"shop\\u0000" contains a control character (U+0000 at character 5)'],
    [
      'NUL in a new app name',
      ['apps:create', 'shop\0qa', '--pipeline', 'shop', '--stage', 'staging'],
      'contains a control character (U+0000',
    ],
    ['NUL in a user name', ['users:create', 'mal\0lory'], 'contains a control character (U+0000'],
    ['NUL in a granted user', ['access:add', 'shop', 'bob\0', 'deploy'], 'contains a control character (U+0000'],
    ['NUL in a permission', ['access:add', 'shop', 'bob', 'deploy\0'], 'contains a control character (U+0000'],
    ['NUL in a ref', ['deploy', 'shop/ma\0in', 'to', 'staging'], 'contains a control character (U+0000'],
    ['NUL in a stage word', ['deploy', 'shop', 'to', 'stag\0ing'], 'contains a control character (U+0000'],
    ['NUL in a --stage option', ['apps:move', 'shop', '--stage', 'prod\0'], 'contains a control character (U+0000'],
    ['NUL in a --branch option', ['autodeploy:enable', 'shop', '--branch', 'ma\0in'], 'contains a control character (U+0000'],
    ['NUL in a --repo option', ['pipelines:create', 'other', '--repo', `${'/tmp'}/re\0po`], 'contains a control character (U+0000'],
    ['NUL in a --confirm option', ['apps:destroy', 'shop', '--confirm', 'shop\0'], 'contains a control character (U+0000'],
    ['NUL in a --channel option', ['subscribe', 'shop', '--channel', 'C1\0'], 'contains a control character (U+0000'],
    ['NUL in a feed event', ['subscribe', 'shop', 'deploy\0', '--channel', 'CFEED'], 'contains a control character (U+0000'],
    ['NUL in a GitHub repository', ['pipelines:connect', 'shop', 'acme/sh\0op'], 'contains a control character (U+0000'],
    ['NUL in a config key', ['config:set', 'shop', 'A\0B=1'], 'config var name "A\\u0000B" contains a control character (U+0000'],
    [
      'NUL in a config value',
      ['config:set', 'shop', 'TOKEN=s3cr\0t'],
      'the value of TOKEN contains a control character (U+0000 at character 5)',
    ],
    [
      'ESC in a config value',
      ['config:set', 'shop', 'COLOR=\x1b[31mred'],
      'the value of COLOR contains a control character (U+001B at character 1)',
    ],
    ['DEL in a config value', ['config:set', 'shop', 'X=a\x7f'], 'the value of X contains a control character (U+007F'],
    ['a C1 control in a config value', ['config:set', 'shop', 'X=a\u009b2J'], 'the value of X contains a control character (U+009B'],
    ['NUL in a key to unset', ['config:unset', 'shop', 'GREETING\0'], 'contains a control character (U+0000'],
    ['NUL in the command word', ['config\0', 'shop'], 'contains a control character (U+0000'],
    [
      'a newline in an app name',
      ['apps:create', 'shop\nqa', '--pipeline', 'shop', '--stage', 'staging'],
      'contains a control character (U+000A',
    ],
    ['a tab in a branch', ['autodeploy:enable', 'shop', '--branch', 'ma\tin'], 'contains a control character (U+0009'],
    ['an escape sequence in a ref', ['deploy', 'shop/\x1b[2Jmain', 'to', 'staging'], 'contains a control character (U+001B'],
    // Unicode that is not what it looks like
    [
      'a right-to-left override in a repository',
      ['pipelines:create', 'other', '--repo', '/tmp/\u202Egpj.exe'],
      'contains an invisible formatting character (U+202E at character 6)',
    ],
    [
      'a zero-width space in a user name',
      ['access:add', 'shop', 'b\u200Bob', 'view'],
      'contains an invisible formatting character (U+200B',
    ],
    ['a lone surrogate in an app name', ['releases', 'shop\uD800'], 'is not valid Unicode (a lone surrogate'],
    [
      'a lone surrogate in a config value',
      ['config:set', 'shop', 'EMOJI=\uDE00'],
      'the value of EMOJI is not valid Unicode (a lone surrogate',
    ],
    // Very long words
    ['a 2000-character pipeline name', ['pipelines:info', long(2000)], 'is too long (2000 characters; at most 1024)'],
    ['a 2000-character config key', ['config:set', 'shop', `${long(2000)}=1`], 'is too long (2000 characters; at most 1024)'],
    [
      'a 300-character branch',
      ['autodeploy:enable', 'shop', '--branch', long(300)],
      'is not a branch, tag or commit name: use letters, digits',
    ],
    // Numbers the database cannot hold, and negative ones
    [
      'a version past 2^31',
      ['releases:output', 'shop', 'v99999999999999999999'],
      '"v99999999999999999999" is not a release version: versions run from v1 to v2147483647',
    ],
    ['a version of exactly 2^31', ['rollback', 'shop', 'v2147483648'], 'versions run from v1 to v2147483647'],
    ['a version in exponent notation', ['rollback', 'shop', 'v1e30'], '"v1e30" is not a release version (like v5)'],
    ['version zero', ['rollback', 'shop', 'v0'], 'versions run from v1 to v2147483647'],
    ['a negative version', ['rollback', 'shop', 'v-1'], '"v-1" is not a release version (like v5)'],
    ['a negative number as an option', ['rollback', 'shop', '-5'], "Unknown option '-5'"],
    [
      'a test run past 2^31',
      ['ci:info', 'shop', '99999999999'],
      '"99999999999" is not a test run number: numbers run from 1 to 2147483647',
    ],
    ['a test run to re-run past 2^31', ['ci:rerun', 'shop', '2147483648'], 'numbers run from 1 to 2147483647'],
    ['a test run to cancel past 2^31', ['ci:cancel', 'shop', '#99999999999'], 'numbers run from 1 to 2147483647'],
    [
      'a pull request of exactly 2^31',
      ['reviewapps:create', 'shop', '--pr', '2147483648'],
      '"2147483648" is not a pull request number: numbers run from 1 to 2147483647',
    ],
    ['a pull request of zero', ['reviewapps:destroy', 'shop', '--pr', '0'], 'numbers run from 1 to 2147483647'],
    ['a negative pull request', ['reviewapps:create', 'shop', '--pr=-3'], '"-3" is not a pull request number (like 12)'],
    [
      "stale days past Heroku's 30",
      ['reviewapps:enable', 'shop', '--stale-days', '99999999999999999999'],
      '--stale-days must be a whole number of days from 1 to 30',
    ],
    // KEY=value edge cases
    ['a pair with no key', ['config:set', 'shop', '=value'], 'a KEY=value has no key before "="'],
    ['a key given twice', ['config:set', 'shop', 'A=1', 'A=2'], 'A is given twice; set each key once'],
    ['a key to unset given twice', ['config:unset', 'shop', 'GREETING', 'GREETING'], 'GREETING is given twice; name each key once'],
    ['an app to promote to named twice', ['promote', 'shop', 'to', 'shop,shop'], 'shop is named twice after "to"'],
    ['unsetting a key every object inherits', ['config:unset', 'shop', 'toString'], 'toString is not set on shop'],
    ['unsetting __proto__', ['config:unset', 'shop', '__proto__'], '__proto__ is not set on shop'],
    // Anything git could read as an option
    [
      'a ref starting with "-"',
      ['deploy', 'shop/--output=/tmp/flowops-pwned', 'to', 'staging'],
      '"--output=/tmp/flowops-pwned" is not a branch, tag or commit name: a name cannot start with "-"',
    ],
    ['a branch starting with "-"', ['autodeploy:enable', 'shop', '--branch=--orphan'], 'a name cannot start with "-"'],
    ['a pipeline branch starting with "-"', ['pipelines:create', 'other', '--repo', '/tmp', '--branch=-b'], 'a name cannot start with "-"'],
    [
      'a password in a repository URL',
      ['pipelines:create', 'other', '--repo', 'https://bob:hunter2@git.example.com/shop.git'],
      '--repo must not carry a password (user:password@)',
    ],
    [
      'a repository starting with "-"',
      ['pipelines:create', 'other', '--repo=--upload-pack=touch /tmp/flowops-pwned;@x:y'],
      '--repo cannot start with "-" (git would read it as an option)',
    ],
    // Channels are Slack channel ids
    [
      'a channel that is not a channel id',
      ['subscribe', 'shop', '--channel', 'general'],
      '"general" is not a Slack channel id (like C0123ABCD)',
    ],
  ];

  it.each(refusals)('refuses %s in the CLI', async (_what, argv, message) => {
    const before = await snapshot(t);

    const run = await t.cli(argv);

    expect(run.code, run.out).toBe(2);
    expect(run.err).toContain(message);
    expect(run.err.trim().split('\n')).toHaveLength(1);
    expect(run.out).toBe('');
    expect(await snapshot(t)).toEqual(before);
    expect(existsSync('/tmp/flowops-pwned')).toBe(false);
  });

  it.each(refusals)('answers %s sent to the API with a 4xx', async (_what, argv, message) => {
    const before = await snapshot(t);

    const res = await fetch(`${t.server.url}/api/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${t.server.admin.token}` },
      body: JSON.stringify({ argv }),
    });

    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(message);
    expect(await snapshot(t)).toEqual(before);
  });

  it('sets a multi-line value (a PEM key) with tabs and CRLF, and a value holding "="', async () => {
    const pem = '-----BEGIN PRIVATE KEY-----\r\nMIIEvQIBADANBg\tkqhkiG9w0BAQEFAASC\r\n-----END PRIVATE KEY-----\n';

    const run = await t.cli([
      'config:set',
      'shop-staging',
      `TLS_KEY=${pem}`,
      'DATABASE_URL=postgres://u@h/db?sslmode=require&x==y',
      'EMPTY=',
    ]);

    expect(run.code, run.err).toBe(0);
    expect(await t.json(['config', 'shop-staging'])).toEqual({
      TLS_KEY: pem,
      DATABASE_URL: 'postgres://u@h/db?sslmode=require&x==y',
      EMPTY: '',
    });
  });

  it('keeps __proto__ an ordinary key', async () => {
    const run = await t.cli(['config:set', 'shop-staging', '__proto__=x']);

    expect(run.code, run.err).toBe(0);
    expect(Object.entries(await t.json<Record<string, string>>(['config', 'shop-staging']))).toContainEqual(['__proto__', 'x']);
    expect((await t.cli(['config:unset', 'shop-staging', '__proto__'])).code).toBe(0);
  });

  it('refuses config past 32 KB per app, naming the limit and what the app uses, and changes nothing', async () => {
    await t.cli(['config:set', 'shop', `BIG=${'x'.repeat(20 * 1024 - 3)}`]);
    const before = await snapshot(t);

    const run = await t.cli(['config:set', 'shop', `MORE=${'y'.repeat(12 * 1024)}`]);

    expect(run.code).toBe(2);
    expect(run.err).toContain(
      'config vars are limited to 32 KB per app (32,768 bytes, keys and values together); shop uses 20,493 bytes and this would make it 32,785 bytes. Nothing was changed',
    );
    expect(run.err).not.toContain('yyyy');
    expect(await snapshot(t)).toEqual(before);
  });

  it('accepts config up to exactly 32 KB', async () => {
    const config = await t.json<Record<string, string>>(['config', 'shop']);
    const used = Object.entries(config).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v), 0);

    const run = await t.cli(['config:set', 'shop', `LAST=${'z'.repeat(32 * 1024 - used - 'LAST'.length)}`]);

    expect(run.code, run.err).toBe(0);
  });

  it('counts bytes, not characters, as Heroku does', async () => {
    // 4 bytes per character in UTF-8: 9000 characters are 36,000 bytes.
    const run = await t.cli(['config:set', 'shop-staging', `EMOJI=${'😀'.repeat(9000)}`]);

    expect(run.code).toBe(2);
    expect(run.err).toContain('config vars are limited to 32 KB per app');
  });
});

describe('output from a repository is stored whatever bytes it holds', () => {
  let t: TestServer;

  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.close());

  it('releases an app whose release phase prints NUL, and shows the output with U+FFFD in its place', async () => {
    const repo = await GitRepo.create(path.join(t.dir, 'repo'), webApp('nul v1', 'process.stdout.write("before\\0after\\n")'));
    await t.cli(['pipelines:create', 'nul', '--repo', repo.dir]);
    await t.cli(['apps:create', 'nul-staging', '--pipeline', 'nul', '--stage', 'staging']);

    const run = await t.cli(['deploy', 'nul', 'to', 'staging']);

    expect(run.code, run.out + run.err).toBe(0);
    expect((await t.json<ReleaseView[]>(['releases', 'nul-staging']))[0]).toMatchObject({ version: 1, status: 'succeeded', current: true });
    expect((await t.cli(['releases:output', 'nul-staging'])).out).toContain('before\uFFFDafter');
  });
});
