import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { promoteDialog } from '../src/blocks/dialogs.ts';
import { SYSTEM } from '../src/engine/access.ts';
import { FakeSlack, postToSlackEndpoint, slashCommand } from './helpers/fake-slack.ts';
import { deliver, FakeGitHub, githubSignature, webhookExample } from './helpers/fake-github.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { frontsEnv } from './helpers/fronts.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const GH_SECRET = 'github-webhook-secret-for-tests';
const SLACK_SECRET = 'slack-signing-secret-for-tests';
const HOSTILE = '<!channel> <https://evil|Open the review app>';
const ESCAPED = '&lt;!channel&gt; &lt;https://evil|Open the review app&gt;';
/** What must never reach Slack unescaped: a ping of everyone, or a link whose label lies. */
const PINGS = ['<!channel>', '<!here>', '<!everyone>', '<https://evil', '<@U0ADMIN>'];

describe('hostile text from GitHub, commits and release phases reaches Slack as text', () => {
  let t: TestServer;
  let slack: FakeSlack;
  let github: FakeGitHub;
  let repo: GitRepo;
  let dir: string;
  let n = 0;
  const form = 'application/x-www-form-urlencoded';
  /** Everything flowops sent to Slack: Web API calls and response_url answers. */
  const sentToSlack = () => JSON.stringify([slack.calls, slack.responses]);
  const feedPosts = () => slack.callsOf('chat.postMessage').filter((c) => c.args.channel === 'CFEED');
  const drawings = (channel: string) =>
    slack.calls.filter(
      (c) => c.args.channel === channel && (c.method === 'chat.update' || (c.method === 'chat.postMessage' && !c.args.thread_ts)),
    );
  const feedDrawings = () => drawings('CFEED');
  /** The deploy channel's message once its fallback text reads `text`. */
  const message = (text: RegExp) =>
    slack.waitFor(() => drawings('CDEPLOY').find((c) => text.test(String(c.args.text))), `a message reading ${text}`);

  /** Types `/flow <text>` in a channel, signed as Slack signs it; returns the response_url id. */
  async function type(text: string, channel = 'CDEPLOY') {
    const id = `r${n++}`;
    const res = await postToSlackEndpoint(
      t.server.url,
      slashCommand({ text, user: 'UADMIN', userName: 'ada', channel, responseUrl: slack.responseUrl(id) }),
      { secret: SLACK_SECRET, contentType: form },
    );
    expect(res.status).toBe(200);
    return id;
  }
  /** Types `/flow <text>` and waits for its ephemeral answer. */
  async function flow(text: string, channel = 'CDEPLOY') {
    const id = await type(text, channel);
    return slack.waitFor(
      () => slack.responses.find((r) => r.id === id) as { text: string; blocks: unknown[]; response_type: string } | undefined,
      `the answer to /flow ${text}`,
    );
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-hostile-'));
    repo = await GitRepo.create(
      path.join(dir, 'acme-shop'),
      webApp('hostile v1', 'console.log("<!here> migrated <https://evil|the database> & <@U0ADMIN>")'),
      `${HOSTILE} & friends`,
    );
    github = await FakeGitHub.start('acme/shop', repo);
    slack = await FakeSlack.start();
    t = await startTestServer({
      env: frontsEnv({
        github: { fake: github, webhookSecret: GH_SECRET },
        slack: { fake: slack, signingSecret: SLACK_SECRET, admins: 'UADMIN' },
      }),
    });
    await t.cli(['pipelines:create', 'shop', '--repo', 'github:acme/shop']);
    await t.cli(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
    await t.cli(['apps:create', 'shop-prod', '--pipeline', 'shop', '--stage', 'production']);
    await t.cli(['reviewapps:enable', 'shop', '--autodeploy']);
    await flow('subscribe shop pulls', 'CFEED');
  });
  afterAll(async () => {
    await t.close();
    await slack.close();
    await github.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('posts a pull request with a hostile title, branch and author, and its review app, pinging nobody and linking nowhere', async () => {
    const sha = (await repo.git('rev-parse', 'HEAD')).trim();
    const payload = webhookExample('pull_request', (e) => e.action === 'opened');
    (payload.repository as { full_name: string }).full_name = 'acme/shop';
    Object.assign(payload, { action: 'opened', number: 9 });
    const pull = payload.pull_request as {
      head: { ref: string; sha: string; repo: { full_name: string } };
      title: string;
      number: number;
      user: { login: string };
    };
    Object.assign(pull, { title: HOSTILE, number: 9 });
    Object.assign(pull.head, { ref: 'fix/<!here>', sha });
    pull.head.repo.full_name = 'acme/shop';
    pull.user.login = '<!everyone>';
    const body = JSON.stringify(payload);

    expect((await deliver(t.server.url, 'pull_request', 'hostile-1', body, githubSignature(GH_SECRET, body))).status).toBe(202);

    const card = await slack.waitFor(
      () => feedDrawings().find((c) => JSON.stringify(c.args.blocks).includes(':eyes: Review app <http://')),
      'the pull request card with its review app',
    );
    const blocks = JSON.stringify(card.args.blocks);
    expect(String(card.args.text)).toBe(`PR #9 ${ESCAPED} · review app up`);
    expect(blocks).toContain(`:arrow_heading_up: <${github.url}/acme/shop/pull/9|#9 ${ESCAPED}>`);
    expect(blocks).toContain('`fix/&lt;!here&gt;` by &lt;!everyone&gt;');
    expect(blocks).toMatch(/:eyes: Review app <http:\/\/[^|]+\|shop-pr-9> is up/);
    expect(feedPosts().filter((c) => !c.args.thread_ts)).toHaveLength(1);
    for (const ping of PINGS) expect(sentToSlack()).not.toContain(ping);
  });

  it('shows a hostile commit message in the message and the promote dialog, and a failed release phase’s <!here> in the thread, as text', async () => {
    await type('deploy shop to staging');

    const live = await message(/^✅ shop-staging v1 is live$/);
    const blocks = JSON.stringify(live.args.blocks);
    expect(blocks).toContain(`> ${ESCAPED} &amp; friends`);
    // The promote dialog lists the commit: as text.
    const dialog = promoteDialog(
      await t.server.engine.promotePreview(SYSTEM, { pipeline: 'shop', fromApp: 'shop-staging', ifVersion: 1 }),
      'CFEED',
    );
    expect(JSON.stringify(dialog.blocks)).toContain(`${ESCAPED} &amp; friends (Dana Dev)`);

    await repo.commit(
      webApp('hostile v2', 'console.log("<!here> migrated <https://evil|the database> & <@U0ADMIN>"); process.exit(1)'),
      `${HOSTILE} broke it`,
    );
    await type('deploy shop to staging');
    const failed = await message(/^❌ shop-staging v2 failed in the release phase — v1 still serving$/);
    const reply = await slack.waitFor(
      () => slack.callsOf('chat.postMessage').find((c) => c.args.thread_ts === failed.result?.ts || c.args.thread_ts === failed.args.ts),
      'the failure reply',
    );
    const output = await flow('releases:output shop-staging');

    expect(JSON.stringify(reply.args.blocks)).toContain('&lt;!here&gt; migrated &lt;https://evil|the database&gt; &amp; &lt;@U0ADMIN&gt;');
    expect(output.response_type).toBe('ephemeral');
    expect(JSON.stringify(output.blocks)).toContain('&lt;!here&gt; migrated');
    for (const ping of PINGS) expect(sentToSlack()).not.toContain(ping);
  });

  it('quotes a hostile command back as text when it refuses it', async () => {
    const answer = await flow('<!channel> now');

    expect(answer.text).toContain('"&lt;!channel&gt;" is not a flowops command');
    for (const ping of PINGS) expect(sentToSlack()).not.toContain(ping);
    expect(slack.unexpected).toEqual([]);
  });
});
