import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../src/engine/access.ts';
import { HOME_MIN_INTERVAL_MS } from '../src/slack/home.ts';
import { FakeSlack, postToSlackEndpoint, slashCommand, type SlackCall } from './helpers/fake-slack.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { frontsEnv } from './helpers/fronts.ts';

const SECRET = 'slack-signing-secret-for-home';
const form = 'application/x-www-form-urlencoded';
type View = { type: string; blocks: { type: string; text?: { text: string }; accessory?: Record<string, unknown> }[] };

describe('the App Home stays true while people look at it', () => {
  let slack: FakeSlack;
  let t: TestServer;
  let repo: GitRepo;
  let n = 0;
  const env = () => ({
    ...frontsEnv({ slack: { fake: slack, signingSecret: SECRET, admins: 'UADMIN' } }),
  });

  const post = (body: string, contentType = form) => postToSlackEndpoint(t.server.url, body, { secret: SECRET, contentType });
  /** The person opens flowops' Home tab (Slack's app_home_opened event). */
  const open = (user: string) =>
    post(
      JSON.stringify({
        token: 'x',
        team_id: 'T1',
        api_app_id: 'A1',
        type: 'event_callback',
        event_id: `Ev${n++}`,
        event_time: 1,
        event: { type: 'app_home_opened', user, channel: 'D1', tab: 'home', event_ts: '1.1' },
      }),
      'application/json',
    );
  /** The person picks a pipeline in the Home's select. */
  const pick = (user: string, value: string) =>
    post(
      `payload=${encodeURIComponent(
        JSON.stringify({
          type: 'block_actions',
          user: { id: user, username: user, name: user, team_id: 'T1' },
          api_app_id: 'A1',
          token: 'x',
          container: { type: 'view', view_id: 'V1' },
          trigger_id: '1.2.3',
          team: { id: 'T1', domain: 'acme' },
          view: { id: 'V1', type: 'home' },
          actions: [
            {
              action_id: 'home_pick',
              block_id: 'b',
              type: 'static_select',
              selected_option: { text: { type: 'plain_text', text: value }, value },
              action_ts: '1.2',
            },
          ],
        }),
      )}`,
    );
  const flow = (text: string, user: string, userName: string) =>
    post(slashCommand({ text, user, userName, channel: 'CDEPLOY', responseUrl: slack.responseUrl(`r${n++}`) }));
  const homes = (user: string) => slack.callsOf('views.publish').filter((c) => c.args.user_id === user);
  const viewOf = (call: SlackCall) => call.args.view as View;
  const latest = (user: string) => JSON.stringify(viewOf(homes(user).at(-1)!).blocks);

  beforeAll(async () => {
    slack = await FakeSlack.start();
    t = await startTestServer({ env: env() });
    repo = await GitRepo.create(path.join(t.dir, 'repo'), webApp('home v1'));
    for (const argv of [
      ['pipelines:create', 'shop', '--repo', repo.dir],
      ['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging'],
      ['apps:create', 'shop', '--pipeline', 'shop', '--stage', 'production'],
      ['pipelines:create', 'ledger', '--repo', repo.dir],
    ])
      expect((await t.cli(argv)).code).toBe(0);
    // Each person says who they are once (a slash command), then gets access by name.
    for (const [user, name] of [
      ['UDEE', 'dee'],
      ['UVIC', 'vic'],
      ['UZED', 'zed'],
    ] as const)
      await flow('pipelines', user, name);
    await t.server.slack!.idle();
    for (const argv of [
      ['access:add', 'shop', 'dee', 'deploy'],
      ['access:add', 'ledger', 'vic', 'view'],
      ['access:add', 'shop', 'zed', 'deploy'],
    ])
      expect((await t.cli(argv)).code).toBe(0);
  });
  afterAll(async () => {
    await t?.close();
    await slack?.close();
  });

  it('re-publishes the Home of a person who opened it when a release lands, at most once every few seconds, and not of others', async () => {
    await open('UDEE');
    await open('UVIC');
    await slack.waitFor(() => homes('UDEE').length && homes('UVIC').length, 'both homes');
    await t.server.slack!.idle();
    const vicBefore = homes('UVIC').length;
    const deeBefore = homes('UDEE').length;
    expect(latest('UDEE')).toContain('_no release yet_');

    expect((await t.cli(['deploy', 'shop', 'to', 'staging'])).code).toBe(0);
    await slack.waitFor(
      () => /shop-staging>\* {2}v1 · `[0-9a-f]{7}` · [^·]+ · succeeded/.test(latest('UDEE')),
      "dee's home showing v1 live",
    );
    await t.server.slack!.idle();

    const dee = homes('UDEE').slice(deeBefore - 1);
    expect(dee.length).toBeGreaterThan(1);
    // A burst of events (created, build, release phase, live) is at most one publish every few seconds.
    expect(HOME_MIN_INTERVAL_MS).toBeGreaterThanOrEqual(2000);
    for (let i = 1; i < dee.length; i++) expect(dee[i]!.at! - dee[i - 1]!.at!).toBeGreaterThanOrEqual(HOME_MIN_INTERVAL_MS - 50);
    // vic sees only ledger, zed never opened the Home: neither hears of shop's release.
    expect(homes('UVIC').length).toBe(vicBefore);
    expect(homes('UZED')).toEqual([]);
    expect(slack.unexpected).toEqual([]);
  });

  it('keeps re-publishing after a restart, for the people who had opened it', async () => {
    await t.close({ restart: true });
    t = await startTestServer({ restartOf: t, env: env() });
    const before = homes('UDEE').length;
    await repo.commit(webApp('home v2'), 'Second version');

    expect((await t.cli(['deploy', 'shop', 'to', 'staging'])).code).toBe(0);

    await slack.waitFor(() => /shop-staging>\* {2}v2 · /.test(latest('UDEE')), "dee's home showing v2 after the restart");
    expect(homes('UDEE').length).toBeGreaterThan(before);
    expect(latest('UDEE')).toMatch(/1 commit ahead of production|not in production yet: first release/);
    expect(homes('UZED')).toEqual([]);
  });

  it('offers a picker when more pipelines than fit, shows the picked one first, and ignores a pick of a pipeline the person cannot see', async () => {
    const admin: Actor = { id: 0, name: 'admin', admin: true, via: 'system' };
    const engine = t.server.engine;
    for (let i = 1; i <= 16; i++) {
      const name = `p${String(i).padStart(2, '0')}`;
      await engine.createPipeline(admin, { name, repo: repo.dir });
      for (const [suffix, stage] of [
        ['staging', 'staging'],
        ['prod', 'production'],
        ['eu', 'production'],
      ] as const)
        await engine.createApp(admin, { name: `${name}-${suffix}`, pipeline: name, stage });
    }

    await open('UADMIN');
    await slack.waitFor(() => homes('UADMIN').length, "ada's home");
    const first = viewOf(homes('UADMIN').at(-1)!);
    const select = first.blocks[0]!.accessory as { type: string; options: { value: string }[] };
    expect(select.type).toBe('static_select');
    expect(select.options.map((o) => o.value)).toEqual([
      'ledger',
      ...Array.from({ length: 16 }, (_, i) => `p${String(i + 1).padStart(2, '0')}`),
      'shop',
    ]);
    expect(first.blocks.length).toBeLessThanOrEqual(100);
    expect(first.blocks[1]).toMatchObject({ type: 'header', text: { text: 'ledger' } });

    // Publishes still under way (the creations above reached ada's board too) go out in order, each reading the pick as it is then.
    const count = homes('UADMIN').length;
    await pick('UADMIN', 'p14');
    await slack.waitFor(() => homes('UADMIN').length > count, 'the home after the pick');
    await t.server.slack!.idle();
    const picked = viewOf(homes('UADMIN').at(-1)!);
    expect(picked.blocks[1]).toMatchObject({ type: 'header', text: { text: 'p14' } });
    expect(picked.blocks[0]!.accessory).toMatchObject({ initial_option: { value: 'p14' } });

    // dee sees shop only: a forged pick of ledger shows nothing of it.
    const deeCount = homes('UDEE').length;
    await pick('UDEE', 'ledger');
    await slack.waitFor(() => homes('UDEE').length > deeCount, "dee's home after a forged pick");
    expect(latest('UDEE')).not.toContain('ledger');
    expect(latest('UDEE')).toContain('shop-staging');
    expect(slack.unexpected).toEqual([]);
  });
});
