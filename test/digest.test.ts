import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isoWeek } from '../src/engine/nudge-kinds.ts';
import { FakeSlack, postToSlackEndpoint, slashCommand } from './helpers/fake-slack.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { pngSize } from './helpers/png.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { waitFor } from './helpers/wait.ts';
import { frontsEnv } from './helpers/fronts.ts';

const SECRET = 'slack-signing-secret-for-the-digest';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * The weekly digest (`subscribe <p> --digest`) through the real server and the
 * fake Slack API: the week's delivery metrics to the feeds that asked, once a
 * week from Monday 09:00 UTC, with the chart in its thread (files.uploadV2),
 * and never twice for a week, also after a restart.
 */
describe('the weekly digest', () => {
  let slack: FakeSlack;
  let t: TestServer;
  let repo: GitRepo;
  let n = 0;
  const env = () => ({
    ...frontsEnv({ slack: { fake: slack, signingSecret: SECRET, admins: 'UADMIN' } }),
    FLOW_NUDGE_INTERVAL: '3600',
  });
  const flow = async (text: string, channel: string) => {
    const id = `r${n++}`;
    await postToSlackEndpoint(
      t.server.url,
      slashCommand({ text, user: 'UADMIN', userName: 'ada', channel, responseUrl: slack.responseUrl(id) }),
      { secret: SECRET, contentType: 'application/x-www-form-urlencoded' },
    );
    return slack.waitFor(() => slack.responses.find((r) => r.id === id) as { text: string } | undefined, `the answer ${id}`);
  };
  const digests = () => slack.callsOf('chat.postMessage').filter((c) => String(c.args.text).startsWith('📊'));
  const nudge = async (at: number) => {
    const sent = await t.server.engine.runNudges(new Date(at));
    await t.server.slack!.idle();
    return sent;
  };
  // The Monday after today: the production release made below is in the 7 days before it.
  const monday = isoWeek(new Date()).monday.getTime() + 7 * DAY;
  const ranAt: number[] = [];

  beforeAll(async () => {
    slack = await FakeSlack.start();
    t = await startTestServer({ env: env() });
    repo = await GitRepo.create(path.join(t.dir, 'repo'), webApp('shop v1'));
    for (const argv of [
      ['pipelines:create', 'shop', '--repo', repo.dir],
      ['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging'],
      ['apps:create', 'shop', '--pipeline', 'shop', '--stage', 'production'],
      ['deploy', 'shop', 'to', 'staging'],
    ])
      expect((await t.cli(argv)).code).toBe(0);
    await waitFor('shop-staging v1', async () => (await t.cli(['releases', 'shop-staging'])).out.includes('succeeded'));
    expect((await t.cli(['promote', 'shop'])).code).toBe(0);
    await waitFor('shop v1', async () => (await t.cli(['releases', 'shop'])).out.includes('succeeded'));
  });
  afterAll(async () => {
    await t?.close();
    await slack?.close();
  });

  it('lets a feed ask for the digest alone, beside its events, and names it in subscriptions', async () => {
    expect((await flow('subscribe shop deploy', 'CPLAIN')).text).toContain('now follows *shop*: deploy');
    expect((await flow('subscribe shop --digest', 'CDIGEST')).text).toContain('+ digest');
    expect((await t.cli(['subscriptions', '--channel', 'CDIGEST'])).out).toContain('digest');
    const wrong = await t.cli(['subscribe', 'shop', '--digets', '--channel', 'CDIGEST']);
    expect(wrong.code).not.toBe(0);
  });

  it('posts the week’s delivery metrics to the feeds that asked, on Monday from 09:00 UTC, with the chart in its thread', async () => {
    expect(await nudge(monday + 9 * HOUR - 1000)).toBe(0);
    expect(digests()).toEqual([]);

    expect(await nudge(monday + 10 * HOUR)).toBe(1);
    ranAt.push(monday + 10 * HOUR);
    const [message, ...more] = digests();
    expect(more).toEqual([]);
    expect(message!.args.channel).toBe('CDIGEST');
    expect(message!.args.text).toBe(
      `📊 shop: weekly digest, ${isoWeek(new Date(monday)).week}: 1 production deployment in the last 7 days`,
    );
    const text = JSON.stringify(message!.args.blocks);
    expect(text).toContain('*Delivery metrics of shop* · production · last 7 days');
    expect(text).toContain('*Change failure rate*\\n0.0% (0 of 1');
    expect(text).toContain('/flow unsubscribe shop --digest');

    // The chart: a PNG of the declared size, completed into the digest's thread in the same channel.
    const complete = await slack.waitFor(() => slack.callsOf('files.completeUploadExternal')[0], 'the chart uploaded');
    expect(complete.args).toMatchObject({ channel_id: 'CDIGEST', thread_ts: message!.result!.ts });
    const upload = slack.uploads.get((complete.args.files as { id: string }[])[0]!.id)!;
    expect(pngSize(upload.bytes)).toEqual({ width: 1600, height: 800 });
    expect(slack.callsOf('chat.postMessage').filter((c) => c.args.channel === 'CPLAIN')).toEqual([]);
  });

  it('sends it once a week: not again that week, nor after a restart; the next week again', async () => {
    for (const at of [monday + 10 * HOUR + 1000, monday + DAY, monday + 6 * DAY + 23 * HOUR]) {
      expect(await nudge(at)).toBe(0);
      ranAt.push(at);
    }
    await t.close({ restart: true });
    t = await startTestServer({ restartOf: t, env: env() });
    for (const at of ranAt) expect(await nudge(at)).toBe(0);
    expect(digests()).toHaveLength(1);

    expect(await nudge(monday + 7 * DAY + 9 * HOUR)).toBe(1);
    const next = digests()[1]!;
    expect(next.args.text).toBe(
      `📊 shop: weekly digest, ${isoWeek(new Date(monday + 7 * DAY)).week}: 0 production deployments in the last 7 days`,
    );
    expect(JSON.stringify(next.args.blocks)).toContain('No production releases');
    expect(slack.unexpected).toEqual([]);
  });

  it('names ISO weeks as ISO 8601 does, across a year’s end', () => {
    expect(isoWeek(new Date('2026-11-23T10:00:00Z'))).toEqual({ week: '2026-W48', monday: new Date('2026-11-23T00:00:00Z') });
    expect(isoWeek(new Date('2026-11-29T23:59:59Z')).week).toBe('2026-W48');
    expect(isoWeek(new Date('2027-01-01T12:00:00Z'))).toEqual({ week: '2026-W53', monday: new Date('2026-12-28T00:00:00Z') });
    expect(isoWeek(new Date('2025-12-29T00:00:00Z')).week).toBe('2026-W01');
  });
});
