import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase } from './helpers/database.ts';
import { FakeSlack, postToSlackEndpoint, slashCommand } from './helpers/fake-slack.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { cliAt, spawnServer, type ServerProcess } from './helpers/server-process.ts';

const SLACK_SECRET = 'slack-signing-secret-for-tests';
const BOT_TOKEN = 'xoxb-1234567890-secret-bot-token';
// Values a test sets; none may show up in the server's output, an event or anything sent to Slack.
const DB_ERROR_SECRET = 'pw-from-cli-3f9a1c7e';
const SLACK_DB_ERROR_SECRET = 'pw-from-slack-8b2d4e60';
const SET_SECRET = 'sk_live_feed_5c1e9a';

describe('secrets never reach the server log, an event or Slack', () => {
  let dir: string;
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let slack: FakeSlack;
  let server: ServerProcess;
  let log = '';
  let adminToken: string;
  let bobToken: string;
  let n = 0;

  const env = () => ({
    FLOW_DATA_DIR: path.join(dir, 'data'),
    PORT: '0',
    LOG_LEVEL: 'info',
    SLACK_BOT_TOKEN: BOT_TOKEN,
    SLACK_SIGNING_SECRET: SLACK_SECRET,
    SLACK_API_URL: slack.apiUrl,
    FLOW_SLACK_ADMINS: 'UADMIN',
    ...(database.url ? { DATABASE_URL: database.url } : {}),
  });
  const flowops = async (argv: string[], token = adminToken) => {
    return cliAt(server.url, token, argv);
  };
  const flow = async (text: string) => {
    const id = `s${n++}`;
    await postToSlackEndpoint(
      server.url,
      slashCommand({ text, user: 'UADMIN', userName: 'ada', channel: 'CDEPLOY', responseUrl: slack.responseUrl(id) }),
      { secret: SLACK_SECRET, contentType: 'application/x-www-form-urlencoded' },
    );
    return slack.waitFor(() => slack.responses.find((r) => r.id === id) as { text: string } | undefined, `the answer to ${text}`);
  };
  /** Everything the server printed, across restarts. */
  const output = () => log + server.output();
  /** The output once it holds `text` `times` times (the child's output arrives after its answers). */
  const waitForLog = async (text: string, times = 1) => {
    for (let i = 0; i < 400 && output().split(text).length <= times; i++) await sleep(50);
    return output();
  };
  const stop = async () => {
    const exited = once(server.child, 'exit');
    server.child.kill('SIGTERM');
    await exited;
    log += server.output();
  };
  /** Runs SQL on flowops' database with the server stopped (PGlite is one process's), as an operator would. */
  const sql = async (statement: string) => {
    if (database.url) {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      await client.query(statement);
      await client.end();
    } else {
      const db = await PGlite.create(path.join(dir, 'data', 'pgdata'));
      await db.exec(statement);
      await db.close();
    }
  };
  const events = async () => {
    await stop();
    let rows: unknown[];
    if (database.url) {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      rows = (await client.query('SELECT message, data FROM events')).rows;
      await client.end();
    } else {
      const db = await PGlite.create(path.join(dir, 'data', 'pgdata'));
      rows = (await db.query('SELECT message, data FROM events')).rows;
      await db.close();
    }
    server = await spawnServer(env());
    return JSON.stringify(rows);
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-secrets-'));
    database = await freshDatabase();
    slack = await FakeSlack.start();
    // No FLOW_ADMIN_TOKEN: the server generates one.
    server = await spawnServer(env());
    adminToken = (await readFile(path.join(dir, 'data', 'admin-token'), 'utf8')).trim();
    const repo = await GitRepo.create(path.join(dir, 'repo'), webApp('secrets v1'));
    await flowops(['pipelines:create', 'shop', '--repo', repo.dir]);
    await flowops(['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging']);
    await flowops(['subscribe', 'shop', '--channel', 'CFEED']);
  });
  afterAll(async () => {
    await stop();
    await slack.close();
    await database.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('does not print the generated admin token; it is in the data dir', async () => {
    expect(adminToken).toMatch(/^flo_/);
    expect(output()).toContain(`Admin token generated: stored in ${path.join(dir, 'data')}/admin-token`);
    expect(output()).not.toContain(adminToken);
  });

  it("logs a failed login without the token, and never logs a new user's token", async () => {
    const created = await flowops(['users:create', 'bob', '--json']);
    bobToken = (JSON.parse(created.out) as { token: string }).token;
    const nearMiss = `${bobToken.slice(0, -1)}${bobToken.endsWith('A') ? 'B' : 'A'}`;
    const wrong = 'flo_NotAFlowopsTokenAtAllXXXXXXXXXXXX';

    const refused = [await flowops(['pipelines'], nearMiss), await flowops(['pipelines'], wrong)];

    expect(refused.map((r) => r.code)).toEqual([2, 2]);
    const text = await waitForLog('authentication failed', 2);
    expect(text.match(/authentication failed/g)).toHaveLength(2);
    for (const token of [bobToken, nearMiss, wrong, nearMiss.slice(4, 30), adminToken, BOT_TOKEN]) expect(text).not.toContain(token);
  });

  it('logs a database error on config:set without the values it was given (CLI and Slack)', async () => {
    // A constraint Postgres enforces on write: its error quotes the failing row, config and all.
    await stop();
    await sql(`ALTER TABLE apps ADD CONSTRAINT flowops_test_no_blocked CHECK (NOT (config ? 'BLOCKED'))`);
    server = await spawnServer(env());

    const cli = await flowops(['config:set', 'shop-staging', `BLOCKED=${DB_ERROR_SECRET}`]);
    const reply = await flow(`config:set shop-staging BLOCKED=${SLACK_DB_ERROR_SECRET}`);

    expect(cli.code).toBe(2);
    expect(cli.err).toContain('flowops hit an unexpected error; the server log has the details');
    expect(reply.text).toContain('flowops hit an unexpected error');
    await waitForLog('request failed');
    const text = await waitForLog('slash command failed');
    // The error itself is logged: which constraint, on which table, which statement.
    expect(text).toContain('flowops_test_no_blocked');
    expect(text).toContain('"code":"23514"');
    expect(text).toContain('"query":"UPDATE \\"apps\\" SET');
    for (const secret of [DB_ERROR_SECRET, SLACK_DB_ERROR_SECRET]) expect(text).not.toContain(secret);
    expect(text).not.toContain('Failing row contains');
    expect(await flowops(['config', 'shop-staging', '--json'])).toMatchObject({ code: 0, out: '{}\n' });
  });

  it('keeps a config value out of events, the feed and the log when config:set succeeds', async () => {
    const run = await flowops(['config:set', 'shop-staging', `API_KEY=${SET_SECRET}`]);
    expect(run.code, run.err).toBe(0);
    const feed = await slack.waitFor(
      () => slack.callsOf('chat.postMessage').find((c) => c.args.channel === 'CFEED' && JSON.stringify(c.args.blocks).includes('API_KEY')),
      'the feed message',
    );

    const shown = await flow('config shop-staging');

    expect(JSON.stringify(feed.args.blocks)).toContain('Set API_KEY config vars on shop-staging');
    expect(shown.text).toContain('API_KEY:  ********');
    expect(await events()).not.toContain(SET_SECRET);
    expect(JSON.stringify(slack.calls) + JSON.stringify(slack.responses)).not.toContain(SET_SECRET);
    expect(output()).not.toContain(SET_SECRET);
  });
});
