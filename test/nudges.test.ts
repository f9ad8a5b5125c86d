import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditView, LockView, ProcessesView } from '../src/api/types.ts';
import { buttonClick, FakeSlack, postToSlackEndpoint, slashCommand, type SlackCall } from './helpers/fake-slack.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { waitFor } from './helpers/wait.ts';
import { frontsEnv } from './helpers/fronts.ts';

const SECRET = 'slack-signing-secret-for-nudges';
const form = 'application/x-www-form-urlencoded';
const MINUTE = 60_000;
const DAY = 86_400_000;
type Block = { type: string; text?: { text: string }; elements?: { action_id?: string; value?: string; text?: { text: string } }[] };

/** A web app and a worker that dies as soon as it starts: a crash loop. */
const crashingApp = {
  ...webApp('ledger v1'),
  'worker.js': "console.log('connecting to the queue <!channel>'); console.error('queue unreachable'); process.exit(3);\n",
  Procfile: 'web: node index.js\nworker: node worker.js\n',
};

/**
 * Nudges through the real server and the fake Slack API: each kind is sent
 * once when due (the scheduler is run for a given time, as its timer runs it
 * for now), not again that day, not before it is due, only to feeds that asked
 * for nudges or to the people concerned, and not again after a restart.
 */
describe('nudges', () => {
  let slack: FakeSlack;
  let t: TestServer;
  let repo: GitRepo;
  let ledger: GitRepo;
  let n = 0;
  const env = () => ({
    ...frontsEnv({ slack: { fake: slack, signingSecret: SECRET, admins: 'UADMIN' } }),
    // The tests run the scheduler themselves, for the times they choose.
    FLOW_NUDGE_INTERVAL: '3600',
  });
  const post = (body: string) => postToSlackEndpoint(t.server.url, body, { secret: SECRET, contentType: form });
  const flow = async (text: string, user: string, userName: string, channel = 'CFEED') => {
    const id = `r${n++}`;
    await post(slashCommand({ text, user, userName, channel, responseUrl: slack.responseUrl(id) }));
    return answer(id);
  };
  const click = async (actionId: string, value: string, user: string, userName: string, channel: string) => {
    const id = `r${n++}`;
    await post(buttonClick({ actionId, value, user, userName, channel, responseUrl: slack.responseUrl(id) }));
    return answer(id);
  };
  const answer = (id: string) =>
    slack.waitFor(() => slack.responses.find((r) => r.id === id) as { text: string; blocks?: Block[] } | undefined, `the answer ${id}`);
  const posts = (channel: string) => slack.callsOf('chat.postMessage').filter((c) => c.args.channel === channel && !c.args.thread_ts);
  const nudgePosts = () =>
    slack.callsOf('chat.postMessage').filter((c) => /^(⏳|🔒 Your lock|🙋 Request \d+ has waited|🚨)/.test(String(c.args.text)));
  const buttons = (c: SlackCall) => (c.args.blocks as Block[]).filter((b) => b.type === 'actions').flatMap((b) => b.elements ?? []);
  const blockText = (c: SlackCall) => JSON.stringify(c.args.blocks);
  /** Runs the scheduler for `at`, then lets Slack's notifier deliver what it recorded. */
  const nudge = async (at: number) => {
    const sent = await t.server.engine.runNudges(new Date(at));
    await t.server.slack!.idle();
    return sent;
  };
  const nudgeRows = async () => Number((await t.server.database.dataSource.query('SELECT count(*)::int AS n FROM nudges'))[0].n);
  /** The moments each test ran the scheduler for, to run it again after the restart. */
  const ranAt: number[] = [];

  beforeAll(async () => {
    slack = await FakeSlack.start();
    t = await startTestServer({ env: env() });
    repo = await GitRepo.create(path.join(t.dir, 'repo'), webApp('shop v1'));
    ledger = await GitRepo.create(path.join(t.dir, 'ledger'), crashingApp);
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
    await repo.git('config', 'user.name', 'Erin & Co');
    await repo.commit({ 'message.json': JSON.stringify({ text: 'shop v2' }) }, 'Faster checkout <!here>');
    await repo.git('config', 'user.name', 'Dana Dev');
    await repo.commit({ 'README.md': 'shop\n' }, 'Document the shop');
    expect((await t.cli(['deploy', 'shop', 'to', 'staging'])).code).toBe(0);
    await waitFor('shop-staging v2', async () => (await t.cli(['releases', 'shop-staging'])).out.includes('v2'));
    await waitFor('shop-staging v2 live', async () => /^v2 .*succeeded/m.test((await t.cli(['releases', 'shop-staging'])).out));
    // People say who they are once in Slack, then get access.
    await flow('pipelines', 'UADMIN', 'ada');
    for (const [user, name, permission] of [
      ['UDEE', 'dee', 'operate'],
      ['UERIN', 'erin', 'deploy'],
      ['UVIC', 'vic', 'view'],
      ['UZED', 'zed', 'operate'],
    ] as const)
      await flow(`access:add shop <@${user}|${name}> ${permission}`, 'UADMIN', 'ada');
  });
  afterAll(async () => {
    await t?.close();
    await slack?.close();
  });

  it('lets a feed opt in with --nudges, and leaves the feeds there were and their events as they are', async () => {
    await flow('subscribe shop deploy', 'UADMIN', 'ada', 'CPLAIN');

    const optedIn = await flow('subscribe shop --nudges', 'UADMIN', 'ada', 'CFEED');

    expect(optedIn.text).toContain('now follows *shop*: deploy, promote, rollback, config, ci, pulls + nudges');
    expect((await t.cli(['subscriptions', '--channel', 'CPLAIN'])).out.trim()).toBe('shop: deploy');
    // Asking for nudges only keeps a feed's events.
    expect((await t.cli(['subscribe', 'shop', '--nudges', '--channel', 'CPLAIN'])).out.trim()).toBe(
      'CPLAIN is now a feed of shop (deploy + nudges)',
    );
    expect((await t.cli(['unsubscribe', 'shop', '--nudges', '--channel', 'CPLAIN'])).out.trim()).toBe(
      'CPLAIN stays a feed of shop, without nudges',
    );
    const again = await t.cli(['unsubscribe', 'shop', '--nudges', '--channel', 'CPLAIN']);
    expect(again.code).not.toBe(0);
    expect(again.err).toContain("this channel's feed of shop does not get nudges; nothing changed");
    expect((await t.cli(['subscriptions', '--channel', 'CPLAIN'])).out.trim()).toBe('shop: deploy');
  });

  it('tells the feeds that asked once a day when staging has been ahead of production for more than 2 days, with the commits and Promote', async () => {
    const now = Date.now();

    expect(await nudge(now + DAY)).toBe(0);
    expect(nudgePosts()).toEqual([]);

    expect(await nudge(now + 3 * DAY)).toBe(1);
    expect(await nudge(now + 3 * DAY + 1000)).toBe(0);
    ranAt.push(now + 3 * DAY + 1000);

    const sent = nudgePosts();
    expect(sent.map((c) => c.args.channel)).toEqual(['CFEED']);
    const message = sent[0]!;
    expect(message.args.text).toMatch(/^⏳ shop: staging has been ahead of production for 3 days \(shop-staging v2, [0-9a-f]{7}\)$/);
    const text = blockText(message);
    expect(text).toContain('runs 2 commits production does not:');
    // Commits with their authors, as flowops recorded them; outside text escaped.
    expect(text).toContain('Document the shop — Dana Dev');
    expect(text).toContain('Faster checkout &lt;!here&gt; — Erin &amp; Co');
    expect(text).not.toContain('<!here>');
    expect(buttons(message)).toEqual([
      expect.objectContaining({ action_id: 'promote', value: JSON.stringify({ p: 'shop', a: 'shop-staging', v: 2 }) }),
    ]);
    expect(posts('CPLAIN').filter((c) => String(c.args.text).startsWith('⏳'))).toEqual([]);
    expect(slack.unexpected).toEqual([]);
  });

  it("tells a lock's holder 15 minutes before it expires, by direct message, with Extend 1h (theirs only) and Unlock", async () => {
    await flow('lock shop-staging --for 20m --reason "QA on staging"', 'UDEE', 'dee');
    const now = Date.now();

    expect(await nudge(now)).toBe(0);
    expect(await nudge(now + 6 * MINUTE)).toBe(1);
    expect(await nudge(now + 7 * MINUTE)).toBe(0);
    ranAt.push(now + 7 * MINUTE);

    const dm = nudgePosts().filter((c) => String(c.args.text).startsWith('🔒'));
    expect(dm.map((c) => c.args.channel)).toEqual(['UDEE']);
    expect(dm[0]!.args.text).toMatch(/^🔒 Your lock on shop-staging expires at (?:\w{3} \d{1,2} \w{3} )?\d\d:\d\d UTC$/);
    expect(blockText(dm[0]!)).toContain('QA on staging');
    const [extend, unlock] = buttons(dm[0]!);
    expect(extend).toMatchObject({ action_id: 'extend', text: { text: 'Extend 1h' } });
    expect(unlock).toMatchObject({ action_id: 'unlock' });
    const before = (await t.json<LockView[]>(['locks', 'shop']))[0]!;

    // A forged Extend: from someone who may only view, and from someone with operate who does not hold it.
    expect((await click('extend', extend!.value!, 'UVIC', 'vic', 'DVIC')).text).toContain(
      '`/flow lock shop-staging` needs operate on shop; you have view.',
    );
    expect((await click('extend', extend!.value!, 'UZED', 'zed', 'DZED')).text).toContain(
      'only dee, who holds the lock on shop-staging, can extend it; nothing changed',
    );
    expect((await t.json<LockView[]>(['locks', 'shop']))[0]!.until).toBe(before.until);

    const extended = await click('extend', extend!.value!, 'UDEE', 'dee', 'DDEE');

    const after = (await t.json<LockView[]>(['locks', 'shop']))[0]!;
    expect(Date.parse(after.until) - Date.parse(before.until)).toBe(3_600_000);
    // Past midnight UTC the time carries its day ("until Tue 24 Nov 00:12 UTC").
    expect(extended.text).toMatch(new RegExp(`shop-staging stays locked until (\\w{3} \\d{1,2} \\w{3} )?${after.until.slice(11, 16)} UTC`));
    // The audit trail tells the extension from a new lock; the forged clicks changed nothing there either.
    const trail = await t.json<AuditView>(['audit', 'shop']);
    expect(trail.records.filter((r) => r.action === 'lock:extend').map((r) => [r.actor, r.via, r.target, r.outcome])).toEqual([
      ['dee', 'slack', 'shop-staging', 'done'],
    ]);
    // Once a day per lock: extended, it is not told again within 24 hours (a rolling day, so midnight changes nothing).
    expect(await nudge(Date.parse(after.until) - 5 * MINUTE)).toBe(0);
  });

  it('reminds the people who may approve a request waiting for more than an hour, by direct message, and not its requester', async () => {
    await t.cli(['unlock', 'shop-staging']);
    expect((await t.cli(['approvals:require', 'shop', 'production'])).code).toBe(0);
    await post(
      slashCommand({ text: 'promote shop', user: 'UDEE', userName: 'dee', channel: 'CFEED', responseUrl: slack.responseUrl('promote') }),
    );
    await waitFor('the request', async () => (await t.cli(['approvals', 'shop'])).out.includes('dee'));
    const now = Date.now();

    expect(await nudge(now + 30 * MINUTE)).toBe(0);
    expect(await nudge(now + 61 * MINUTE)).toBe(1);
    expect(await nudge(now + 62 * MINUTE)).toBe(0);
    ranAt.push(now + 62 * MINUTE);

    const dms = nudgePosts().filter((c) => String(c.args.text).startsWith('🙋'));
    // Admins and those with deploy or more; not dee (who asked), not vic (view).
    expect(dms.map((c) => c.args.channel).sort()).toEqual(['UADMIN', 'UERIN', 'UZED']);
    expect(dms[0]!.args.text).toMatch(
      /^🙋 Request \d+ has waited 1h 0[01]m for your approval: Promote shop-staging v2 [0-9a-f]{7} to shop/,
    );
    expect(buttons(dms[0]!).map((b) => b.action_id)).toEqual(['approve', 'reject']);
  });

  it('tells the feeds that asked when a dyno keeps crashing, with its last lines and Restart', async () => {
    for (const argv of [
      ['pipelines:create', 'ledger', '--repo', ledger.dir],
      ['apps:create', 'ledger-staging', '--pipeline', 'ledger', '--stage', 'staging'],
      ['subscribe', 'ledger', '--nudges', '--channel', 'CFEED'],
      ['subscribe', 'ledger', '--channel', 'CPLAIN'],
      ['deploy', 'ledger', 'to', 'staging'],
    ])
      expect((await t.cli(argv)).code).toBe(0);
    const crashed = async () => {
      const ps = await t.json<ProcessesView>(['ps', 'ledger-staging']);
      return ps.dynos.find((d) => d.name === 'worker.1')?.state === 'crashed';
    };
    await waitFor('worker.1 crashed', crashed, 60_000);
    // Past its first crash (restarted at once), it waits 10 s and more in the crashed state.
    await sleep(1500);
    await waitFor('worker.1 crashed again', crashed);
    const now = Date.now();

    expect(await nudge(now + MINUTE)).toBe(0);
    expect(await nudge(now + 6 * MINUTE)).toBe(1);
    expect(await nudge(now + 6 * MINUTE + 1000)).toBe(0);
    ranAt.push(now + 6 * MINUTE + 1000);

    const sent = nudgePosts().filter((c) => String(c.args.text).startsWith('🚨'));
    expect(sent.map((c) => c.args.channel)).toEqual(['CFEED']);
    expect(sent[0]!.args.text).toBe('🚨 ledger: ledger-staging worker.1 keeps crashing (exit 3)');
    expect(blockText(sent[0]!)).toMatch(/app\[worker\.1\]: connecting to the queue &lt;!channel&gt;/);
    expect(buttons(sent[0]!)).toEqual([
      expect.objectContaining({ action_id: 'restart', value: JSON.stringify({ a: 'ledger-staging', d: 'worker.1' }) }),
    ]);
    await t.cli(['ps:scale', 'ledger-staging', 'worker=0']);
  });

  it('sends nothing again after a restart on the same database', async () => {
    const rows = await nudgeRows();
    const posted = nudgePosts().length;
    expect(rows).toBe(4); // staging, lock, approval (one nudge to three people), crash

    await t.close({ restart: true });
    t = await startTestServer({ restartOf: t, env: env() });
    for (const at of ranAt) expect(await nudge(at)).toBe(0);

    expect(await nudgeRows()).toBe(rows);
    expect(nudgePosts().length).toBe(posted);
    expect(slack.unexpected).toEqual([]);
  });

  it.runIf(process.env.DATABASE_URL)('sends a nudge once when two flowops processes sharing Postgres find it due at once', async () => {
    await flow('lock shop:production --for 10m', 'UDEE', 'dee');
    const other = await startTestServer({ sharedDatabaseUrl: t.databaseUrl, env: env() });
    try {
      const before = nudgePosts().filter((c) => c.args.channel === 'UDEE').length;
      const at = Date.now();

      const sent = await Promise.all([t.server.engine.runNudges(new Date(at)), other.server.engine.runNudges(new Date(at))]);
      await Promise.all([t.server.slack!.idle(), other.server.slack!.idle()]);

      expect(sent[0] + sent[1]).toBe(1);
      const dms = nudgePosts().filter((c) => c.args.channel === 'UDEE');
      expect(dms.length).toBe(before + 1);
      expect(dms.at(-1)!.args.text).toMatch(/^🔒 Your lock on shop:production expires at/);
    } finally {
      await other.close();
    }
  });
});
