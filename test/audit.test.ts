import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalView, AuditRecordView, AuditView, ReleaseView } from '../src/api/types.ts';
import { readSettings } from '../src/config.ts';
import { parseCommand } from '../src/commands/grammar.ts';
import { parseSince } from '../src/engine/since.ts';
import { deliver, FakeGitHub, githubSignature, webhookExample } from './helpers/fake-github.ts';
import { FakeSlack, postToSlackEndpoint, slashCommand } from './helpers/fake-slack.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const SLACK_SECRET = 'slack-signing-secret-for-tests';
const GITHUB_SECRET = 'github-webhook-secret-for-tests';
const SECRET_VALUE = 'hunter2-s3cr3t-value-never-shown';

type Row = Pick<AuditRecordView, 'actor' | 'via' | 'action' | 'target' | 'outcome' | 'detail'>;
const row = (r: AuditRecordView): Row => ({
  actor: r.actor,
  via: r.via,
  action: r.action,
  target: r.target,
  outcome: r.outcome,
  detail: r.detail,
});

/**
 * The audit trail through the real server and its real fronts: a scripted
 * sequence from the CLI, signed Slack commands and a signed GitHub push, then
 * `audit` lists exactly that sequence — who, from where, what, on what, how it
 * ended — with refusals, and never a config value.
 */
describe('the audit trail', () => {
  let t: TestServer;
  let slack: FakeSlack;
  let github: FakeGitHub;
  let repo: GitRepo;
  let repoDir: string;
  let vicToken: string;
  let pusher: string;
  let n = 0;

  /** `/flow <text>` from a Slack user, signed as Slack signs it; resolves with the ephemeral answer if `answered`. */
  const flow = async (text: string, user: string, userName: string, answered = true) => {
    const id = `r${n++}`;
    const res = await postToSlackEndpoint(
      t.server.url,
      slashCommand({ text, user, userName, channel: 'CDEPLOYS', responseUrl: slack.responseUrl(id) }),
      { secret: SLACK_SECRET, contentType: 'application/x-www-form-urlencoded' },
    );
    expect(res.status).toBe(200);
    if (!answered) return null;
    return slack.waitFor(() => slack.responses.find((r) => r.id === id) as { text: string; blocks: unknown[] } | undefined, `answer ${id}`);
  };
  const records = () => t.server.database.dataSource.query('SELECT count(*)::int AS n FROM audit_records').then((r) => Number(r[0].n));
  const count = (table: string) =>
    t.server.database.dataSource.query(`SELECT count(*)::int AS n FROM ${table}`).then((r) => Number(r[0].n));
  const audit = (argv: string[] = [], token?: string) => t.json<AuditView>(['audit', 'shop', ...argv], token);
  async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
    for (let i = 0; i < 300; i++) {
      const value = await read();
      if (done(value)) return value;
      await sleep(100);
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  beforeAll(async () => {
    repoDir = await mkdtemp(path.join(os.tmpdir(), 'flowops-audit-'));
    repo = await GitRepo.create(path.join(repoDir, 'acme-shop'), webApp('v1'));
    github = await FakeGitHub.start('acme/shop', repo);
    slack = await FakeSlack.start();
    t = await startTestServer({
      env: {
        GITHUB_API_URL: github.url,
        GITHUB_TOKEN: 'ghp_test',
        GITHUB_WEBHOOK_SECRET: GITHUB_SECRET,
        SLACK_BOT_TOKEN: 'xoxb-test',
        SLACK_SIGNING_SECRET: SLACK_SECRET,
        SLACK_API_URL: slack.apiUrl,
        FLOW_SLACK_ADMINS: 'UADA',
      },
    });
  });
  afterAll(async () => {
    await slack.dump('audit');
    await t.close();
    await slack.close();
    await github.close();
    await rm(repoDir, { recursive: true, force: true });
  });

  it('lists a scripted sequence from the CLI, Slack and GitHub exactly, in order, with who, from where and how it ended', async () => {
    // The admin sets up, from the CLI.
    await t.cli(['pipelines:create', 'shop', '--repo', 'github:acme/shop']);
    await t.cli(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
    await t.cli(['apps:create', 'shop', '--pipeline', 'shop', '--stage', 'production']);
    await t.cli(['autodeploy:enable', 'shop', '--branch', 'main']);
    vicToken = (await t.json<{ token: string }>(['users:create', 'vic'])).token;
    await t.cli(['access:add', 'shop', 'vic', 'deploy']);
    // A Slack admin grants dee; dee locks staging.
    await flow('access:add shop <@UDEE|dee> operate', 'UADA', 'ada');
    expect(JSON.stringify(await flow('lock shop:staging --reason "migrating orders" --for 1h', 'UDEE', 'dee'))).toContain('Locked');
    const operations = await count('operations');
    const events = await count('events');
    const before = await records();

    // Refused: someone else's lock, then a missing permission. Each refusal writes its record and nothing else.
    const locked = await t.cli(['deploy', 'shop', 'to', 'staging'], vicToken);
    expect(locked.code).toBe(2);
    expect(locked.err).toContain('shop:staging is locked by dee');
    expect(await records()).toBe(before + 1);
    const denied = await t.cli(['access:add', 'shop', 'vic', 'manage'], vicToken);
    expect(denied.err).toContain('`access:add shop` needs manage on shop; you have deploy');
    expect([await count('operations'), await count('events'), await records()]).toEqual([operations, events, before + 2]);

    // dee unlocks in Slack; vic deploys, sets a secret, from the CLI.
    await flow('unlock shop:staging', 'UDEE', 'dee');
    expect((await t.cli(['deploy', 'shop', 'to', 'staging'], vicToken)).code).toBe(0);
    expect((await t.cli(['config:set', 'shop-staging', `SECRET_TOKEN=${SECRET_VALUE}`], vicToken)).code).toBe(0);
    // Production needs an approval: dee asks in Slack, vic approves from the CLI, and it ships as dee.
    await t.cli(['approvals:require', 'shop', 'production']);
    await flow('promote shop', 'UDEE', 'dee', false);
    const request = await until(
      () => t.json<{ requests: ApprovalView[] }>(['approvals', 'shop']),
      (a) => a.requests.length === 1,
      'the promotion request',
    );
    expect(request.requests[0]!.id).toBe(1);
    const approved = await t.cli(['approve', '1'], vicToken);
    expect(approved.code, approved.err).toBe(0);
    // dee asks to deploy to production; vic rejects it.
    await flow('deploy shop to production', 'UDEE', 'dee', false);
    await until(
      () => t.json<{ requests: ApprovalView[] }>(['approvals', 'shop']),
      (a) => a.requests.some((r) => r.id === 2),
      'the deploy request',
    );
    expect((await t.cli(['reject', '2', '--reason', 'not now'], vicToken)).code).toBe(0);
    // vic rolls staging back; dee's short lock expires (the job runner's sweep, called here rather than waited for).
    expect((await t.cli(['rollback', 'shop-staging'], vicToken)).code).toBe(0);
    await flow('lock shop-staging --for 1s', 'UDEE', 'dee');
    await sleep(1_100);
    await t.server.engine.expireLocks();
    // A signed push to main deploys to staging as its pusher, from GitHub.
    const sha = await repo.commit(webApp('v2'), 'Say v2');
    const payload = webhookExample('push', (e) => e.ref === 'refs/heads/master');
    Object.assign(payload, { ref: 'refs/heads/main', after: sha });
    (payload.repository as { full_name: string }).full_name = 'acme/shop';
    pusher = (payload.pusher as { name: string }).name;
    const body = JSON.stringify(payload);
    expect((await deliver(t.server.url, 'push', 'push-1', body, githubSignature(GITHUB_SECRET, body))).status).toBe(202);
    await until(
      () => t.json<ReleaseView[]>(['releases', 'shop-staging']),
      (r) => r[0]?.commit === sha && r[0].status === 'succeeded',
      'the auto-deploy',
    );
    // dee may not read the trail (operate is not manage), and is told so.
    const refused = await flow('audit shop', 'UDEE', 'dee');
    expect(refused!.text).toContain('`/flow audit shop` needs manage on shop; you have operate');

    const trail = await audit();

    const first = (await t.json<ReleaseView[]>(['releases', 'shop-staging'])).find((r) => r.version === 1)!.commit!.slice(0, 7);
    const promoted = /^Promote shop-staging v2 [0-9a-f]{7} to shop \(production\)/;
    expect(trail.records.map(row)).toEqual([
      { actor: 'admin', via: 'cli', action: 'pipelines:create', target: 'shop', outcome: 'done', detail: 'github:acme/shop' },
      { actor: 'admin', via: 'cli', action: 'apps:create', target: 'shop-staging', outcome: 'done', detail: 'staging' },
      { actor: 'admin', via: 'cli', action: 'apps:create', target: 'shop', outcome: 'done', detail: 'production' },
      { actor: 'admin', via: 'cli', action: 'autodeploy:enable', target: 'shop', outcome: 'done', detail: 'main → staging' },
      { actor: 'admin', via: 'cli', action: 'access:add', target: 'vic', outcome: 'done', detail: 'deploy' },
      { actor: 'ada', via: 'slack', action: 'access:add', target: 'dee', outcome: 'done', detail: 'operate' },
      {
        actor: 'dee',
        via: 'slack',
        action: 'lock',
        target: 'shop:staging',
        outcome: 'done',
        detail: expect.stringMatching(/^until \d{4}-\d\d-\d\d \d\d:\d\d UTC: migrating orders$/),
      },
      { actor: 'vic', via: 'cli', action: 'deploy', target: 'shop-staging', outcome: 'refused', detail: 'shop:staging is locked by dee' },
      { actor: 'vic', via: 'cli', action: 'access:add', target: 'shop', outcome: 'refused', detail: 'needs manage; has deploy' },
      { actor: 'dee', via: 'slack', action: 'unlock', target: 'shop:staging', outcome: 'done', detail: 'locked by dee' },
      {
        actor: 'vic',
        via: 'cli',
        action: 'deploy',
        target: 'shop-staging',
        outcome: 'done',
        detail: `Deploy ${first} to shop-staging (staging)`,
      },
      {
        actor: 'vic',
        via: 'cli',
        action: 'config:set',
        target: 'shop-staging',
        outcome: 'done',
        detail: 'Set SECRET_TOKEN config vars on shop-staging',
      },
      { actor: 'admin', via: 'cli', action: 'approvals:require', target: 'shop:production', outcome: 'done', detail: '1 approval' },
      { actor: 'dee', via: 'slack', action: 'promote', target: 'shop', outcome: 'approved', detail: expect.stringMatching(promoted) },
      { actor: 'vic', via: 'cli', action: 'approve', target: 'request 1', outcome: 'done', detail: '1 of 1' },
      { actor: 'dee', via: 'slack', action: 'promote', target: 'shop', outcome: 'done', detail: expect.stringMatching(promoted) },
      {
        actor: 'dee',
        via: 'slack',
        action: 'deploy',
        target: 'shop',
        outcome: 'rejected',
        detail: expect.stringMatching(/^Deploy [0-9a-f]{7} to shop \(production\) \(request 2\) — not now$/),
      },
      { actor: 'vic', via: 'cli', action: 'reject', target: 'request 2', outcome: 'done', detail: 'not now' },
      { actor: 'vic', via: 'cli', action: 'rollback', target: 'shop-staging', outcome: 'done', detail: 'Rollback shop-staging to v1' },
      { actor: 'dee', via: 'slack', action: 'lock', target: 'shop-staging', outcome: 'done', detail: expect.stringMatching(/^until /) },
      { actor: 'flowops', via: 'system', action: 'lock:expire', target: 'shop-staging', outcome: 'done', detail: 'locked by dee' },
      {
        actor: pusher,
        via: 'github',
        action: 'deploy',
        target: 'shop-staging',
        outcome: 'done',
        detail: `Deploy ${sha.slice(0, 7)} to shop-staging (staging)`,
      },
      { actor: 'dee', via: 'slack', action: 'audit', target: 'shop', outcome: 'refused', detail: 'needs manage; has operate' },
    ]);
    expect(trail.records.find((r) => r.action === 'approve')).toMatchObject({ request: null, operation: null });
    expect(trail.records.filter((r) => r.action === 'promote').map((r) => [r.request, r.operation])).toEqual([
      [1, null],
      [null, expect.any(Number)],
    ]);
    expect(trail).toMatchObject({ pipeline: 'shop', user: null, omitted: 0 });
  });

  it('never shows or stores a config value: keys only, in the CLI, the JSON, Slack and the table', async () => {
    const table = await t.cli(['audit', 'shop']);
    const json = await t.cli(['audit', 'shop', '--json']);
    const inSlack = await flow('audit shop', 'UADA', 'ada');
    const stored = await t.server.database.dataSource.query('SELECT * FROM audit_records');

    for (const text of [table.out, json.out, JSON.stringify(inSlack), JSON.stringify(stored)]) {
      expect(text).toContain('SECRET_TOKEN');
      expect(text).not.toContain(SECRET_VALUE);
      expect(text).not.toContain('hunter2');
    }
  });

  it('prints a table in the CLI: time, who, from, action, target, outcome, detail', async () => {
    const { code, out } = await t.cli(['audit', 'shop', '--user', 'vic']);

    expect(code).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^Time \(UTC\) +Who +From +Action +Target +Outcome +Detail$/);
    expect(lines[1]).toMatch(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}vic {2}cli {3}deploy +shop-staging +refused +shop:staging is locked by dee$/,
    );
    expect(lines).toHaveLength(8);
  });

  it('filters by --user (a name, or a mention in Slack) and by --since (a length of time or a date)', async () => {
    const all = await audit(['--since', '30m']);
    const cut = all.records.find((r) => r.action === 'approvals:require')!;

    const vic = await audit(['--user', 'vic']);
    const pushed = await audit(['--user', pusher]);
    const sinceDate = await audit(['--since', cut.at]);
    const longAgo = await audit(['--since', '2020-01-01']);
    const dee = (await flow('audit shop --user <@UDEE|dee> --since 2w', 'UADA', 'ada')) as { text: string; blocks: unknown[] };

    expect(vic.records.map((r) => `${r.action} ${r.outcome}`)).toEqual([
      'deploy refused',
      'access:add refused',
      'deploy done',
      'config:set done',
      'approve done',
      'reject done',
      'rollback done',
    ]);
    expect(vic.user).toBe('vic');
    expect(pushed.records.map((r) => `${r.via} ${r.action}`)).toEqual(['github deploy']);
    expect(sinceDate.records[0]).toEqual(cut);
    expect(sinceDate.records).toEqual(all.records.slice(all.records.indexOf(all.records.find((r) => r.id === cut.id)!)));
    expect(longAgo.records).toEqual(all.records);
    const slackText = JSON.stringify(dee.blocks);
    expect(slackText).toContain('Audit trail of shop since');
    expect(slackText).toContain('by dee');
    expect(slackText).toContain('<@UDEE> (slack) *promote* shop · :heavy_check_mark: approved');
    expect(slackText).not.toContain('(cli)');
  });

  it('refuses a bad --since or an unknown --user with a clear message, as a usage error', async () => {
    const bad = await t.cli(['audit', 'shop', '--since', 'yesterday']);
    const future = await t.cli(['audit', 'shop', '--since', '2999-01-01']);
    const nobody = await t.cli(['audit', 'shop', '--user', 'nobody']);

    expect(bad.code).toBe(2);
    expect(bad.err).toBe(
      'flowops: --since takes a length of time back from now (30m, 12h, 7d, 2w) or a date (2026-11-20, 2026-11-20T09:30, UTC unless it says +02:00); got "yesterday". Usage: audit <pipeline> [--since 7d] [--user <user>]\n',
    );
    expect(future.code).toBe(2);
    expect(future.err).toContain('--since 2999-01-01 is in the future');
    expect(nobody.code).toBe(2);
    expect(nobody.err).toContain('no user "nobody" here: --user takes a flowops user name');
    // Further back than a date can be: a usage error, not the database's.
    for (const since of ['999999w', '0001-01-01']) {
      const ancient = await t.cli(['audit', 'shop', '--since', since]);
      expect(ancient.code).toBe(2);
      expect(ancient.err).toContain(`--since ${since} is before 1970`);
    }
  });

  it('counts a refusal tried again on its record, and past 10 refusals of one person in an hour, any: no one floods the trail', async () => {
    const token = (await t.json<{ token: string }>(['users:create', 'mallory'])).token;
    const mine = async () => (await audit(['--user', 'mallory'])).records;

    // The same refusal 25 times: one record, counted.
    for (let i = 0; i < 25; i++) expect((await t.cli(['promote', 'shop'], token)).err).toContain('no pipeline "shop" that you can see');
    const [same, ...none] = await mine();
    expect(none).toEqual([]);
    expect(same).toMatchObject({ actor: 'mallory', action: 'promote', target: 'shop', outcome: 'refused', repeats: 25 });
    expect(Date.parse(same!.lastAt!)).toBeGreaterThan(Date.parse(same!.at));
    const { out } = await t.cli(['audit', 'shop', '--user', 'mallory']);
    expect(out).toMatch(/ promote +shop +refused ×25 \(last \d\d:\d\d:\d\d\) +needs deploy; has none$/m);
    const inSlack = JSON.stringify(await flow('audit shop --user mallory', 'UADA', 'ada'));
    expect(inSlack).toContain('refused ×25 (last ');

    // Refusals that differ (a script trying every command): at most 10 records an hour; the rest count on the newest.
    const tries = [
      ['deploy', 'shop', 'to', 'staging'],
      ['rollback', 'shop-staging'],
      ['config:set', 'shop-staging', 'K=v'],
      ['config:unset', 'shop-staging', 'K'],
      ['ps:scale', 'shop-staging', 'web=2'],
      ['ps:restart', 'shop-staging'],
      ['lock', 'shop:staging'],
      ['unlock', 'shop:staging'],
      ['access:add', 'shop', 'mallory', 'manage'],
      ['audit', 'shop'],
      ['releases', 'shop-staging'],
      ['pipelines:info', 'shop'],
      ['subscribe', 'shop', '--channel', 'CSPAM'],
    ];
    for (let round = 0; round < 2; round++) for (const argv of tries) expect((await t.cli(argv, token)).code).not.toBe(0);
    const records = await mine();
    expect(records.map((r) => r.action)).toEqual(['promote', ...tries.slice(0, 9).map((argv) => argv[0]), '(more)']);
    expect(records.at(-1)).toMatchObject({
      outcome: 'refused',
      repeats: 2 * (tries.length - 9),
      detail: 'more refusals within the hour, counted here: the last was subscribe shop',
    });
    expect(records.reduce((sum, r) => sum + r.repeats, 0)).toBe(25 + 2 * tries.length);
    // Someone else's refusals are their own records, and what is not a refusal is never merged.
    expect((await audit()).records.filter((r) => r.outcome !== 'refused').every((r) => r.repeats === 1)).toBe(true);
  });

  it.each([
    ['7d', 7 * 86_400_000],
    ['12h', 12 * 3_600_000],
    ['30m', 30 * 60_000],
    ['2w', 14 * 86_400_000],
  ])('reads --since %s as that long ago', (since, ms) => {
    const now = Date.parse('2026-11-23T09:00:00Z');

    expect(parseCommand(['audit', 'shop', '--since', since])).toEqual({ name: 'audit', pipeline: 'shop', since, user: undefined });
    expect(parseSince(since, now).getTime()).toBe(now - ms);
  });

  it('reads --since as a date in UTC, or in the zone it names', () => {
    const now = Date.parse('2026-11-23T09:00:00Z');

    expect(parseSince('2026-11-20', now).toISOString()).toBe('2026-11-20T00:00:00.000Z');
    expect(parseSince('2026-11-20T09:30', now).toISOString()).toBe('2026-11-20T09:30:00.000Z');
    expect(parseSince('2026-11-20T09:30+02:00', now).toISOString()).toBe('2026-11-20T07:30:00.000Z');
  });

  it.each(['0d', '7', '7y', '2026-02-30', '2026-11-20T25:00', '-7d'])('refuses --since %s', (since) => {
    expect(() => parseCommand(['audit', 'shop', '--since', since])).toThrow(/--since|Usage: audit/);
  });

  it('keeps a long answer within bounds: the newest 40 in Slack and 500 in the CLI, saying how many earlier ones are left out', async () => {
    const before = await records();
    await t.server.database.dataSource.query(
      `INSERT INTO audit_records (pipeline, actor, via, action, target, outcome, detail)
       SELECT 'shop', 'admin', 'cli', 'ps:scale', 'shop-staging', 'done', 'web=' || n FROM generate_series(1, 500) AS n`,
    );

    const inSlack = (await flow('audit shop', 'UADA', 'ada')) as { text: string; blocks: { type: string; text?: { text: string } }[] };
    const json = await audit();
    const { out } = await t.cli(['audit', 'shop']);

    const slackText = JSON.stringify(inSlack.blocks);
    expect(inSlack.blocks.length).toBeLessThanOrEqual(50);
    expect(inSlack.blocks.every((b) => (b.text?.text.length ?? 0) <= 3000)).toBe(true);
    expect(slackText).toContain(`${before + 500} records, times in UTC`);
    expect(slackText).toContain('web=500');
    expect(slackText).not.toContain('web=460');
    expect(slackText).toContain(`${before + 460} earlier records not shown`);
    expect(inSlack.text).toBe(`Audit trail of shop since ${json.since.slice(0, 16).replace('T', ' ')} UTC: ${before + 500} records`);
    expect(json.records).toHaveLength(500);
    expect(json.omitted).toBe(before);
    expect(json.records.at(-1)!.detail).toBe('web=500');
    expect(out.trimEnd().split('\n').at(-1)).toBe(
      `(${before} earlier records not shown: narrow with --since or --user (\`audit shop --since 1d\`))`,
    );
  });

  it('keeps records FLOW_AUDIT_RETENTION_DAYS days: the sweep deletes older ones only', async () => {
    const ids: string[] = (await t.server.database.dataSource.query('SELECT id FROM audit_records ORDER BY id')).map((r: { id: string }) =>
      String(r.id),
    );
    const [old1, old2, kept] = ids;
    await t.server.database.dataSource.query(`UPDATE audit_records SET created_at = now() - interval '366 days' WHERE id = ANY($1)`, [
      [old1, old2],
    ]);
    await t.server.database.dataSource.query(`UPDATE audit_records SET created_at = now() - interval '364 days' WHERE id = $1`, [kept]);

    const deleted = await t.server.engine.sweepAuditTrail();

    expect(deleted).toBe(2);
    const left: string[] = (await t.server.database.dataSource.query('SELECT id FROM audit_records ORDER BY id')).map((r: { id: string }) =>
      String(r.id),
    );
    expect(left).toEqual(ids.slice(2));
    // Releases and events are not the trail's: retention leaves them alone.
    expect((await t.json<ReleaseView[]>(['releases', 'shop-staging'])).length).toBe(4);
    expect(readSettings({}).auditRetentionDays).toBe(365);
    expect(readSettings({ FLOW_AUDIT_RETENTION_DAYS: '30' }).auditRetentionDays).toBe(30);
    expect(() => readSettings({ FLOW_AUDIT_RETENTION_DAYS: '0' })).toThrow(
      'FLOW_AUDIT_RETENTION_DAYS must be a whole number of days from 1 to 36500, got "0"; set FLOW_AUDIT_RETENTION_DAYS=365 or unset it',
    );
  });

  it('records what a feed asks for and stops, and gives a pipeline made again under an old name none of the old trail', async () => {
    expect((await t.cli(['pipelines:create', 'vault', '--repo', repo.dir])).code).toBe(0);
    expect((await t.cli(['subscribe', 'vault', 'deploy', '--nudges', '--digest', '--channel', 'CVAULT'])).code).toBe(0);
    expect((await t.cli(['unsubscribe', 'vault', '--nudges', '--channel', 'CVAULT'])).code).toBe(0);
    expect((await t.cli(['lock', 'vault:production', '--reason', 'rotating the database password'])).code).toBe(0);

    const first = await t.json<AuditView>(['audit', 'vault']);
    expect(first.records.map((r) => [r.action, r.target, r.detail])).toEqual([
      ['pipelines:create', 'vault', repo.dir],
      ['subscribe', 'CVAULT', 'deploy + nudges, digest'],
      ['unsubscribe', 'CVAULT', 'only nudges'],
      ['lock', 'vault:production', expect.stringContaining('rotating the database password')],
    ]);

    expect((await t.cli(['pipelines:destroy', 'vault', '--confirm', 'vault'])).code).toBe(0);
    expect((await t.cli(['pipelines:create', 'vault', '--repo', repo.dir])).code).toBe(0);
    const again = await t.json<AuditView>(['audit', 'vault']);
    expect(again.records.map((r) => r.action)).toEqual(['pipelines:create']);
    expect(JSON.stringify(again)).not.toContain('rotating the database password');
  });
});
