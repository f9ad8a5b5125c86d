import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/cli.ts';
import { freshDatabase } from './helpers/database.ts';
import { FakeSlack, postToSlackEndpoint, slashCommand } from './helpers/fake-slack.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { killHard, spawnServer, type ServerProcess } from './helpers/server-process.ts';

const SECRET = 'slack-signing-secret-for-tests';
const TOKEN = 'test-admin-token-0123456789';

describe('release messages across a flowops crash and restart', () => {
  let slack: FakeSlack;
  let dir: string;
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let server: ServerProcess;
  const env = () => ({
    FLOW_DATA_DIR: path.join(dir, 'data'),
    PORT: '0',
    FLOW_ADMIN_TOKEN: TOKEN,
    SLACK_BOT_TOKEN: 'xoxb-test',
    SLACK_SIGNING_SECRET: SECRET,
    SLACK_API_URL: slack.apiUrl,
    FLOW_SLACK_ADMINS: 'UADMIN',
    ...(database.url ? { DATABASE_URL: database.url } : {}),
  });
  const flowops = (...argv: string[]) =>
    runCli(argv, { out: () => undefined, err: () => undefined, env: { FLOW_URL: server.url, FLOW_TOKEN: TOKEN } });

  beforeAll(async () => {
    slack = await FakeSlack.start();
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-slack-restart-'));
    database = await freshDatabase();
    server = await spawnServer(env());
    const repo = await GitRepo.create(path.join(dir, 'repo'), {
      ...webApp('restart v1'),
      Procfile: 'web: node index.js\nrelease: sleep 30\n',
    });
    await flowops('pipelines:create', 'shop', '--repo', repo.dir);
    await flowops('apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging');
  });
  afterAll(async () => {
    await flowops('apps:destroy', 'shop-staging', '--confirm', 'shop-staging');
    server.child.kill('SIGTERM');
    await slack.close();
    await database.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('updates the same message (stored channel and ts) after a crash, with the interrupted outcome', async () => {
    const body = slashCommand({
      text: 'deploy shop to staging',
      user: 'UADMIN',
      userName: 'ada',
      channel: 'CDEPLOY',
      responseUrl: slack.responseUrl('r'),
    });
    await postToSlackEndpoint(server.url, body, { secret: SECRET, contentType: 'application/x-www-form-urlencoded' });
    const posted = await slack.waitFor(
      () => slack.callsOf('chat.postMessage').find((c) => c.args.channel === 'CDEPLOY'),
      'the first message',
    );
    // The first post may already show the release phase, or an update brings it.
    await slack.waitFor(
      () => slack.calls.find((c) => c.args.channel === 'CDEPLOY' && JSON.stringify(c.args.blocks).includes('release phase')),
      'the release phase line',
    );
    // The notifier stores the message's ts just after Slack answers the post. A crash inside
    // that instant would post the message again (Slack has no idempotency key); this test is
    // about a crash later on, so it lets the write land first.
    await sleep(1000);

    await killHard(server);
    server = await spawnServer(env());

    const final = await slack.waitFor(
      () => slack.callsOf('chat.update').find((c) => String(c.args.text).startsWith('❌ shop-staging')),
      'the update after the restart',
    );
    expect(final.args.channel).toBe('CDEPLOY');
    expect(final.args.ts).toBe(posted.result!.ts);
    expect(JSON.stringify(final.args.blocks)).toContain('interrupted');
    expect(slack.callsOf('chat.postMessage').filter((c) => c.args.channel === 'CDEPLOY' && !c.args.thread_ts)).toEqual([posted]);
  });
});
