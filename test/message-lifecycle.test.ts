import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { operationMessage } from '../src/blocks/operation-message.ts';
import { sourceLinks } from '../src/blocks/links.ts';
import { Outbox } from '../src/engine/outbox.ts';
import { parseSourceRef } from '../src/source/source-ref.ts';
import { SlackNotifier } from '../src/slack/notifier.ts';
import { SlackApi } from '../src/slack/slack-api.ts';
import { FakeSlack, type SlackCall } from './helpers/fake-slack.ts';
import { createTestEngine, type TestEngine } from './helpers/test-engine.ts';

/*
 * Messages as the world moves on (newer releases, destroyed apps, refusals,
 * a flaky source, two processes), through a real engine and the real
 * notifier, talking to the fake Slack Web API on a local port.
 */

const PROCFILE = { Procfile: 'web: node index.js\nrelease: node migrate.js\n' };
const links = sourceLinks(null, null);

type Call = SlackCall;

/** Slack's Web API on a local port (test/helpers/fake-slack.ts), reached through flowops' own SlackApi. */
async function startSlack() {
  const fake = await FakeSlack.start();
  const api = new SlackApi('xoxb-test', fake.apiUrl);
  const calls = () => fake.calls.filter((c) => c.method === 'chat.postMessage' || c.method === 'chat.update');
  const tsOf = (c: Call) => String(c.method === 'chat.update' ? c.args.ts : c.result?.ts);
  /** The latest drawing of every message (top-level or reply) in a channel, by ts. */
  const drawings = (channel: string) => {
    const byTs = new Map<string, Call>();
    for (const c of calls()) if (c.args.channel === channel) byTs.set(tsOf(c), c);
    return [...byTs.values()];
  };
  return { fake, api, calls, drawings };
}

const actionIds = (call: Call) =>
  ((call.args.blocks as { type: string; elements?: { action_id: string }[] }[]).filter((b) => b.type === 'actions') ?? []).flatMap(
    (b) => b.elements?.map((e) => e.action_id) ?? [],
  );

const actionBlocksOf = (card: { blocks: unknown[] }) =>
  (card.blocks as { type: string; elements?: { action_id: string; text: { text: string } }[] }[])
    .filter((b) => b.type === 'actions')
    .flatMap((b) => b.elements ?? []);

let t: TestEngine;
let slack: Awaited<ReturnType<typeof startSlack>>;
let notifier: SlackNotifier;
beforeAll(async () => {
  t = await createTestEngine();
  slack = await startSlack();
  notifier = new SlackNotifier(t.engine, slack.api, new Outbox(t.database.dataSource, randomUUID()), null);
  notifier.start();
});
afterEach(async () => {
  t.platform.resetScript();
  await t.engine.idle();
});
afterAll(async () => {
  await notifier.stop();
  await t.close();
  await slack.fake.close();
});

async function pipeline(name: string, channel: string, production = false) {
  t.repo(`/repos/${name}`).commit(PROCFILE, 'First version');
  await t.engine.createPipeline(t.admin, { name, repo: `/repos/${name}` });
  await t.engine.createApp(t.admin, { name: `${name}-staging`, pipeline: name, stage: 'staging' });
  if (production) await t.engine.createApp(t.admin, { name: `${name}-prod`, pipeline: name, stage: 'production' });
  await t.engine.subscribe(t.admin, name, channel, []);
}

describe('what a message says after the world moved on', () => {
  it('a failed release does not claim a later release is "still serving"', async () => {
    await pipeline('srv', 'CSRV');
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'srv', stage: 'staging' })); // v1
    t.repo('/repos/srv').commit({ 'a.js': '1' }, 'Second');
    t.platform.script.releasePhase = () => 1;
    const failed = await t.settled(await t.engine.deploy(t.admin, { pipeline: 'srv', stage: 'staging' })); // v2 fails
    t.platform.resetScript();
    expect(operationMessage((await t.engine.operationReport(failed.id))!, links).text).toMatch(
      /v2 failed in the release phase — v1 still serving/,
    );

    t.repo('/repos/srv').commit({ 'a.js': '2' }, 'Third');
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'srv', stage: 'staging' })); // v3 succeeds

    const message = operationMessage((await t.engine.operationReport(failed.id))!, links);
    const shown = JSON.stringify(message);
    // v3 came after v2 failed: "v3 still serving" is false ("still"), and contradicts the context line "Superseded by v3".
    expect(shown).not.toMatch(/v3 still serving/);
  });

  it('destroying the production app retires the Rollback its release message still shows', async () => {
    await pipeline('gone', 'CGONE', true);
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'gone', stage: 'production' })); // v1
    t.repo('/repos/gone').commit({ 'a.js': '1' }, 'Second');
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'gone', stage: 'production' })); // v2, offers Roll back to v1
    await notifier.idle();
    const before = slack.drawings('CGONE').filter((c) => !c.args.thread_ts);
    expect(before.some((c) => actionIds(c).includes('rollback'))).toBe(true);

    await t.engine.destroyApp(t.admin, 'gone-prod', 'gone-prod');
    await t.engine.idle();
    await notifier.idle();

    const after = slack.drawings('CGONE').filter((c) => !c.args.thread_ts);
    // app.destroyed touches no subject and retires nothing: the message keeps a Rollback for an app that no longer exists.
    expect(after.filter((c) => actionIds(c).includes('rollback'))).toEqual([]);
  });

  it('a passing re-run retires the Re-run button of the failed run; the thread keeps the output and no button to go stale', async () => {
    await pipeline('rerun', 'CRERUN');
    await t.engine.setCi(t.admin, 'rerun', true);
    t.platform.script.tests = () => 1;
    const sha = await t.repo('/repos/rerun').resolve('main');
    await t.engine.pushed({ repo: parseSourceRef('/repos/rerun'), branch: 'main', sha, pusher: 'dana' });
    await t.engine.idle();
    await notifier.idle();
    const top = () => slack.drawings('CRERUN').find((c) => !c.args.thread_ts)!;
    const reply = () => slack.drawings('CRERUN').find((c) => c.args.thread_ts && /Tests failed/.test(String(c.args.text)));
    expect(actionIds(top())).toEqual(['ci_rerun']);
    expect(reply() && actionIds(reply()!)).toEqual([]);

    t.platform.script.tests = () => 0;
    const runs = await t.engine.testRuns(t.admin, 'rerun');
    await t.engine.rerunTests(t.admin, 'rerun', runs[0]!.number);
    await t.engine.idle();
    await notifier.idle();

    expect(String(top().args.text)).toMatch(/tests passed/);
    expect(actionIds(top())).toEqual([]);
  });
});

describe('a source that fails for a moment', () => {
  it('does not retire Promote for good when the source cannot list commits during one redraw', async () => {
    await pipeline('flaky', 'CFLAKY', true);
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'flaky', stage: 'staging' }));
    await t.settled(await t.engine.promote(t.admin, { pipeline: 'flaky' }));
    t.repo('/repos/flaky').commit({ 'a.js': '1' }, 'Second');
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'flaky', stage: 'staging' })); // staging v2, one commit ahead
    await notifier.idle();
    const staging = () => slack.drawings('CFLAKY').find((c) => !c.args.thread_ts && /flaky-staging v2 is live/.test(String(c.args.text)))!;
    expect(actionIds(staging())).toContain('promote');

    // GitHub rate-limits flowops while something else in the pipeline ends: every live message is redrawn.
    const source = t.repo('/repos/flaky');
    const log = source.log.bind(source);
    source.log = async () => {
      throw new Error('GitHub answered 403 while listing commits: rate limited');
    };
    await t.settled(await t.engine.setConfig(t.admin, 'flaky-prod', { A: '1' }));
    await notifier.idle();
    source.log = log;
    // GitHub answers again; more happens in the pipeline.
    await t.settled(await t.engine.setConfig(t.admin, 'flaky-prod', { A: '2' }));
    await notifier.idle();

    // Staging v2 is still one commit ahead of production: Promote still applies.
    expect((await t.engine.offers(t.admin, 'flaky'))['flaky-staging']!.promote).not.toBeNull();
    expect(actionIds(staging())).toContain('promote');
  });
});

describe('Re-release after a rollback', () => {
  it('calls a re-release a re-release, and offers no "Re-release" of the rollback it undid', async () => {
    await pipeline('rel', 'CREL', true);
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'rel', stage: 'production' })); // v1
    t.repo('/repos/rel').commit({ 'a.js': '1' }, 'Second');
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'rel', stage: 'production' })); // v2
    const back = await t.settled(await t.engine.rollback(t.admin, 'rel-prod')); // v3 = v1's slug
    const backMessage = operationMessage((await t.engine.operationReport(back.id))!, links);
    const rerelease = actionBlocksOf(backMessage).find((b) => b.action_id === 'rerelease')!;
    expect(rerelease.text.text).toBe('Re-release v2');

    // The click on Re-release v2, as src/slack/listeners/actions/rerelease.ts makes it.
    const again = await t.settled(await t.engine.rollback(t.admin, 'rel-prod', 2, { ifCurrent: 3, again: true })); // v4 = v2's slug
    const message = operationMessage((await t.engine.operationReport(again.id))!, links);

    // Not "Back from v3 to v2" with a "Re-release v3" that would put v1 back: a re-release says so, and offers Rollback.
    expect(JSON.stringify(message.blocks)).not.toMatch(/Back from v3/);
    expect(actionBlocksOf(message).map((b) => b.text.text)).not.toContain('Re-release v3');
  });
});

describe('one Slack refusal must not stall every other message', () => {
  it('messages in channels Slack refuses (archived) do not starve a new message elsewhere', async () => {
    await pipeline('stall', 'CLIVE');
    const outbox = new Outbox(t.database.dataSource, randomUUID());
    // 100 messages of earlier operations in channels that have since been archived: Slack answers is_archived, forever.
    const op = await t.settled(await t.engine.deploy(t.admin, { pipeline: 'stall', stage: 'staging' }));
    await notifier.idle();
    for (let i = 0; i < 100; i++) {
      slack.fake.archived.add(`CDEAD${i}`);
      await outbox.addStatusMessage(`op:${op.id}`, 'stall', `CDEAD${i}`);
    }
    await outbox.touch([`op:${op.id}`]);
    const posted = slack.drawings('CLIVE').length;

    t.repo('/repos/stall').commit({ 'a.js': '1' }, 'Second');
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'stall', stage: 'staging' }));
    await notifier.idle();

    const shown = slack.drawings('CLIVE').length;
    // Later tests share the database: the dead channels go.
    await t.database.dataSource.query("DELETE FROM status_messages WHERE channel LIKE 'CDEAD%'");
    expect(shown).toBeGreaterThan(posted);
  }, 60_000);
});

describe('a feed line Slack refuses for good', () => {
  it('neither repeats the line in the other feeds nor stops every later message', async () => {
    await pipeline('refused', 'CFEEDOK');
    await t.engine.subscribe(t.admin, 'refused', 'CFEEDDEAD', []);
    slack.fake.archived.add('CFEEDDEAD');
    await t.engine.recordRefusal({
      type: 'github.status_refused',
      pipeline: 'refused',
      app: null,
      message: 'GitHub refused the commit status of 1a2b3c4: 422',
      data: {},
    });
    await notifier.idle();
    await new Promise((r) => setTimeout(r, 6000)); // one sweep (SWEEP_MS) later
    t.repo('/repos/refused').commit({ 'a.js': '1' }, 'Second');
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'refused', stage: 'staging' }));
    await notifier.idle();

    const lines = slack.calls().filter((c) => c.args.channel === 'CFEEDOK' && /refused the commit status/.test(String(c.args.text)));
    const deploy = slack.calls().filter((c) => c.args.channel === 'CFEEDOK' && /refused-staging/.test(String(c.args.text)));
    slack.fake.archived.delete('CFEEDDEAD');
    await t.engine.unsubscribe(t.admin, 'refused', 'CFEEDDEAD');
    await notifier.idle();
    // A feed that refuses a line does not make the others see it again, nor stop later messages.
    expect(lines).toHaveLength(1);
    expect(deploy.length).toBeGreaterThan(0);
  }, 60_000);
});

describe('two flowops processes (runners) share one database', () => {
  it('posts each message once, though both processes run the Slack notifier', async () => {
    // A Slack that takes 200 ms per call, as a real one may.
    const slow = await startSlack();
    slow.fake.delayMs = 200;
    const other = new SlackNotifier(t.engine, slow.api, new Outbox(t.database.dataSource, randomUUID()), null);
    const mine = new SlackNotifier(t.engine, slow.api, new Outbox(t.database.dataSource, randomUUID()), null);
    await notifier.stop(); // only the two below run now
    other.start();
    mine.start();
    try {
      await pipeline('twice', 'CTWICE');
      t.platform.script.releasePhase = () => 1;
      await t.settled(await t.engine.deploy(t.admin, { pipeline: 'twice', stage: 'staging' }));
      await Promise.all([other.idle(), mine.idle()]);
      await new Promise((r) => setTimeout(r, 1000));
      await Promise.all([other.idle(), mine.idle()]);

      const posts = slow.calls().filter((c) => c.method === 'chat.postMessage' && c.args.channel === 'CTWICE');
      // Only the process holding the outbox lease posts.
      expect(posts.filter((c) => !c.args.thread_ts)).toHaveLength(1);
      expect(posts.filter((c) => c.args.thread_ts)).toHaveLength(1);
    } finally {
      await other.stop();
      await mine.stop();
      await slow.fake.close();
    }
  }, 60_000);
});
