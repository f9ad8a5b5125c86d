import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReleaseView } from '../src/engine/views.ts';
import { buttonClick, FakeSlack, postToSlackEndpoint, slashCommand } from './helpers/fake-slack.ts';
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
  async function click(actionId: string, value: string, user: string, userName: string, channel = 'CDEPLOY') {
    const id = `r${n++}`;
    const res = await postToSlackEndpoint(
      t.server.url,
      buttonClick({ actionId, value, user, userName, channel, responseUrl: slack.responseUrl(id) }),
      { secret: SECRET, contentType: form },
    );
    return { res, id };
  }
  const answer = (id: string) =>
    slack.waitFor(
      () => slack.responses.find((r) => r.id === id) as { text: string; blocks: Blocks; response_type?: string } | undefined,
      `the answer ${id}`,
    );
  /** The message as it stands once it reads `ending`: the last update, or the first post if the operation finished before it. */
  const messageEnding = (channel: string, ending: string, also = '') =>
    slack.waitFor(
      () =>
        slack.calls.find(
          (c) =>
            (c.method === 'chat.update' || (c.method === 'chat.postMessage' && !c.args.thread_ts)) &&
            c.args.channel === channel &&
            String(c.args.text).includes(also) &&
            String(c.args.text).endsWith(ending),
        ),
      `a message in ${channel} ending "${ending}"`,
    );
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
    const done = await messageEnding('CDEPLOY', '— done');
    expect(await operations()).toBe(1);
    const posts = slack.callsOf('chat.postMessage').filter((c) => c.args.channel === 'CDEPLOY' && !c.args.thread_ts);
    expect(posts).toHaveLength(1);
    const ts = (await t.server.database.dataSource.query('SELECT ts FROM status_messages'))[0].ts;
    expect(slack.callsOf('chat.update').every((c) => c.args.ts === ts && c.args.channel === 'CDEPLOY')).toBe(true);
    const blocks = done.args.blocks as Blocks;
    expect(blocks[1]!.text!.text).toMatch(/:white_check_mark: \*shop-staging\* \(staging\) v1 `[0-9a-f]{7}` live/);
    expect(blocks.find((b) => b.type === 'actions')!.elements!.map((e) => e.action_id)).toEqual(['promote']);
    const thread = await slack.waitFor(
      () => slack.callsOf('chat.postMessage').find((c) => c.args.thread_ts === ts),
      'the release phase output in the thread',
    );
    expect(thread.args.text).toContain('migrated 3 tables');
  });

  it('grants access from Slack with a mention', async () => {
    const { id } = await flow('access:add shop <@UDEE|dee> deploy');
    expect((await answer(id)).text).toContain('Gave dee deploy');
    const { id: id2 } = await flow('access:add shop <@UVIC|vic> view');
    expect((await answer(id2)).text).toContain('Gave vic view');

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

  it('promotes with the Promote button for a user with deploy, re-checking the release', async () => {
    const staging = (await t.json<ReleaseView[]>(['releases', 'shop-staging']))[0]!;

    await click('promote', JSON.stringify({ p: 'shop', a: 'shop-staging', v: staging.version }), 'UDEE', 'dee');

    const update = await messageEnding('CDEPLOY', '— done', 'Promote shop-staging');
    const prod = await t.json<ReleaseView[]>(['releases', 'shop']);
    expect(prod[0]).toMatchObject({
      slug: staging.slug,
      status: 'succeeded',
      description: `Promote shop-staging v${staging.version} ${staging.commit!.slice(0, 7)}`,
    });
    expect((update.args.blocks as Blocks).find((b) => b.type === 'actions')!.elements!.map((e) => e.action_id)).toEqual(['rollback']);
    expect(JSON.stringify(update.args.blocks)).toContain('started by dee via slack');
  });

  it('answers a stale button by offering the current release instead of acting', async () => {
    const before = await t.json<ReleaseView[]>(['releases', 'shop']);
    const current = (await t.json<ReleaseView[]>(['releases', 'shop-staging']))[0]!;

    const { id } = await click('promote', JSON.stringify({ p: 'shop', a: 'shop-staging', v: current.version - 1 || 99 }), 'UDEE', 'dee');

    const reply = await answer(id);
    expect(reply.text).toContain(`shop-staging has moved on since: it now runs v${current.version}`);
    expect(reply.blocks[1]!.elements![0]).toMatchObject({
      action_id: 'promote',
      value: JSON.stringify({ p: 'shop', a: 'shop-staging', v: current.version }),
    });
    expect(await t.json(['releases', 'shop'])).toEqual(before);
  });

  it('makes a channel a feed that receives a deploy started from the CLI, through a rate limit', async () => {
    const { id } = await flow('subscribe shop', 'UADMIN', 'ada', 'CFEED');
    expect((await answer(id)).text).toContain('CFEED is now a feed of shop (deploy, promote, rollback, config, ci, pulls)');
    slack.failNext('chat.postMessage', 429, 1);

    await t.cli(['deploy', 'shop', 'to', 'staging']);

    const feed = await slack.waitFor(
      () => slack.callsOf('chat.postMessage').find((c) => c.args.channel === 'CFEED' && !c.args.thread_ts),
      'the feed message',
    );
    expect(String(feed.args.text)).toMatch(/^shop: Deploy [0-9a-f]{7} to shop-staging \(staging\)/);
    expect(slack.calls.some((c) => c.method === 'chat.postMessage (failed 429)')).toBe(true);
    await messageEnding('CFEED', '— done');
    expect(JSON.stringify(feed.args.blocks)).toContain('started by admin via cli');
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
    expect(
      view(dee)
        .blocks.filter((b) => b.accessory)
        .map((b) => b.accessory!.action_id),
    ).toEqual(['promote', 'rollback']);
    expect(JSON.stringify(view(dee).blocks)).toContain('"confirm":{"title":{"type":"plain_text","text":"Promote shop-staging v');
    expect(view(vic).blocks.filter((b) => b.accessory)).toEqual([]);
    expect(slack.unexpected).toEqual([]);
  });

  it('renders `/flow pipelines:info` as stages with app cards and "ahead by N commits"', async () => {
    const { id } = await flow('pipelines:info shop', 'UDEE', 'dee');

    const reply = await answer(id);
    const text = JSON.stringify(reply.blocks);
    expect(reply.response_type).toBe('ephemeral');
    expect(text).toContain('*STAGING*');
    expect(text).toContain('*PRODUCTION*');
    expect(text).toMatch(/shop-staging>\* {2}v\d+ · `[0-9a-f]{7}` · \d+ seconds? ago · succeeded\\n:arrow_up: ahead of shop by 0 commits/);
  });

  it('offers Retry and Output on a failed release phase, and Output shows why', async () => {
    await repo.commit(webApp('slack v2', 'console.error("boom: migration 7 failed"); process.exit(2)'), 'Break the migration');
    const { res } = await flow('deploy shop to staging');
    expect(res.status).toBe(200);
    const failed = await messageEnding('CDEPLOY', '— failed');
    const buttons = (failed.args.blocks as Blocks).find((b) => b.type === 'actions')!.elements!;
    expect(buttons.map((b) => b.action_id)).toEqual(['retry', 'output']);

    const { id } = await click('output', buttons[1]!.value!, 'UVIC', 'vic');

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
    expect(fed.slice(before)).toEqual([expect.stringMatching(/^shop: Rollback shop to v\d+/)]);
  });
});
