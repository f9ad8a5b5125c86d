import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalView, ReleaseView } from '../src/engine/views.ts';
import { buttonClick, FakeSlack, postToSlackEndpoint, slashCommand, viewSubmission, type SlackCall } from './helpers/fake-slack.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const SECRET = 'slack-signing-secret-for-tests';
type Block = {
  type: string;
  block_id?: string;
  text?: { text: string };
  elements?: { action_id?: string; value?: string; text?: { text: string }; style?: string; confirm?: unknown }[];
  element?: { options: { value: string }[]; initial_options?: { value: string }[] };
};
type Dialog = { callback_id: string; private_metadata: string; submit: { text: string }; blocks: Block[] };

/**
 * Approvals and the promote dialog in Slack, through signed requests into the
 * real server (commands, block_actions, view_submission) and the fake Slack API.
 */
describe('approvals and the promote dialog in Slack', () => {
  let slack: FakeSlack;
  let t: TestServer;
  let repo: GitRepo;
  let n = 0;
  let carolToken: string;
  const form = 'application/x-www-form-urlencoded';

  const flow = async (text: string, user: string, userName: string, channel = 'CSHIP') => {
    const id = `r${n++}`;
    await postToSlackEndpoint(t.server.url, slashCommand({ text, user, userName, channel, responseUrl: slack.responseUrl(id) }), {
      secret: SECRET,
      contentType: form,
    });
    return id;
  };
  const click = async (actionId: string, value: string, user: string, userName: string, channel = 'CSHIP') => {
    const id = `r${n++}`;
    await postToSlackEndpoint(t.server.url, buttonClick({ actionId, value, user, userName, channel, responseUrl: slack.responseUrl(id) }), {
      secret: SECRET,
      contentType: form,
    });
    return id;
  };
  const answer = (id: string) =>
    slack.waitFor(() => slack.responses.find((r) => r.id === id) as { text: string; blocks: Block[] } | undefined, `the answer ${id}`);
  const submit = (dialog: Dialog, user: string, userName: string, values: Record<string, Record<string, unknown>>) =>
    postToSlackEndpoint(
      t.server.url,
      viewSubmission({ callbackId: dialog.callback_id, privateMetadata: dialog.private_metadata, values, user, userName }),
      { secret: SECRET, contentType: form },
    );
  const checked = (apps: string[], note: string | null = null) => ({
    apps: { apps: { type: 'checkboxes', selected_options: apps.map((v) => ({ value: v, text: { type: 'plain_text', text: v } })) } },
    note: { note: { type: 'plain_text_input', value: note } },
  });
  const opened = async (before: number) => (await slack.waitFor(() => slack.callsOf('views.open')[before], 'a dialog')).args.view as Dialog;
  /** The top-level drawings (posts and updates) of messages in `channel`. */
  const drawn = (channel: string) =>
    slack.calls.filter(
      (c) => (c.method === 'chat.update' || (c.method === 'chat.postMessage' && !c.args.thread_ts)) && c.args.channel === channel,
    );
  const reading = async (channel: string, text: RegExp): Promise<SlackCall> => {
    await slack.waitFor(() => drawn(channel).some((c) => text.test(String(c.args.text))), `a message in ${channel} reading ${text}`);
    await t.server.slack!.idle();
    return [...drawn(channel)].reverse().find((c) => text.test(String(c.args.text)))!;
  };
  const tsOf = (c: SlackCall) => String(c.method === 'chat.update' ? c.args.ts : c.result!.ts);
  const buttons = (c: SlackCall) => (c.args.blocks as Block[]).filter((b) => b.type === 'actions').flatMap((b) => b.elements ?? []);
  const operations = async () => Number((await t.server.database.dataSource.query('SELECT count(*)::int AS n FROM operations'))[0].n);
  const releases = (app: string) => t.json<ReleaseView[]>(['releases', app]);

  beforeAll(async () => {
    slack = await FakeSlack.start();
    t = await startTestServer({
      env: { SLACK_BOT_TOKEN: 'xoxb-test', SLACK_SIGNING_SECRET: SECRET, SLACK_API_URL: slack.apiUrl, FLOW_SLACK_ADMINS: 'UADMIN' },
    });
    repo = await GitRepo.create(path.join(t.dir, 'repo'), webApp('v1'));
    await t.cli(['pipelines:create', 'shop', '--repo', repo.dir]);
    await t.cli(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
    await t.cli(['apps:create', 'shop', '--pipeline', 'shop', '--stage', 'production']);
    await t.cli(['apps:create', 'shop-eu', '--pipeline', 'shop', '--stage', 'production']);
    await t.cli(['deploy', 'shop', 'to', 'staging']);
    for (const [user, name] of [
      ['UDEE', 'dee'],
      ['UERIN', 'erin'],
    ]) {
      await answer(await flow(`access:add shop <@${user}|${name}> deploy`, 'UADMIN', 'ada'));
    }
    carolToken = (await t.json<{ token: string }>(['users:create', 'carol'])).token;
    await t.cli(['access:add', 'shop', 'carol', 'deploy']);
    expect((await t.cli(['approvals:require', 'shop', 'production'])).out).toContain(
      'shop:production needs 1 approval: deploys, promotions and rollbacks there wait for someone else with deploy to `approve` them',
    );
  });
  afterAll(async () => {
    await t.close();
    await slack.close();
  });

  it('makes `/flow promote` a request with Approve and Reject; the requester cannot approve; a second person ships the pinned slug in the same message', async () => {
    const before = await operations();
    const v1 = (await releases('shop-staging'))[0]!;

    await flow('promote shop', 'UDEE', 'dee');

    const request = await reading(
      'CSHIP',
      /^🙋 dee asks to ship: Promote shop-staging v1 [0-9a-f]{7} to shop, shop-eu \(production\) — needs 1 approval$/,
    );
    expect(await operations()).toBe(before);
    const text = JSON.stringify(request.args.blocks);
    expect(text).toContain(':raising_hand: <@UDEE> asks to ship: *Promote shop-staging v1');
    expect(text).toMatch(/First release to the stage: 1 commit:\\n• [0-9a-f]{7} First version/);
    expect(text).toMatch(/Needs 1 more approval from someone with deploy on shop other than dee · expires [^"]*UTC/);
    const [approve, reject] = buttons(request);
    expect(approve).toMatchObject({ action_id: 'approve', style: 'primary', text: { text: 'Approve' } });
    expect(reject).toMatchObject({ action_id: 'reject', style: 'danger', text: { text: 'Reject' } });
    // The requester's own click is refused, ephemerally, saying why.
    expect((await answer(await click('approve', approve!.value!, 'UDEE', 'dee'))).text).toMatch(
      /you asked for request \d+; someone else with deploy on shop approves it \(the two-person rule\)/,
    );
    // Staging moves on while the request waits.
    await repo.commit(webApp('v2'), 'Second version');
    await t.cli(['deploy', 'shop', 'to', 'staging']);

    const approved = await answer(await click('approve', approve!.value!, 'UERIN', 'erin'));

    expect(approved.text).toMatch(/Approved: Promote shop-staging v1 .* is shipping now/);
    const live = await reading('CSHIP', /^✅ shop v1, shop-eu v1 live$/);
    expect(tsOf(live)).toBe(tsOf(request)); // one message, from the asking to live
    const liveText = JSON.stringify(live.args.blocks);
    expect(liveText).toContain('Asked by <@UDEE> · request');
    expect(liveText).toContain('approved by <@UERIN>');
    expect(liveText).toContain('shop-staging has moved on to v2 since; what shipped is the release that was asked for');
    expect(liveText).toContain('Started by <@UDEE>'); // it ran as the requester
    expect((await releases('shop'))[0]).toMatchObject({ slug: v1.slug, commit: v1.commit, status: 'succeeded' });
    expect((await releases('shop-eu'))[0]).toMatchObject({ slug: v1.slug });
    expect(slack.unexpected).toEqual([]);
  });

  it('asks why before rejecting; an empty reason keeps the dialog open; the rejection stops it and tells the requester', async () => {
    const before = await operations();
    await flow('deploy shop to production/shop', 'UDEE', 'dee');
    const request = await reading('CSHIP', /^🙋 dee asks to ship: Deploy [0-9a-f]{7} to shop \(production\)/);
    const [, reject] = buttons(request);
    const dialogs = slack.callsOf('views.open').length;

    await click('reject', reject!.value!, 'UERIN', 'erin');

    const dialog = await opened(dialogs);
    expect(dialog).toMatchObject({ callback_id: 'reject_request', submit: { text: 'Reject' } });
    const empty = await submit(dialog, 'UERIN', 'erin', { reason: { reason: { type: 'plain_text_input', value: '  ' } } });
    expect(await empty.json()).toEqual({
      response_action: 'errors',
      errors: { reason: 'Say why: the requester and the channel read it.' },
    });
    const res = await submit(dialog, 'UERIN', 'erin', {
      reason: { reason: { type: 'plain_text_input', value: 'v1 has the <!channel> bug *again*' } },
    });
    expect(res.status).toBe(200);

    const rejected = await reading('CSHIP', /^⛔ Deploy [0-9a-f]{7} to shop \(production\): rejected by erin$/);
    expect(tsOf(rejected)).toBe(tsOf(request));
    expect(buttons(rejected)).toEqual([]);
    const text = JSON.stringify(rejected.args.blocks);
    // The reason is the person's text, escaped: no @channel.
    expect(text).toContain(':no_entry: *Rejected* by <@UERIN>: v1 has the &lt;!channel&gt; bug *again*');
    const reply = await slack.waitFor(
      () => slack.callsOf('chat.postMessage').find((c) => c.args.thread_ts === tsOf(request)),
      'the thread reply to the requester',
    );
    expect(String(JSON.stringify(reply.args.blocks))).toContain('<@UDEE>');
    expect(await operations()).toBe(before);
    // A late Approve on the rejected request changes nothing.
    expect((await answer(await click('approve', buttons(request)[0]!.value!, 'UADMIN', 'ada'))).text).toMatch(
      /was rejected by erin; nothing changed/,
    );
  });

  it('lets the CLI ask without waiting, and approve from the CLI, which follows the operation it ships', async () => {
    const asked = await t.cli(['promote', 'shop', '--no-wait'], carolToken);
    expect(asked.code).toBe(0);
    expect(asked.out).toMatch(
      /^Promote shop-staging v2 [0-9a-f]{7} to shop, shop-eu \(production\) needs 1 approval \(shop:production\): request (\d+)\.\nSomeone else with deploy on shop approves it: `approve \1`/,
    );
    const id = Number(/request (\d+)/.exec(asked.out)![1]);
    expect((await t.cli(['approvals', 'shop'])).out).toMatch(
      new RegExp(`request ${id} \\(carol\\): Promote shop-staging v2 .* — waits for 1 more approval until`),
    );
    expect((await t.cli(['approve', String(id)], carolToken)).err).toContain(`you asked for request ${id}`);

    const approved = await t.cli(['approve', String(id)]);

    expect(approved.code).toBe(0);
    expect(approved.out).toMatch(
      new RegExp(`request ${id} \\(carol\\): Promote shop-staging v2 .* — approved by admin \\(1 of 1\\); shipped as operation \\d+`),
    );
    expect(approved.out).toMatch(/\ndone\n {2}shop: v2 succeeded\n {2}shop-eu: v2 succeeded/);
    const view = await t.json<ApprovalView>(['approve', String(id)]).catch((e: Error) => e);
    expect(String(view)).toMatch(/was approved already/);
  });

  it('promotes from the dialog to the checked apps only, with a note', async () => {
    await t.cli(['approvals:disable', 'shop', 'production']);
    await repo.commit(webApp('v3'), 'Third version');
    await t.cli(['deploy', 'shop', 'to', 'staging']);
    const v3 = (await releases('shop-staging'))[0]!;
    const eu = (await releases('shop-eu')).length;
    const dialogs = slack.callsOf('views.open').length;

    await click('promote', JSON.stringify({ p: 'shop', a: 'shop-staging', v: v3.version }), 'UDEE', 'dee');
    const dialog = await opened(dialogs);
    expect(dialog.submit.text).toBe('Promote');
    expect(dialog.blocks.find((b) => b.block_id === 'apps')!.element!.initial_options!.map((o) => o.value)).toEqual(['shop', 'shop-eu']);
    const none = await submit(dialog, 'UDEE', 'dee', checked([]));
    expect(await none.json()).toEqual({ response_action: 'errors', errors: { apps: 'Check at least one app to promote to.' } });
    await submit(dialog, 'UDEE', 'dee', checked(['shop'], 'Ships the *new* checkout'));

    const live = await reading('CSHIP', /^✅ shop v\d+ is live$/);
    expect(JSON.stringify(live.args.blocks)).toContain(':memo: Ships the *new* checkout');
    expect((await releases('shop'))[0]).toMatchObject({ commit: v3.commit, slug: v3.slug });
    expect(await releases('shop-eu')).toHaveLength(eu); // unchecked: untouched
  });

  it('re-reads on submit: a dialog opened for a release that moved on promotes nothing and offers the new one', async () => {
    const v3 = (await releases('shop-staging'))[0]!;
    const dialogs = slack.callsOf('views.open').length;
    await click('promote', JSON.stringify({ p: 'shop', a: 'shop-staging', v: v3.version }), 'UDEE', 'dee');
    const dialog = await opened(dialogs);
    await repo.commit(webApp('v4'), 'Fourth version');
    await t.cli(['deploy', 'shop', 'to', 'staging']);
    const before = await operations();
    const ephemerals = slack.callsOf('chat.postEphemeral').length;

    await submit(dialog, 'UDEE', 'dee', checked(['shop', 'shop-eu']));

    const told = await slack.waitFor(() => slack.callsOf('chat.postEphemeral')[ephemerals], 'the answer to the dialog');
    expect(told.args).toMatchObject({ channel: 'CSHIP', user: 'UDEE' });
    expect(String(told.args.text)).toContain(`shop-staging has moved on since: it now runs v${v3.version + 1}`);
    expect(String(told.args.text)).toContain('Nothing was promoted');
    expect(await operations()).toBe(before);
  });

  it('refuses a forged dialog: metadata it did not make, and a person with no grant on the pipeline', async () => {
    const before = await operations();
    const forged = { callback_id: 'promote_dialog', private_metadata: '{"p":"shop"}', submit: { text: '' }, blocks: [] };
    const ephemerals = slack.callsOf('chat.postEphemeral').length + slack.callsOf('chat.postMessage').length;
    await submit(forged, 'UDEE', 'dee', checked(['shop']));
    // Metadata that names no channel: the answer goes to the person directly.
    const told = await slack.waitFor(
      () =>
        [...slack.callsOf('chat.postEphemeral'), ...slack.callsOf('chat.postMessage')]
          .slice(ephemerals)
          .find((c) => c.args.channel === 'UDEE'),
      'the refusal',
    );
    expect(String(told.args.text)).toContain('this dialog is from an older flowops');
    const v4 = (await releases('shop-staging'))[0]!;
    const dialog = {
      callback_id: 'promote_dialog',
      private_metadata: JSON.stringify({ p: 'shop', a: 'shop-staging', v: v4.version, c: 'CSHIP' }),
      submit: { text: '' },
      blocks: [],
    };
    const count = slack.callsOf('chat.postEphemeral').length;
    await submit(dialog, 'UVIEWER', 'viewer', checked(['shop']));
    const refused = await slack.waitFor(() => slack.callsOf('chat.postEphemeral')[count], 'the refusal of a user with no grant');
    // A dialog's channel is only its metadata's claim, and CSHIP is no feed of shop: "not found", naming no one.
    // (A real Promote click by someone with no grant is refused at the click, before any dialog opens.)
    expect(String(refused.args.text)).toContain('no pipeline "shop" that you can see');
    expect(await operations()).toBe(before);
  });

  it('refuses what a forged request carries past Slack: an oversized note, a forged Approve value, a replayed Reject', async () => {
    const before = await operations();
    const v4 = (await releases('shop-staging'))[0]!;
    const dialog = {
      callback_id: 'promote_dialog',
      private_metadata: JSON.stringify({ p: 'shop', a: 'shop-staging', v: v4.version, c: 'CSHIP' }),
      submit: { text: '' },
      blocks: [],
    };
    const count = slack.callsOf('chat.postEphemeral').length;
    // Slack's dialog stops at 500 characters; a forged submission does not.
    await submit(dialog, 'UDEE', 'dee', checked(['shop'], 'x'.repeat(10_000)));
    const long = await slack.waitFor(() => slack.callsOf('chat.postEphemeral')[count], 'the refusal of a long note');
    expect(String(long.args.text)).toContain('a note is at most 500 characters');
    expect(await operations()).toBe(before);
    for (const value of ['{"i":"1 OR 1=1"}', '{"i":1,"x":"<!channel>"', '']) {
      expect((await answer(await click('approve', value, 'UERIN', 'erin'))).text).toContain('this button is from an older flowops message');
    }
    expect((await answer(await click('approve', '{"i":2147483647}', 'UERIN', 'erin'))).text).toContain('no approval request 2147483647');

    // A request, and its Reject dialog submitted twice with the very same signed body (a replay).
    await t.cli(['approvals:require', 'shop', 'production']);
    await flow('deploy shop to production/shop-eu', 'UDEE', 'dee');
    const request = await reading('CSHIP', /^🙋 dee asks to ship: Deploy [0-9a-f]{7} to shop-eu \(production\)/);
    const dialogs = slack.callsOf('views.open').length;
    await click('reject', buttons(request)[1]!.value!, 'UERIN', 'erin');
    const reject = await opened(dialogs);
    const body = viewSubmission({
      callbackId: reject.callback_id,
      privateMetadata: reject.private_metadata,
      values: { reason: { reason: { type: 'plain_text_input', value: 'not today' } } },
      user: 'UERIN',
      userName: 'erin',
    });
    const timestamp = Math.floor(Date.now() / 1000);
    const answers = slack.callsOf('chat.postEphemeral').length;
    const first = await postToSlackEndpoint(t.server.url, body, { secret: SECRET, contentType: form, timestamp });
    const replay = await postToSlackEndpoint(t.server.url, body, { secret: SECRET, contentType: form, timestamp });

    expect([first.status, replay.status]).toEqual([200, 200]);
    await reading('CSHIP', /^⛔ Deploy [0-9a-f]{7} to shop-eu \(production\): rejected by erin$/);
    const rejections = await t.server.database.dataSource.query("SELECT count(*)::int AS n FROM events WHERE type = 'approval.rejected'");
    expect(rejections[0].n).toBe(2); // this one and the earlier test's: the replay added none
    expect(slack.callsOf('chat.postEphemeral').slice(answers)).toHaveLength(1); // one answer, no "was rejected already"
    expect(await operations()).toBe(before);
  });
});
