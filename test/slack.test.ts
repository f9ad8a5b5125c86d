import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReleaseView } from '../src/engine/views.ts';
import { buttonClick, FakeSlack, postToSlackEndpoint, slashCommand, viewSubmission } from './helpers/fake-slack.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const SECRET = 'slack-signing-secret-for-tests';
type Blocks = {
  type: string;
  text?: { text: string };
  elements?: { action_id?: string; value?: string; text?: unknown }[];
  accessory?: { action_id: string };
}[];

describe('the Slack app over HTTP, signed as Slack signs', () => {
  let slack: FakeSlack;
  let t: TestServer;
  let n = 0;
  let repo: GitRepo;
  const form = 'application/x-www-form-urlencoded';

  /** Types `/flow <text>` in a channel as a user; returns Slack's HTTP answer and the response_url id. */
  async function flow(text: string, user = 'UADMIN', userName = 'ada', channel = 'CDEPLOY') {
    const id = `r${n++}`;
    const res = await postToSlackEndpoint(
      t.server.url,
      slashCommand({ text, user, userName, channel, responseUrl: slack.responseUrl(id) }),
      { secret: SECRET, contentType: form },
    );
    return { res, id };
  }
  async function click(actionId: string, value: string, user: string, userName: string, channel = 'CDEPLOY', messageTs?: string) {
    const id = `r${n++}`;
    const res = await postToSlackEndpoint(
      t.server.url,
      buttonClick({ actionId, value, user, userName, channel, responseUrl: slack.responseUrl(id), ...(messageTs ? { messageTs } : {}) }),
      { secret: SECRET, contentType: form },
    );
    return { res, id };
  }
  type Dialog = {
    callback_id: string;
    private_metadata: string;
    submit: { text: string };
    blocks: {
      type: string;
      block_id?: string;
      text?: { text: string };
      elements?: { text: string }[];
      element?: { options: { value: string }[]; initial_options?: { value: string }[] };
    }[];
  };
  /** Clicks Promote and waits for the dialog it opens (views.open with the click's trigger). */
  async function openPromoteDialog(value: string, user: string, userName: string, channel = 'CDEPLOY'): Promise<Dialog> {
    const opened = slack.callsOf('views.open').length;
    await click('promote', value, user, userName, channel);
    const call = await slack.waitFor(() => slack.callsOf('views.open')[opened], 'the promote dialog');
    return call.args.view as Dialog;
  }
  /** Submits a dialog as `user`, with the given apps checked (default: as opened, all) and a note. */
  async function submitDialog(
    dialog: Dialog,
    user: string,
    userName: string,
    input: { apps?: string[]; note?: string; reason?: string } = {},
  ) {
    const apps = dialog.blocks.find((b) => b.block_id === 'apps')?.element;
    const values: Record<string, Record<string, unknown>> = dialog.callback_id === 'promote_dialog'
      ? {
          apps: {
            apps: {
              type: 'checkboxes',
              selected_options: (input.apps ?? apps!.initial_options!.map((o) => o.value)).map((v) => ({
                value: v,
                text: { type: 'plain_text', text: v },
              })),
            },
          },
          note: { note: { type: 'plain_text_input', value: input.note ?? null } },
        }
      : { reason: { reason: { type: 'plain_text_input', value: input.reason ?? null } } };
    return postToSlackEndpoint(
      t.server.url,
      viewSubmission({ callbackId: dialog.callback_id, privateMetadata: dialog.private_metadata, values, user, userName }),
      { secret: SECRET, contentType: form },
    );
  }
  /** Promote, as a person does it in Slack: the button, then the dialog's Submit with every app checked. */
  async function promoteByButton(value: string, user: string, userName: string, channel = 'CDEPLOY') {
    const dialog = await openPromoteDialog(value, user, userName, channel);
    const res = await submitDialog(dialog, user, userName);
    expect(res.status).toBe(200);
    return dialog;
  }
  const answer = (id: string) =>
    slack.waitFor(
      () => slack.responses.find((r) => r.id === id) as { text: string; blocks: Blocks; response_type?: string } | undefined,
      `the answer ${id}`,
    );
  /** Top-level messages and their updates in `channel`, in order. */
  const drawn = (channel: string) =>
    slack.calls.filter(
      (c) => (c.method === 'chat.update' || (c.method === 'chat.postMessage' && !c.args.thread_ts)) && c.args.channel === channel,
    );
  /** The message in `channel` as it stands once its fallback text matches `text` (the last drawing that does). */
  const messageReading = async (channel: string, text: RegExp) => {
    await slack.waitFor(() => drawn(channel).some((c) => text.test(String(c.args.text))), `a message in ${channel} reading ${text}`);
    await t.server.slack!.idle();
    return [...drawn(channel)].reverse().find((c) => text.test(String(c.args.text)))!;
  };
  /** The latest drawing of the message `ts` in `channel`. */
  const latest = (channel: string, ts: string) =>
    [...slack.calls]
      .reverse()
      .find(
        (c) =>
          c.args.channel === channel &&
          ((c.method === 'chat.update' && c.args.ts === ts) || (c.method === 'chat.postMessage' && c.result?.ts === ts)),
      )!;
  const tsOf = (call: { method: string; args: Record<string, unknown>; result?: Record<string, unknown> }) =>
    String(call.method === 'chat.update' ? call.args.ts : call.result!.ts);
  const buttonsOf = (call: { args: Record<string, unknown> }) =>
    ((call.args.blocks as Blocks).find((b) => b.type === 'actions')?.elements ?? []) as {
      action_id: string;
      value: string;
      style?: string;
      text: { text: string };
      confirm?: { text: { text: string }; style?: string; title: { text: string } };
    }[];
  const operations = async () => Number((await t.server.database.dataSource.query('SELECT count(*)::int AS n FROM operations'))[0].n);

  beforeAll(async () => {
    slack = await FakeSlack.start();
    t = await startTestServer({
      env: { SLACK_BOT_TOKEN: 'xoxb-test', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: slack.apiUrl, FLOW_SLACK_ADMINS: 'UADMIN' },
    });
    repo = await GitRepo.create(path.join(t.dir, 'repo'), webApp('slack v1', 'console.log("migrated 3 tables")'));
    await t.cli(['pipelines:create', 'shop', '--repo', repo.dir]);
    await t.cli(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
    await t.cli(['apps:create', 'shop', '--pipeline', 'shop', '--stage', 'production']);
  });
  afterAll(async () => {
    await t.close();
    await slack.close();
  });

  it('refuses a request with a bad signature, and does nothing', async () => {
    const body = slashCommand({
      text: 'deploy shop to staging',
      user: 'UADMIN',
      userName: 'ada',
      channel: 'CDEPLOY',
      responseUrl: slack.responseUrl('forged'),
    });

    const res = await postToSlackEndpoint(t.server.url, body, { secret: 'not-the-secret', contentType: form });

    expect(res.status).toBe(401);
    expect(await operations()).toBe(0);
    expect(slack.calls.filter((c) => c.method !== 'auth.test')).toEqual([]);
  });

  it('refuses a replayed request with a stale timestamp, and does nothing', async () => {
    const body = slashCommand({
      text: 'deploy shop to staging',
      user: 'UADMIN',
      userName: 'ada',
      channel: 'CDEPLOY',
      responseUrl: slack.responseUrl('stale'),
    });

    const res = await postToSlackEndpoint(t.server.url, body, {
      secret: SECRET,
      contentType: form,
      timestamp: Math.floor(Date.now() / 1000) - 600,
    });

    expect(res.status).toBe(401);
    expect(await operations()).toBe(0);
  });

  it('acks `/flow deploy` at once, even while Slack does not answer, and keeps one message up to date until the release is live', async () => {
    slack.hold();

    const { res } = await flow('deploy shop to staging');

    expect(res.status).toBe(200);
    slack.release();
    const done = await messageReading('CDEPLOY', /^✅ shop-staging v1 is live$/);
    expect(await operations()).toBe(1);
    const posts = slack.callsOf('chat.postMessage').filter((c) => c.args.channel === 'CDEPLOY' && !c.args.thread_ts);
    expect(posts).toHaveLength(1);
    const ts = (await t.server.database.dataSource.query('SELECT ts FROM status_messages'))[0].ts;
    expect(slack.callsOf('chat.update').every((c) => c.args.ts === ts && c.args.channel === 'CDEPLOY')).toBe(true);
    // While it ran, the message said what it was doing, never a placeholder.
    const text = JSON.stringify(done.args.blocks);
    // Outcome first, linked to the app; the commit with its subject; who started it, as a mention; how long it took.
    expect(text).toMatch(/:white_check_mark: \*<http:\/\/shop-staging\.localhost:\d+\|shop-staging v1> is live\*/);
    expect(text).toMatch(/`[0-9a-f]{7}` First version/);
    expect(text).toMatch(/Started by <@UADMIN> · \d+s/);
    expect(text).not.toMatch(/operation \d/i);
    const [promote] = buttonsOf(done);
    expect(promote).toMatchObject({ action_id: 'promote', style: 'primary', text: { text: 'Promote to production' } });
    // The button opens the promote dialog, which shows what it ships: no confirm of its own.
    expect(promote!.confirm).toBeUndefined();
    // Success pings nobody: no reply in the thread.
    expect(slack.callsOf('chat.postMessage').filter((c) => c.args.thread_ts === ts)).toEqual([]);
  });

  it('grants access from Slack with a mention, and answers with a mention, not a code block', async () => {
    const { id } = await flow('access:add shop <@UDEE|dee> deploy');
    const granted = await answer(id);
    expect(granted.blocks[0]!.text!.text).toBe(':white_check_mark: <@UDEE> now has *deploy*');
    expect(JSON.stringify(granted.blocks)).not.toContain('```');
    const { id: id2 } = await flow('access:add shop <@UVIC|vic> view');
    expect((await answer(id2)).blocks[0]!.text!.text).toContain('<@UVIC> now has *view*');

    expect(await t.json(['access', 'shop'])).toEqual([
      { user: 'dee', permission: 'deploy' },
      { user: 'vic', permission: 'view' },
    ]);
  });

  it('answers `/flow users:create` typed in a channel ephemerally, so its token is seen once, by whoever typed it', async () => {
    const callsBefore = slack.calls.length;

    const { res, id } = await flow('users:create bob', 'UADMIN', 'ada', 'CDEPLOY');

    expect(res.status).toBe(200);
    const reply = await answer(id);
    const token = /flo_[A-Za-z0-9_-]{20,}/.exec(JSON.stringify(reply.blocks))?.[0];
    expect(reply.response_type).toBe('ephemeral');
    expect(token).toBeDefined();
    await t.server.slack!.idle();
    expect(JSON.stringify(slack.calls.slice(callsBefore))).not.toContain(token);
    expect(slack.responses.filter((r) => JSON.stringify(r).includes(token!)).map((r) => [r.id, r.response_type])).toEqual([
      [id, 'ephemeral'],
    ]);
    expect(await t.json(['pipelines'], token)).toEqual([]);
  });

  it('refuses the Promote button ephemerally, naming the permission, for a user with view only', async () => {
    const staging = (await t.json<ReleaseView[]>(['releases', 'shop-staging']))[0]!;

    const { res, id } = await click('promote', JSON.stringify({ p: 'shop', a: 'shop-staging', v: staging.version }), 'UVIC', 'vic');

    expect(res.status).toBe(200);
    const reply = await answer(id);
    expect(reply).toMatchObject({ response_type: 'ephemeral', replace_original: false });
    expect(reply.text).toContain('`/flow promote shop` needs deploy on shop; you have view');
    expect(await t.json(['releases', 'shop'])).toEqual([]);
  });

  it('promotes with the Promote button; the first production release offers no Rollback, and the staging message loses its Promote', async () => {
    const staging = (await t.json<ReleaseView[]>(['releases', 'shop-staging']))[0]!;
    const stagingMessage = drawn('CDEPLOY')[0]!;

    const dialog = await promoteByButton(JSON.stringify({ p: 'shop', a: 'shop-staging', v: staging.version }), 'UDEE', 'dee');

    expect(dialog.submit.text).toBe('Promote');
    expect(JSON.stringify(dialog.blocks)).toMatch(/First release to production: ships 1 commit:\\n• [0-9a-f]{7} First version/);
    const live = await messageReading('CDEPLOY', /^✅ shop v1 is live$/);
    const prod = await t.json<ReleaseView[]>(['releases', 'shop']);
    expect(prod[0]).toMatchObject({
      slug: staging.slug,
      status: 'succeeded',
      description: `Promote shop-staging v${staging.version} ${staging.commit!.slice(0, 7)}`,
    });
    expect(buttonsOf(live)).toEqual([]);
    const text = JSON.stringify(live.args.blocks);
    expect(text).toMatch(/From shop-staging v1 `[0-9a-f]{7}` · 1 commit \(first release\)/);
    expect(text).toContain('Started by <@UDEE>');
    const retired = latest('CDEPLOY', tsOf(stagingMessage));
    expect(buttonsOf(retired)).toEqual([]);
    expect(JSON.stringify(retired.args.blocks)).toContain(':arrow_right: Promoted to production by <@UDEE> — shop v1');
    expect(retired.args.text).toBe('✅ shop-staging v1 is live');
  });

  it('answers a stale button by offering the current release instead of acting', async () => {
    const before = await t.json<ReleaseView[]>(['releases', 'shop']);
    const current = (await t.json<ReleaseView[]>(['releases', 'shop-staging']))[0]!;

    const { id } = await click('promote', JSON.stringify({ p: 'shop', a: 'shop-staging', v: current.version - 1 || 99 }), 'UDEE', 'dee');

    const reply = await answer(id);
    expect(reply.text).toContain(`shop-staging has moved on since: it now runs v${current.version}`);
    expect(reply.blocks[1]!.elements![0]).toMatchObject({
      action_id: 'promote',
      text: { text: 'Promote to production' },
      value: JSON.stringify({ p: 'shop', a: 'shop-staging', v: current.version }),
    });
    expect(await t.json(['releases', 'shop'])).toEqual(before);
  });

  it('makes a channel a feed that receives a deploy started from the CLI, through a rate limit', async () => {
    const { id } = await flow('subscribe shop', 'UADMIN', 'ada', 'CFEED');
    expect((await answer(id)).blocks[0]!.text!.text).toBe(
      ':white_check_mark: <#CFEED> now follows *shop*: deploy, promote, rollback, config, ci, pulls',
    );
    await repo.commit(webApp('slack v2', 'console.log("migrated 4 tables")'), 'Add a fourth table');
    slack.failNext('chat.postMessage', 429, 1);

    await t.cli(['deploy', 'shop', 'to', 'staging']);

    const feed = await messageReading('CFEED', /^✅ shop-staging v2 is live$/);
    expect(slack.calls.some((c) => c.method === 'chat.postMessage (failed 429)')).toBe(true);
    expect(JSON.stringify(feed.args.blocks)).toMatch(/Started by admin \(CLI\) · \d+s/);
    const [promote] = buttonsOf(feed);
    expect(promote!.text.text).toBe('Promote to production');
    // Its Promote opens the dialog: what it ships, the apps (all checked), a note. Opening it changes nothing.
    const dialog = await openPromoteDialog(promote!.value, 'UDEE', 'dee', 'CFEED');
    expect(dialog.blocks[1]!.text!.text).toMatch(/^Ships 1 commit to production:\n• [0-9a-f]{7} Add a fourth table/);
    const apps = dialog.blocks.find((b) => b.block_id === 'apps')!.element!;
    expect(apps.options.map((o) => o.value)).toEqual(['shop']);
    expect(apps.initial_options!.map((o) => o.value)).toEqual(['shop']);
    expect(JSON.parse(dialog.private_metadata)).toEqual({ p: 'shop', a: 'shop-staging', v: 2, c: 'CFEED' });
  });

  it('answers ephemerally with what to do next for a mistyped or refused command', async () => {
    const typo = await flow('promte shop');
    const denied = await flow('apps:create shop-qa --pipeline shop --stage staging', 'UVIC', 'vic');

    expect((await answer(typo.id)).text).toContain('"promte" is not a flowops command. Did you mean `/flow promote`?');
    expect((await answer(denied.id)).text).toContain(
      'needs manage on shop; you have view. Ask an admin: `/flow access:add shop vic manage`',
    );
  });

  it('publishes the App Home board with the buttons each user may use', async () => {
    const open = (user: string) =>
      postToSlackEndpoint(
        t.server.url,
        JSON.stringify({
          token: 'x',
          team_id: 'T1',
          api_app_id: 'A1',
          type: 'event_callback',
          event_id: `Ev${user}`,
          event_time: 1,
          event: { type: 'app_home_opened', user, channel: 'D1', tab: 'home', event_ts: '1.1' },
        }),
        { secret: SECRET, contentType: 'application/json' },
      );

    await open('UDEE');
    await open('UVIC');

    const dee = await slack.waitFor(() => slack.callsOf('views.publish').find((c) => c.args.user_id === 'UDEE'), "dee's home");
    const vic = await slack.waitFor(() => slack.callsOf('views.publish').find((c) => c.args.user_id === 'UVIC'), "vic's home");
    const view = (c: typeof dee) => c.args.view as { type: string; blocks: Blocks };
    expect(view(dee).type).toBe('home');
    expect(JSON.stringify(view(dee).blocks)).toContain('*STAGING*');
    // Production runs its first release: nothing to roll back to, so no Rollback.
    expect(
      view(dee)
        .blocks.filter((b) => b.accessory)
        .map((b) => b.accessory!.action_id),
    ).toEqual(['promote']);
    // Promote opens the promote dialog (what it ships, where): no confirm of its own.
    expect(JSON.stringify(view(dee).blocks)).not.toContain('"confirm"');
    expect(view(vic).blocks.filter((b) => b.accessory)).toEqual([]);
    expect(slack.unexpected).toEqual([]);
  });

  it('renders `/flow pipelines:info` as stages with app cards and what a promotion would ship', async () => {
    const { id } = await flow('pipelines:info shop', 'UDEE', 'dee');

    const reply = await answer(id);
    const text = JSON.stringify(reply.blocks);
    expect(reply.response_type).toBe('ephemeral');
    expect(text).toContain('*STAGING*');
    expect(text).toContain('*PRODUCTION*');
    expect(text).toMatch(/shop-staging>\* {2}v2 · `[0-9a-f]{7}` · \d+ seconds? ago · succeeded\\n:arrow_up: 1 commit ahead of production/);
    expect(text).not.toContain('ahead of production by 0');
  });

  it('offers a dangerous Rollback naming both versions on a later production release, then Re-release after the rollback', async () => {
    const staging = (await t.json<ReleaseView[]>(['releases', 'shop-staging']))[0]!;
    await promoteByButton(JSON.stringify({ p: 'shop', a: 'shop-staging', v: staging.version }), 'UDEE', 'dee', 'CFEED');
    const promoted = await messageReading('CFEED', /^✅ shop v2 is live$/);
    const [rollback] = buttonsOf(promoted);
    expect(rollback).toMatchObject({ action_id: 'rollback', style: 'danger', text: { text: 'Roll back to v1' } });
    expect(rollback!.confirm!.style).toBe('danger');
    expect(rollback!.confirm!.text.text).toMatch(
      /^shop goes from v2 \([0-9a-f]{7}\) back to v1 \([0-9a-f]{7}\), with v1's slug and config vars\. It takes away 1 commit:\n• [0-9a-f]{7} Add a fourth table/,
    );

    await click('rollback', rollback!.value, 'UDEE', 'dee', 'CFEED');

    const rolledBack = await messageReading('CFEED', /^✅ shop v3 is live$/);
    expect(JSON.stringify(rolledBack.args.blocks)).toMatch(/Back from v2 `[0-9a-f]{7}` to v1 `[0-9a-f]{7}`/);
    expect(buttonsOf(rolledBack).map((b) => [b.action_id, b.text.text])).toEqual([
      ['rerelease', 'Re-release v2'],
      ['output', 'Output'],
    ]);
    const retired = latest('CFEED', tsOf(promoted));
    expect(buttonsOf(retired)).toEqual([]);
    expect(JSON.stringify(retired.args.blocks)).toContain('Rolled back to v1 by <@UDEE> (now v3)');
  });

  it('says a failed release failed, and reaches the person who started it in a broadcast thread reply with its output', async () => {
    await repo.commit(webApp('slack v3', 'console.error("boom: migration 7 failed"); process.exit(2)'), 'Break the migration');
    const { res } = await flow('deploy shop to staging');
    expect(res.status).toBe(200);

    const failed = await messageReading('CDEPLOY', /^❌ shop-staging v3 failed in the release phase — v2 still serving$/);

    const buttons = buttonsOf(failed);
    expect(buttons.map((b) => b.action_id)).toEqual(['retry', 'output']);
    const reply = await slack.waitFor(
      () => slack.callsOf('chat.postMessage').find((c) => c.args.thread_ts === tsOf(failed)),
      'the failure reply in the thread',
    );
    expect(String(reply.args.reply_broadcast)).toBe('true');
    expect(String(reply.args.text)).toBe('❌ shop-staging v3 failed in the release phase — v2 still serving');
    const replyBlocks = JSON.stringify(reply.args.blocks);
    expect(replyBlocks).toContain('<@UADMIN> :x: *shop-staging v3 failed in the release phase — v2 still serving*');
    expect(replyBlocks).toContain('boom: migration 7 failed');

    const { id } = await click('output', buttons[1]!.value, 'UVIC', 'vic');

    expect((await answer(id)).text).toContain('boom: migration 7 failed');
  });

  it('feeds only the events a channel subscribed to', async () => {
    await flow('subscribe shop rollback', 'UADMIN', 'ada', 'CROLLBACKS');
    const before = slack.callsOf('chat.postMessage').filter((c) => c.args.channel === 'CROLLBACKS').length;

    await t.cli(['config:set', 'shop', 'FEATURE=on']);
    await t.cli(['rollback', 'shop']);

    await slack.waitFor(
      () => slack.callsOf('chat.postMessage').filter((c) => c.args.channel === 'CROLLBACKS').length > before,
      'the rollback in the feed',
    );
    await t.server.slack!.idle();
    const fed = slack
      .callsOf('chat.postMessage')
      .filter((c) => c.args.channel === 'CROLLBACKS' && !c.args.thread_ts)
      .map((c) => String(c.args.text));
    expect(fed.slice(before)).toEqual([expect.stringMatching(/^(🚀 Rolling back shop from v4 to v\d+|✅ shop v5 is live)/)]);
  });

  it('locks a stage from Slack: others are refused naming the holder, the feed hears of it, and Unlock ends it', async () => {
    const { id } = await flow('lock shop:staging --reason “migrating orders” --for 1h');
    expect((await answer(id)).blocks[0]!.text!.text).toMatch(
      /^:lock: Locked \*shop:staging\* until (?:\w{3} \d{1,2} \w{3} )?\d\d:\d\d UTC: migrating orders\. Only <@UADMIN> can ship there; `\/flow unlock shop:staging` ends it\.$/,
    );
    const before = await operations();

    const denied = await flow('deploy shop to staging', 'UDEE', 'dee');

    expect((await answer(denied.id)).text).toMatch(
      /shop:staging is locked by ada since (?:\w{3} \d{1,2} \w{3} )?\d\d:\d\d UTC, until (?:\w{3} \d{1,2} \w{3} )?\d\d:\d\d UTC \("migrating orders"\)\. Only ada can ship there/,
    );
    expect(await operations()).toBe(before);
    const line = await slack.waitFor(
      () =>
        slack
          .callsOf('chat.postMessage')
          .find((c) => c.args.channel === 'CFEED' && /^🔒 shop: ada locked shop:staging/.test(String(c.args.text))),
      'the lock in the feed',
    );
    expect(JSON.stringify(line.args.blocks)).toContain('migrating orders');
    const board = async (user: string, name: string) =>
      JSON.stringify((await answer((await flow('pipelines:info shop', user, name)).id)).blocks);
    expect(await board('UADMIN', 'ada')).toMatch(
      /:lock: shop:staging is locked by ada until (?:\w{3} \d{1,2} \w{3} )?\d\d:\d\d UTC: migrating orders.*"action_id":"unlock"/,
    );
    expect(await board('UDEE', 'dee')).not.toContain('"action_id":"unlock"');
    expect((await t.cli(['locks', 'shop'])).out).toMatch(/shop:staging +ada +(?:\w{3} \d{1,2} \w{3} )?\d\d:\d\d UTC +migrating orders/);

    const [lock] = await t.json<{ id: number }[]>(['locks', 'shop']);
    const refused = await click('unlock', JSON.stringify({ t: 'shop:staging', i: lock!.id }), 'UDEE', 'dee');
    expect((await answer(refused.id)).text).toContain('needs operate on shop; you have deploy');
    const unlocked = await click('unlock', JSON.stringify({ t: 'shop:staging', i: lock!.id }), 'UADMIN', 'ada');
    expect((await answer(unlocked.id)).text).toBe('🔓 Unlocked shop:staging.'.replace('🔓', ':unlock:'));
    await slack.waitFor(
      () =>
        slack
          .callsOf('chat.postMessage')
          .find((c) => c.args.channel === 'CFEED' && /^🔓 shop: ada unlocked shop:staging$/.test(String(c.args.text))),
      'the unlock in the feed',
    );
  });

  it('tells someone refused on a pipeline they were shown what it needs, what they have, and who can grant it', async () => {
    const granted = await flow('access:add shop <@UMIA|mia> manage');
    await answer(granted.id);
    const value = JSON.stringify({ p: 'shop', a: 'shop-staging', v: 1 });

    // A button on a message about shop: the pipeline is no secret to whoever sees the message.
    const clicked = await answer((await click('promote', value, 'UNEW', 'newbie', 'CFEED')).id);
    // Typed in shop's feed: likewise. Typed anywhere else, by someone with no grant: "not found", as before.
    const inFeed = await answer((await flow('promote shop', 'UNEW', 'newbie', 'CFEED')).id);
    const elsewhere = await answer((await flow('promote shop', 'UNEW', 'newbie', 'CRANDOM')).id);

    expect(clicked.text).toContain(
      '`/flow promote shop` needs deploy on shop; you have none. Ask a manager of shop (mia): `/flow access:add shop newbie deploy`',
    );
    expect(JSON.stringify(clicked.blocks)).toContain('Who can grant it: <@UMIA>');
    expect(inFeed.text).toContain('needs deploy on shop; you have none');
    expect(elsewhere.text).toContain('no pipeline "shop" that you can see');

    // A button on flowops' own message about shop, in a channel that is no feed (a deploy typed there):
    // the engine finds that message (channel and ts) among its own, so it names shop and its managers too.
    const deployMessage = slack
      .callsOf('chat.postMessage')
      .find((c) => c.args.channel === 'CDEPLOY' && /shop-staging/.test(String(c.args.text)) && c.result?.ts)!;
    const onOwnMessage = await answer((await click('promote', value, 'UNEW', 'newbie', 'CDEPLOY', String(deployMessage.result!.ts))).id);
    expect(onOwnMessage.text).toContain('needs deploy on shop; you have none. Ask a manager of shop (mia)');
    // A forged click: a value naming shop on a message that is not flowops' own about shop, or a real
    // message's ts claimed in another channel. "Not found": neither the name nor its managers are confirmed.
    for (const [channel, ts] of [
      ['CDEPLOY', '999.000100'],
      ['CRANDOM', String(deployMessage.result!.ts)],
    ] as const) {
      const forged = await answer((await click('promote', value, 'UNEW', 'newbie', channel, ts)).id);
      expect(forged.text).toContain('no pipeline "shop" that you can see');
      expect(JSON.stringify(forged)).not.toContain('mia');
    }
    const cli = await t.cli(['promote', 'shop'], (await t.json<{ token: string }>(['users:create', 'outsider'])).token);
    expect(cli.err).toContain('no pipeline "shop" that you can see');
  });

  it('names shop and its managers on a click of a button in the thread reply of its own failed release (no feed)', async () => {
    // The failure reply in CDEPLOY (a channel that is no feed) carries Retry / Output: flowops' own message about shop.
    const reply = slack
      .callsOf('chat.postMessage')
      .find((c) => c.args.channel === 'CDEPLOY' && c.args.thread_ts && /failed in the release phase/.test(String(c.args.text)))!;
    const retry = (reply.args.blocks as Blocks).flatMap((b) => b.elements ?? []).find((e) => e.action_id === 'retry')!;

    const clicked = await answer((await click('retry', retry.value!, 'UNEW', 'newbie', 'CDEPLOY', String(reply.result!.ts))).id);

    expect(clicked.text).toContain('on shop; you have none. Ask a manager of shop (mia)');
  });

  it('gives every member of the workspace a floor with access:default, and not the CLI users without a grant', async () => {
    const set = await answer((await flow('access:default shop view')).id);
    expect(set.blocks[0]!.text!.text).toBe(':white_check_mark: *shop*: every member of this workspace has at least *view*');

    const seen = await answer((await flow('pipelines:info shop', 'UFRESH', 'fresh', 'CRANDOM')).id);
    const refused = await answer((await flow('deploy shop to staging', 'UFRESH', 'fresh', 'CRANDOM')).id);

    expect(JSON.stringify(seen.blocks)).toContain('*STAGING*');
    expect(refused.text).toContain('`/flow deploy shop` needs deploy on shop; you have view');
    // A Slack Connect guest (another workspace) gets no floor: "not found", as anyone without a grant.
    const guestId = `r${n++}`;
    await postToSlackEndpoint(
      t.server.url,
      slashCommand({
        text: 'pipelines:info shop',
        user: 'UGUEST',
        userName: 'guest',
        channel: 'CRANDOM',
        responseUrl: slack.responseUrl(guestId),
        team: 'TVENDOR',
      }),
      { secret: SECRET, contentType: form },
    );
    expect((await answer(guestId)).text).toContain('no pipeline "shop" that you can see');
    const cli = await t.cli(['pipelines:info', 'shop'], (await t.json<{ token: string }>(['users:create', 'outsider2'])).token);
    expect(cli.err).toContain('no pipeline "shop" that you can see');
    await answer((await flow('access:default shop none')).id);
  });

  it("links a Slack account to its person's CLI user with a one-time code: one identity, one set of grants; an admin can undo it", async () => {
    const callsBefore = slack.calls.length;
    const asked = await answer((await flow('login', 'UDEE', 'dee')).id);
    const code = /flowops login ([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})/.exec(JSON.stringify(asked.blocks))?.[1];
    expect(asked.response_type).toBe('ephemeral');
    expect(code).toBeDefined();
    const dana = await t.json<{ token: string }>(['users:create', 'dana']);

    const linked = await t.cli(['login', code!], dana.token);

    expect(linked.out).toContain("Linked: your Slack account (dee) is dana now; grants, locks and history are one person's");
    expect(JSON.stringify(slack.calls.slice(callsBefore))).not.toContain(code);
    expect((await t.cli(['login', code!], dana.token)).err).toContain('this login code is unknown or has expired');
    expect(await t.json(['access', 'shop'])).toContainEqual({ user: 'dana', permission: 'deploy' });
    expect(await t.json(['access', 'shop'])).not.toContainEqual(expect.objectContaining({ user: 'dee' }));
    // dee in Slack is dana now: a deploy there is dana's.
    const answered = await answer((await flow('releases shop-staging', 'UDEE', 'dee')).id);
    expect(answered.text).not.toContain('no app');
    expect((await t.cli(['users'])).out).toMatch(/dana +yes +slack:T1:UDEE +dee/);

    const undone = await t.cli(['users:unlink', 'dana']);

    expect(undone.out).toContain('Unlinked dana from the Slack account of dee');
    const refused = await answer((await flow('releases shop-staging', 'UDEE', 'dee', 'CRANDOM')).id);
    expect(refused.text).toContain('no app "shop-staging" that you can see');
  });

  it('answers `/flow help` in short sections by topic, with no long code block', async () => {
    const { id } = await flow('help', 'UVIC', 'vic');

    const help = await answer(id);
    const texts = help.blocks.map((b) => b.text?.text ?? '');
    expect(texts.join('\n')).toContain('*Ship*');
    expect(texts.join('\n')).toContain('`/flow promote');
    for (const text of texts) {
      expect(text.length).toBeLessThan(3000);
      for (const block of text.match(/```[\s\S]*?```/g) ?? []) expect(block.length).toBeLessThanOrEqual(1000);
    }
    const one = await answer((await flow('help promote', 'UVIC', 'vic')).id);
    expect(one.blocks[0]!.text!.text).toMatch(/^`\/flow promote &lt;pipeline&gt;[^`]*` copy the slug/);
  });

  it('shows no internal operation id in any message', async () => {
    await t.server.slack!.idle();
    const ids: { id: number }[] = await t.server.database.dataSource.query('SELECT id FROM operations');
    expect(ids.length).toBeGreaterThan(5);
    const shown = JSON.stringify([...slack.calls.map((c) => [c.args.text, c.args.blocks]), ...slack.responses]);
    expect(shown).not.toMatch(/operation #?\d/i);
  });
});
