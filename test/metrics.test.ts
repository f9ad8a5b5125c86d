import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetricsView } from '../src/api/types.ts';
import {
  changeFailureRateBand,
  deliveryMetrics,
  deploymentFrequencyBand,
  leadTimeBand,
  timeToRestoreBand,
  type ProductionRelease,
} from '../src/engine/delivery-metrics.ts';
import { FakeSlack, postToSlackEndpoint, slashCommand } from './helpers/fake-slack.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { pngSize } from './helpers/png.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const HOUR = 3600;
const DAY = 86400;

describe('the four DORA keys, computed from plain records', () => {
  const now = Date.parse('2026-03-31T12:00:00Z');
  const at = (daysAgo: number, plusHours = 0) => now - daysAgo * DAY * 1000 + plusHours * HOUR * 1000;
  const release = (version: number, kind: ProductionRelease['kind'], when: number, status: 'succeeded' | 'failed' = 'succeeded') => ({
    app: 'shop',
    version,
    kind,
    status,
    commit: `c${version}`,
    at: when,
  });

  it('counts a failed try, a config change and a rollback as a user of flowops reads them', () => {
    const releases: ProductionRelease[] = [
      release(1, 'promote', at(40)), // before the window: only what production ran when it opened
      release(2, 'promote', at(20)), // rolled back, though a failed try (v3) and a config change (v4) came between
      release(3, 'deploy', at(19), 'failed'),
      release(4, 'config', at(18, 1)),
      release(5, 'rollback', at(18, 2)),
      release(6, 'promote', at(10)), // followed by a direct deploy 30 hours later: not a fix forward (more than a day)
      release(7, 'deploy', at(10, 30)),
    ];
    const oldestCommitAt = new Map([
      ['shop v2', at(21)],
      ['shop v6', at(10, -6)],
      ['shop v7', at(10, 29)],
    ]);

    const m = deliveryMetrics({ pipeline: 'shop', days: 30, now, releases, hasStaging: true, oldestCommitAt });

    // Deployments in the window: v2, v3 (failed), v6, v7; live: v2, v6, v7 → 3 / 30 days = 0.1 a day, 0.7 a week: medium.
    expect(m.deploymentFrequency).toEqual({ deployments: 3, perDay: 0.1, perWeek: 0.7000000000000001, band: 'medium' });
    // Lead times: v2 1 day (86400), v6 6 hours (21600), v7 1 hour (3600); sorted 3600, 21600, 86400:
    // median 21600; p90 at rank 2·0.9 = 1.8 → 21600 + 0.8·(86400 − 21600) = 73440.
    expect(m.leadTime).toEqual({ medianSeconds: 21600, p90Seconds: 73440, measured: 3, band: 'elite' });
    // Failures: v2 (rolled back by v5), v3 (failed release) → 2 of 4 = 50%.
    expect(m.changeFailureRate).toEqual({
      failures: 2,
      attempts: 4,
      rate: 0.5,
      band: 'low',
      failedRelease: 1,
      rolledBack: 1,
      fixedForward: 0,
    });
    // Restores: v2 at 20d ago → the config change v4 at 18d ago + 1h (a good release): 2 days 1 hour = 176400;
    // v3 at 19d ago → v4 as well: 1 day 1 hour = 90000. Median of 90000 and 176400 = 133200.
    expect(m.timeToRestore).toEqual({ medianSeconds: 133200, restored: 2, unrestored: 0, band: 'medium' });
    expect(m.deployments.map((d) => [d.version, d.failure, d.restoredSeconds])).toEqual([
      [2, 'rolled_back', 176400],
      [3, 'failed_release', 90000],
      [6, null, null],
      [7, null, null],
    ]);
  });

  it('calls a direct deploy within a day a fix forward only where a staging stage exists to go around', () => {
    const releases: ProductionRelease[] = [release(1, 'promote', at(5)), release(2, 'deploy', at(5, 23))];
    const input = { pipeline: 'shop', days: 30, now, releases, oldestCommitAt: new Map<string, number>() };

    const staged = deliveryMetrics({ ...input, hasStaging: true });
    const unstaged = deliveryMetrics({ ...input, hasStaging: false });

    // v1 fixed forward by v2, 23 hours later (82800 s); v2 restores it.
    expect(staged.deployments.map((d) => [d.version, d.failure, d.restoredSeconds])).toEqual([
      [1, 'fixed_forward', 82800],
      [2, null, null],
    ]);
    expect(staged.changeFailureRate).toMatchObject({ failures: 1, attempts: 2, rate: 0.5, fixedForward: 1 });
    expect(unstaged.changeFailureRate).toMatchObject({ failures: 0, rate: 0, band: 'elite' });
    expect(unstaged.leadTime).toBeNull();
  });

  it('has no numbers, and no NaN, when nothing was deployed in the window', () => {
    const m = deliveryMetrics({
      pipeline: 'shop',
      days: 7,
      now,
      releases: [release(1, 'promote', at(8))],
      hasStaging: true,
      oldestCommitAt: new Map(),
    });

    expect(m.deploymentFrequency).toEqual({ deployments: 0, perDay: 0, perWeek: 0, band: 'low' });
    expect([m.leadTime, m.changeFailureRate, m.timeToRestore]).toEqual([null, null, null]);
    expect(m.weeks.every((w) => w.deployments === 0 && w.leadTimeMedianSeconds === null)).toBe(true);
    expect(JSON.stringify(m)).not.toContain('NaN');
  });

  it.each([
    ['deployment frequency', 1, 'elite', deploymentFrequencyBand],
    ['deployment frequency', 0.999, 'high', deploymentFrequencyBand],
    ['deployment frequency', 1 / 7, 'high', deploymentFrequencyBand],
    ['deployment frequency', 1 / 7 - 0.001, 'medium', deploymentFrequencyBand],
    ['deployment frequency', 1 / 30, 'medium', deploymentFrequencyBand],
    ['deployment frequency', 1 / 30 - 0.001, 'low', deploymentFrequencyBand],
    ['lead time', DAY - 1, 'elite', leadTimeBand],
    ['lead time', DAY, 'high', leadTimeBand],
    ['lead time', 7 * DAY, 'high', leadTimeBand],
    ['lead time', 7 * DAY + 1, 'medium', leadTimeBand],
    ['lead time', 30 * DAY, 'medium', leadTimeBand],
    ['lead time', 30 * DAY + 1, 'low', leadTimeBand],
    ['change failure rate', 0.05, 'elite', changeFailureRateBand],
    ['change failure rate', 0.0501, 'high', changeFailureRateBand],
    ['change failure rate', 0.1, 'high', changeFailureRateBand],
    ['change failure rate', 0.15, 'medium', changeFailureRateBand],
    ['change failure rate', 0.1501, 'low', changeFailureRateBand],
    ['time to restore', HOUR - 1, 'elite', timeToRestoreBand],
    ['time to restore', HOUR, 'high', timeToRestoreBand],
    ['time to restore', DAY - 1, 'high', timeToRestoreBand],
    ['time to restore', DAY, 'medium', timeToRestoreBand],
    ['time to restore', 7 * DAY, 'medium', timeToRestoreBand],
    ['time to restore', 7 * DAY + 1, 'low', timeToRestoreBand],
  ] as const)('rates %s of %d as %s', (_key, value, expected, band) => {
    expect(band(value)).toBe(expected);
  });
});

describe('metrics of a real history, through the CLI and Slack', () => {
  const SECRET = 'slack-signing-secret-for-metrics';
  let slack: FakeSlack;
  let t: TestServer;
  let repo: GitRepo;
  let n = 0;
  // Whole seconds, so ISO dates round-trip exactly.
  const now = Math.floor(Date.now() / 1000) * 1000;
  const iso = (daysAgo: number, plusHours = 0) => new Date(now - daysAgo * DAY * 1000 + plusHours * HOUR * 1000).toISOString();
  const flow = (text: string, user = 'UDEE', userName = 'dee', channel = 'CDEPLOY') =>
    postToSlackEndpoint(t.server.url, slashCommand({ text, user, userName, channel, responseUrl: slack.responseUrl(`r${n++}`) }), {
      secret: SECRET,
      contentType: 'application/x-www-form-urlencoded',
    });
  const ok = async (argv: string[]) => {
    const run = await t.cli(argv);
    expect(run.code, `${argv.join(' ')}: ${run.err}${run.out}`).toBe(0);
    return run;
  };
  /** A commit whose author date is chosen: the commit time lead time starts from. */
  const commitAt = async (files: Record<string, string>, message: string, date: string) => {
    await repo.commit(files, message);
    await repo.git('commit', '--amend', '-q', '--no-edit', `--date=${date}`);
    return (await repo.git('rev-parse', 'HEAD')).trim();
  };
  /** When the production release went live (or failed), as flowops records it: moved to the history's chosen time. */
  const liveAt = (version: number, when: string) =>
    t.server.database.dataSource.query(
      `UPDATE releases SET updated_at = $1, created_at = $1 WHERE version = $2 AND app_id = (SELECT id FROM apps WHERE name = 'shop')`,
      [when, version],
    );

  beforeAll(async () => {
    slack = await FakeSlack.start();
    t = await startTestServer({
      env: { SLACK_BOT_TOKEN: 'xoxb-test', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: slack.apiUrl },
    });
    repo = await GitRepo.create(path.join(t.dir, 'repo'), webApp('metrics v0'));
    await repo.git('commit', '--amend', '-q', '--no-edit', `--date=${iso(22)}`);
    await ok(['pipelines:create', 'shop', '--repo', repo.dir]);
    await ok(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
    await ok(['apps:create', 'shop', '--pipeline', 'shop', '--stage', 'production']);
    await ok(['pipelines:create', 'ledger', '--repo', repo.dir]);

    // The history, made by flowops itself; then each production release moved to its time.
    const c1 = await commitAt(webApp('metrics v1'), 'Show the catalogue', iso(21));
    await ok(['deploy', `shop/${c1}`, 'to', 'staging']);
    await ok(['promote', 'shop']); // shop v1
    const c2 = await commitAt(webApp('metrics v2'), 'New checkout', iso(15));
    await ok(['deploy', `shop/${c2}`, 'to', 'staging']);
    await ok(['promote', 'shop']); // shop v2
    await ok(['rollback', 'shop']); // shop v3: back to v1
    const c3 = await commitAt(webApp('metrics v3', 'process.exit(1)'), 'Migrate the orders table', iso(10));
    expect((await t.cli(['deploy', `shop/${c3}`, 'to', 'production'])).code).not.toBe(0); // shop v4: its release phase fails
    const c4 = await commitAt(webApp('metrics v4'), 'Fix the migration', iso(6));
    await ok(['deploy', `shop/${c4}`, 'to', 'staging']);
    await ok(['promote', 'shop']); // shop v5
    const c5 = await commitAt(webApp('metrics v5'), 'Hotfix: the checkout total', iso(5, 1));
    await ok(['deploy', `shop/${c5}`, 'to', 'production']); // shop v6, around staging
    for (const [version, when] of [
      [1, iso(20)],
      [2, iso(14)],
      [3, iso(14, 0.5)],
      [4, iso(9)],
      [5, iso(5)],
      [6, iso(5, 3)],
    ] as const)
      await liveAt(version, when);

    // dee (Slack) may view shop; vic holds nothing.
    await flow('pipelines');
    await flow('pipelines', 'UVIC', 'vic');
    await t.server.slack!.idle();
    await ok(['access:add', 'shop', 'dee', 'view']);
  }, 240_000);
  afterAll(async () => {
    await t?.close();
    await slack?.close();
  });

  it('gives the numbers computed by hand from the scripted history (metrics --json)', async () => {
    const m = await t.json<MetricsView>(['metrics', 'shop']);

    // Deployments (deploys and promotions) in the last 30 days: v1 promote, v2 promote, v4 deploy (failed), v5 promote,
    // v6 deploy; the rollback v3 is not one. Live: v1, v2, v5, v6 → 4 / 30 a day, 28 / 30 a week: medium (< 1 a week).
    expect(m.deploymentFrequency).toEqual({ deployments: 4, perDay: 4 / 30, perWeek: (4 / 30) * 7, band: 'medium' });
    // Lead time from the oldest commit a release brought to production:
    //   v1: the first commit (22 days ago) → 20 days ago            = 2 days   = 172800
    //   v2: c2 (15 days ago) → 14 days ago                           = 1 day    =  86400
    //   v5: production ran c1 (v3 rolled back to it; v4 failed), so v5 brought c2, c3, c4: from c2 (15 days ago) → 5 days ago
    //                                                                 = 10 days  = 864000
    //   v6: c5 (5 days ago + 1h) → 5 days ago + 3h                   = 2 hours  =   7200
    // Sorted 7200, 86400, 172800, 864000: median (86400 + 172800) / 2 = 129600 (high);
    // p90 at rank 3·0.9 = 2.7 → 172800 + 0.7·(864000 − 172800) = 656640.
    expect(m.leadTime).toEqual({ medianSeconds: 129600, p90Seconds: 656640, measured: 4, band: 'high' });
    // Failures: v2 rolled back (v3), v4's release phase failed, v5 fixed forward by v6 (a direct deploy 3 hours later,
    // around staging) → 3 of 5 attempts = 60%: low.
    expect(m.changeFailureRate).toEqual({
      failures: 3,
      attempts: 5,
      rate: 0.6,
      band: 'low',
      failedRelease: 1,
      rolledBack: 1,
      fixedForward: 1,
    });
    // Restores: v2 → v3 (the rollback) 30 minutes = 1800; v4 → v6 (v5 is itself a failure) 4 days 3 hours = 356400;
    // v5 → v6 3 hours = 10800. Sorted 1800, 10800, 356400: median 10800 (high: under a day).
    expect(m.timeToRestore).toEqual({ medianSeconds: 10800, restored: 3, unrestored: 0, band: 'high' });
    expect(m.deployments.map((d) => [d.version, d.kind, d.status, d.leadTimeSeconds, d.failure, d.restoredSeconds])).toEqual([
      [1, 'promote', 'succeeded', 172800, null, null],
      [2, 'promote', 'succeeded', 86400, 'rolled_back', 1800],
      [4, 'deploy', 'failed', null, 'failed_release', 356400],
      [5, 'promote', 'succeeded', 864000, 'fixed_forward', 10800],
      [6, 'deploy', 'succeeded', 7200, null, null],
    ]);
    // Weeks from Monday 00:00 UTC: each live deployment in its week, with its lead time as the week's median.
    const monday = (ms: number) => {
      const d = new Date(ms);
      return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - ((d.getUTCDay() + 6) % 7))).toISOString().slice(0, 10);
    };
    const expected = new Map<string, number[]>();
    for (const [when, lead] of [
      [iso(20), 172800],
      [iso(14), 86400],
      [iso(5), 864000],
      [iso(5, 3), 7200],
    ] as const)
      expected.set(monday(Date.parse(when)), [...(expected.get(monday(Date.parse(when))) ?? []), lead]);
    for (const week of m.weeks) {
      const leads = (expected.get(week.start) ?? []).sort((a, b) => a - b);
      expect(week.deployments, week.start).toBe(leads.length);
      const median = leads.length ? (leads[Math.floor((leads.length - 1) / 2)]! + leads[Math.ceil((leads.length - 1) / 2)]!) / 2 : null;
      expect(week.leadTimeMedianSeconds, week.start).toBe(median);
    }
    expect(m.weeks[0]!.start).toBe(monday(now - 30 * DAY * 1000));
  });

  it('prints the table with each key, its value and its band, and narrows to --days', async () => {
    const table = await t.cli(['metrics', 'shop']);
    const week = await t.json<MetricsView>(['metrics', 'shop', '--days', '7']);

    expect(table.code).toBe(0);
    expect(table.out).toMatch(/^=== shop: production, last 30 days/);
    expect(table.out).toContain('Deployment frequency   0.13 per day, 0.93 per week (4 deployments)');
    expect(table.out).toMatch(/Lead time for changes +median 1d 12h, p90 7d 14h \(4 deployments\) +high/);
    expect(table.out).toMatch(/Change failure rate +60\.0% \(3 of 5: 1 rolled back, 1 failed release, 1 fixed forward\) +low/);
    expect(table.out).toMatch(/Time to restore +median 3h 00m \(3 restored, 0 not yet\) +high/);
    // The last 7 days hold v5 and v6 only: v5 fixed forward (3h to v6).
    expect(week.deployments.map((d) => d.version)).toEqual([5, 6]);
    expect(week.changeFailureRate).toMatchObject({ failures: 1, attempts: 2, rate: 0.5 });
  });

  it('says so when there is nothing to measure, and refuses a bad window or a pipeline the person cannot see', async () => {
    const empty = await t.cli(['metrics', 'ledger']);
    const zero = await t.cli(['metrics', 'shop', '--days', '0']);
    const words = await t.cli(['metrics', 'shop', '--days', 'month']);
    const unknown = await t.cli(['metrics', 'nope']);

    expect(empty.code).toBe(0);
    expect(empty.out.trim()).toBe('No production releases (deploys or promotions) of ledger in the last 30 days.');
    expect(zero.code).not.toBe(0);
    expect(zero.err).toContain('--days is a whole number of days from 1 to 365');
    expect(words.err).toContain('--days takes a number of days, like --days 30; got "month"');
    expect(unknown.err).toContain('no pipeline "nope" that you can see');
  });

  it('/flow metrics posts the summary in a feed of the pipeline and uploads the chart there through files.uploadV2', async () => {
    await ok(['subscribe', 'shop', '--channel', 'CDEPLOY']);
    const before = slack.responses.length;

    expect((await flow('metrics shop')).status).toBe(200);
    const complete = await slack.waitFor(() => slack.callsOf('files.completeUploadExternal')[0], 'the upload completed');
    await t.server.slack!.idle();

    const summary = slack.responses.slice(before).find((r) => r.response_type === 'in_channel')!;
    const text = JSON.stringify(summary.blocks);
    expect(text).toContain('*Delivery metrics of shop* · production · last 30 days');
    expect(text).toContain('60.0% (3 of 5: 1 rolled back, 1 failed release, 1 fixed forward)');
    expect(text).toContain(':red_circle: low');
    const [asked] = slack.callsOf('files.getUploadURLExternal');
    const files = complete.args.files as { id: string; title: string }[];
    expect(complete.args.channel_id).toBe('CDEPLOY');
    expect(files).toHaveLength(1);
    expect(complete.result).toMatchObject({ ok: true });
    const upload = slack.uploads.get(files[0]!.id)!;
    expect(upload.filename).toMatch(/^shop-metrics-\d{4}-\d{2}-\d{2}\.png$/);
    expect(upload.bytes.length).toBe(Number(asked!.args.length));
    expect(pngSize(upload.bytes)).toEqual({ width: 1600, height: 800 });
    expect(slack.unexpected).toEqual([]);
  });

  it('/flow metrics in a channel that does not follow the pipeline shows the numbers to the person alone, unless a manager asks', async () => {
    const before = slack.responses.length;
    const uploads = slack.callsOf('files.getUploadURLExternal').length;

    // dee holds view on shop; #random is not one of its feeds: a private pipeline's numbers stay with dee.
    await flow('metrics shop', 'UDEE', 'dee', 'CRANDOM');
    const [mine] = await slack.waitFor(() => (slack.responses.length > before ? slack.responses.slice(before) : undefined), 'the answer');
    expect(mine!.response_type).toBe('ephemeral');
    const text = JSON.stringify(mine!.blocks);
    expect(text).toContain('*Delivery metrics of shop* · production · last 30 days');
    expect(text).toContain('Only you see this: this channel is not a feed of shop.');
    await t.server.slack!.idle();
    expect(slack.callsOf('files.getUploadURLExternal')).toHaveLength(uploads);

    // A manager of shop decides who sees it: posted, with the chart, in #random.
    await ok(['access:add', 'shop', 'dee', 'manage']);
    await flow('metrics shop', 'UDEE', 'dee', 'CRANDOM');
    await slack.waitFor(
      () => slack.callsOf('files.completeUploadExternal').find((c) => c.args.channel_id === 'CRANDOM'),
      'the chart in #random',
    );
    expect(slack.responses.slice(before + 1).some((r) => r.response_type === 'in_channel')).toBe(true);
    await ok(['access:add', 'shop', 'dee', 'view']);
  });

  it('/flow metrics answers only the person when nothing was deployed, when the pipeline is unknown or not theirs', async () => {
    const before = slack.responses.length;
    const uploads = slack.callsOf('files.getUploadURLExternal').length;

    await flow('metrics shop', 'UVIC', 'vic', 'CRANDOM'); // vic holds nothing on shop, and #random is no feed of it
    await flow('metrics nope');
    await ok(['access:add', 'ledger', 'dee', 'view']);
    await flow('metrics ledger');
    await t.server.slack!.idle();
    await slack.waitFor(() => slack.responses.length >= before + 3, 'three answers');

    const answers = slack.responses.slice(before);
    expect(answers.every((a) => a.response_type === 'ephemeral')).toBe(true);
    const texts = answers.map((a) => JSON.stringify(a.blocks));
    expect(texts.some((x) => x.includes('no pipeline \\"shop\\" that you can see'))).toBe(true);
    expect(texts.some((x) => x.includes('no pipeline \\"nope\\" that you can see'))).toBe(true);
    expect(texts.some((x) => x.includes('No production releases (deploys or promotions) of ledger in the last 30 days.'))).toBe(true);
    expect(slack.callsOf('files.getUploadURLExternal')).toHaveLength(uploads);
  });

  it('/flow metrics tells the person to invite flowops when Slack refuses the chart in that channel', async () => {
    slack.outside.add('CDEPLOY');
    const before = slack.responses.length;

    await flow('metrics shop');
    await slack.waitFor(() => slack.responses.length >= before + 2, 'the summary and the note');
    await t.server.slack!.idle();
    slack.outside.delete('CDEPLOY');

    const [summary, note] = slack.responses.slice(before);
    expect(summary!.response_type).toBe('in_channel');
    expect(note!.response_type).toBe('ephemeral');
    expect(JSON.stringify(note!.blocks)).toContain('Invite flowops to this channel (`/invite @flowops`)');
  });
});
