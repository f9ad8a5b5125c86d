import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppView, ProcessesView } from '../src/api/types.ts';
import { fetchApp } from './helpers/app-http.ts';
import { buttonClick, FakeSlack, postToSlackEndpoint, slashCommand } from './helpers/fake-slack.ts';
import { frontsEnv } from './helpers/fronts.ts';
import { GitRepo } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { waitFor } from './helpers/wait.ts';

const root = path.resolve(import.meta.dirname, '..');
const SECRET = 'slack-signing-secret-for-tests';
const form = 'application/x-www-form-urlencoded';

/**
 * An app with a web process that says which dyno answered, prints what it is
 * asked to, crashes on /crash and echoes a raw Upgrade; and a worker.
 */
const app = {
  'index.js': [
    "const http = require('node:http');",
    'const server = http.createServer((req, res) => {',
    "  if (req.url === '/crash') { console.log('about to crash'); res.end('bye'); setTimeout(() => process.exit(1), 20); return; }",
    "  if (req.url.startsWith('/print/')) { console.log(decodeURIComponent(req.url.slice(7))); res.end('printed'); return; }",
    "  res.end(`${process.env.DYNO} ${process.env.GREETING ?? 'hello'}`);",
    '});',
    "server.on('upgrade', (req, socket) => {",
    "  socket.write('HTTP/1.1 101 Switching Protocols\\r\\nupgrade: websocket\\r\\nconnection: upgrade\\r\\n\\r\\n');",
    '  socket.pipe(socket);',
    '});',
    "server.listen(process.env.PORT, () => console.log('listening on ' + process.env.PORT));",
    '',
  ].join('\n'),
  'worker.js': "console.log('worker started'); setInterval(() => {}, 1000);\n",
  Procfile: 'web: node index.js\nworker: node worker.js\n',
};

describe('running apps: ps, scale, restart, crash recovery, logs and the router', () => {
  let dir: string;
  let slack: FakeSlack;
  let t: TestServer;
  let url: string;

  const ps = () => t.json<ProcessesView>(['ps', 'shop-staging']);
  const dynoOf = (p: ProcessesView, name: string) => p.dynos.find((d) => d.name === name);
  const crashMessages = () =>
    slack.callsOf('chat.postMessage').filter((c) => c.args.channel === 'CFEED' && String(c.args.text).includes('crashed'));

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-runtime-'));
    slack = await FakeSlack.start();
    t = await startTestServer({ env: frontsEnv({ slack: { fake: slack, signingSecret: SECRET, admins: 'UADMIN' } }) });
    const repo = await GitRepo.create(path.join(dir, 'repo'), app);
    for (const argv of [
      ['pipelines:create', 'shop', '--repo', repo.dir],
      ['apps:create', 'shop-staging', '--pipeline', 'shop', '--stage', 'staging'],
      ['apps:create', 'shop', '--pipeline', 'shop', '--stage', 'production'],
      ['subscribe', 'shop', '--channel', 'CFEED'],
      ['deploy', 'shop', 'to', 'staging'],
    ]) {
      const done = await t.cli(argv);
      expect(done.code, done.out + done.err).toBe(0);
    }
    url = (await t.json<{ apps: AppView[] }>(['pipelines:info', 'shop'])).apps.find((a) => a.name === 'shop-staging')!.url!;
  });
  afterAll(async () => {
    await t?.close();
    await slack?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves every app on one port, by Host: <app>.localhost, and says so in pipelines:info', async () => {
    expect(url).toMatch(/^http:\/\/shop-staging\.localhost:\d+$/);
    expect(await (await fetchApp(url)).text()).toBe('web.1 hello');
    const port = new URL(url).port;
    const unknown = await fetchApp(`http://nothing-here.localhost:${port}/`);
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toContain('There is no app at nothing-here.localhost');
    // A Host header is text from anyone: it is escaped in the page.
    const hostile = await fetchApp(`http://127.0.0.1:${port}/`, { headers: { host: '<script>x</script>.localhost' } });
    expect(await hostile.text()).not.toContain('<script>');
  });

  it('shows each dyno with its state, since when and command, in Heroku’s layout', async () => {
    const text = await t.cli(['ps', 'shop-staging']);
    expect(text.out).toMatch(/^=== web: `node index\.js` \(1\)\nweb\.1: up \d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \+0000 \(~ /m);
    expect(text.out).toMatch(/^=== worker: `node worker\.js` \(1\)\nworker\.1: up /m);
  });

  it('scales web to two dynos that share the URL, and keeps the formation across a release', async () => {
    const scaled = await t.cli(['ps:scale', 'shop-staging', 'web=2']);
    expect(scaled.code, scaled.err).toBe(0);
    expect(scaled.out).toContain('=== web: `node index.js` (2)');
    await waitFor('web.2 up', async () => dynoOf(await ps(), 'web.2')?.state === 'up');
    const answers = new Set<string>();
    for (let i = 0; i < 10; i++) answers.add(await (await fetchApp(url)).text());
    expect([...answers].sort()).toEqual(['web.1 hello', 'web.2 hello']);

    // A new release (a config change) starts two web dynos again.
    expect((await t.cli(['config:set', 'shop-staging', 'GREETING=hi'])).code).toBe(0);
    const after = await ps();
    expect(after.formation).toEqual({ web: 2, worker: 1 });
    expect(after.dynos.map((d) => [d.name, d.state, d.version])).toEqual([
      ['web.1', 'up', 2],
      ['web.2', 'up', 2],
      ['worker.1', 'up', 2],
    ]);

    const refused = await t.cli(['ps:scale', 'shop-staging', 'clock=1']);
    expect(refused.err).toContain('shop-staging has no process type "clock": its Procfile has web, worker');
    expect((await t.cli(['ps:scale', 'shop-staging', 'web=1'])).code).toBe(0);
    expect((await ps()).dynos.map((d) => d.name)).toEqual(['web.1', 'worker.1']);
  });

  it('answers 503 with a page naming the app when no web dyno runs, and serves again when scaled up', async () => {
    expect((await t.cli(['ps:scale', 'shop-staging', 'web=0'])).code).toBe(0);
    const down = await fetchApp(url);
    expect(down.status).toBe(503);
    expect(await down.text()).toContain('shop-staging is not running');
    expect((await t.cli(['ps:scale', 'shop-staging', 'web=1'])).code).toBe(0);
    await waitFor('web.1 up again', async () => dynoOf(await ps(), 'web.1')?.state === 'up');
    expect((await fetchApp(url)).status).toBe(200);
  });

  it('passes WebSocket upgrades through to the dyno', async () => {
    const { port } = new URL(url);
    const socket = net.connect(Number(port), '127.0.0.1');
    let received = '';
    socket.on('data', (chunk) => (received += chunk.toString()));
    socket.write(
      `GET / HTTP/1.1\r\nhost: shop-staging.localhost:${port}\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    await waitFor('the upgrade', async () => received.includes('101 Switching Protocols'), 5000);
    socket.write('ping through the router');
    await waitFor('the echo', async () => received.includes('ping through the router'), 5000);
    socket.destroy();
  });

  it('restarts a dyno that crashes, tells the feed once with its last lines and Restart, then backs off', async () => {
    await fetchApp(`${url}/crash`);
    await waitFor('the crash message', async () => crashMessages().length > 0);
    // Restarted at once the first time.
    await waitFor('web.1 up after its first crash', async () => dynoOf(await ps(), 'web.1')?.state === 'up');
    expect(await (await fetchApp(url)).text()).toBe('web.1 hi');

    // Crashing again soon after is the same episode: no new message, and the next restart waits (10 s).
    await fetchApp(`${url}/crash`);
    const crashed = await waitFor('web.1 crashed', async () => {
      const d = dynoOf(await ps(), 'web.1');
      return d?.state === 'crashed' ? d : null;
    });
    expect(crashed.exitCode).toBe(1);
    expect((await t.cli(['ps', 'shop-staging'])).out).toMatch(/^web\.1: crashed \(exit 1\) /m);
    expect((await t.cli(['pipelines:info', 'shop'])).out).toContain('crashed: web.1');
    await sleep(2500); // two of flowops' crash collections
    const messages = crashMessages();
    expect(messages).toHaveLength(1);
    const blocks = JSON.stringify(messages[0]!.args.blocks);
    expect(messages[0]!.args.text).toContain('shop-staging web.1 crashed (exit 1)');
    expect(blocks).toContain('about to crash');
    expect(blocks).toContain('"action_id":"restart"');

    // ps:restart does not wait for the back-off.
    const restarted = await t.cli(['ps:restart', 'shop-staging', 'web.1']);
    expect(restarted.out).toContain('Restarting web.1 of shop-staging... done');
    await waitFor('web.1 up after ps:restart', async () => dynoOf(await ps(), 'web.1')?.state === 'up');

    const logs = (await t.cli(['logs', 'shop-staging', '--ps', 'web.1', '--num', '200'])).out;
    expect(logs).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 app\[web\.1\]: about to crash$/m);
    expect(logs).toContain('flowops[web.1]: Process exited with status 1');
    expect(logs).toContain('flowops[web.1]: State changed from up to crashed');
    expect(logs).toContain('flowops[web.1]: State changed from starting to up');
  });

  it('restarts a dyno from the crash message’s Restart button for someone with deploy, and for nobody else', async () => {
    const message = crashMessages()[0]!;
    const raw = message.args.blocks;
    const blocks = (typeof raw === 'string' ? JSON.parse(raw) : raw) as { elements?: { action_id?: string; value?: string }[] }[];
    const value = blocks.flatMap((b) => b.elements ?? []).find((e) => e.action_id === 'restart')!.value!;
    const click = async (user: string, userName: string, id: string) => {
      const res = await postToSlackEndpoint(
        t.server.url,
        buttonClick({ actionId: 'restart', value, user, userName, channel: 'CFEED', responseUrl: slack.responseUrl(id) }),
        { secret: SECRET, contentType: form },
      );
      expect(res.status).toBe(200);
      return slack.waitFor(() => slack.responses.find((r) => r.id === id), `the answer to ${id}`);
    };
    const before = dynoOf(await ps(), 'web.1')!.since;

    const stranger = await click('USTRANGER', 'mallory', 'restart-stranger');
    expect(JSON.stringify(stranger)).toContain('`/flow ps:restart shop-staging` needs deploy on shop; you have none');
    expect(dynoOf(await ps(), 'web.1')!.since).toBe(before);

    const admin = await click('UADMIN', 'ada', 'restart-admin');
    expect(JSON.stringify(admin)).toContain('Restarting web.1 of shop-staging');
    await waitFor('web.1 restarted', async () => {
      const d = dynoOf(await ps(), 'web.1')!;
      return d.state === 'up' && d.since !== before;
    });
  });

  it('answers /flow logs in Slack privately, with the newest lines that fit', async () => {
    await fetchApp(`${url}/print/${'x'.repeat(200)}-the-newest-line`);
    const res = await postToSlackEndpoint(
      t.server.url,
      slashCommand({
        text: 'logs shop-staging',
        user: 'UADMIN',
        userName: 'ada',
        channel: 'CFEED',
        responseUrl: slack.responseUrl('logs'),
      }),
      { secret: SECRET, contentType: form },
    );
    expect(res.status).toBe(200);
    const answer = await slack.waitFor(() => slack.responses.find((r) => r.id === 'logs'), 'the logs answer');
    expect(answer.response_type).toBe('ephemeral');
    const blocks = answer.blocks as { text?: { text: string } }[];
    const text = blocks.map((b) => b.text?.text ?? '').join('\n');
    expect(text).toContain('-the-newest-line');
    for (const b of blocks) expect((b.text?.text ?? '').length).toBeLessThanOrEqual(3000);
  });

  it('puts the router’s requests and flowops’ own lines in the log, and filters by source and dyno', async () => {
    await fetchApp(`${url}/print/hello%20from%20the%20app`);
    const all = (await t.cli(['logs', 'shop-staging', '-n', '300'])).out;
    expect(all).toContain('app[web.1]: hello from the app');
    expect(all).toMatch(
      /flowops\[router\]: at=info method=GET path="\/print\/hello%20from%20the%20app" host=shop-staging\.localhost:\d+ .*status=200 bytes=7/,
    );
    expect(all).toMatch(/flowops\[api\]: Release v2 created by admin/);
    expect(all).toContain('flowops[api]: Scale to web=2 by admin');
    expect(all).toContain('app[worker.1]: worker started');
    const appOnly = (await t.cli(['logs', 'shop-staging', '--source', 'app', '-n', '300'])).out;
    expect(appOnly).not.toContain('flowops[');
    const router = (await t.cli(['logs', 'shop-staging', '--ps', 'router'])).out.trim().split('\n');
    expect(router.every((line) => line.includes(' flowops[router]: '))).toBe(true);
    expect((await t.cli(['logs', 'shop-staging', '-n', '2'])).out.trim().split('\n')).toHaveLength(2);
  });

  it('follows the log with --tail: a line the app prints arrives while it runs', async () => {
    const tail = spawn(process.execPath, [path.join(root, 'bin/flowops.js'), 'logs', '--tail', '-a', 'shop-staging'], {
      env: { PATH: process.env.PATH, FLOW_URL: t.server.url, FLOW_TOKEN: t.server.admin.token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    tail.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    tail.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    try {
      await waitFor('the first lines', async () => out.includes('flowops['));
      const marker = `tail-${randomBytes(4).toString('hex')}`;
      await fetchApp(`${url}/print/${marker}`);
      await waitFor('the printed line', async () => out.includes(`app[web.1]: ${marker}`), 5000);
      expect(tail.exitCode).toBeNull();
    } finally {
      tail.kill('SIGINT');
    }
  });

  it('speaks Heroku’s CLI habits: -a/--app, Heroku’s command names, --help and --version', async () => {
    const cli = (...argv: string[]) => t.cli(argv);
    expect((await cli('releases', '-a', 'shop-staging')).out).toMatch(/^v2 {2}Set GREETING/m);
    expect((await cli('config:set', 'COLOR=blue', '--app', 'shop-staging')).code).toBe(0);
    expect((await cli('config:get', 'COLOR', '-a', 'shop-staging')).out.trim()).toBe('blue');
    expect((await cli('ps', '--app=shop-staging')).out).toContain('=== web');
    expect((await cli('releases:info', 'v1', '-a', 'shop-staging')).out).toContain('=== v1');
    expect((await cli('open', '-a', 'shop-staging')).out.trim()).toBe(url);
    expect((await cli('apps:info', '-a', 'shop-staging')).out).toContain(`Web URL:   ${url}`);
    expect((await cli('apps')).out).toMatch(/^shop-staging +shop +staging +http:\/\/shop-staging\.localhost:\d+$/m);
    expect((await cli('pipelines:diff', '-a', 'shop-staging')).code).toBe(0);
    const promoted = await cli('pipelines:promote', '-a', 'shop-staging', '--to', 'shop');
    expect(promoted.code, promoted.out + promoted.err).toBe(0);
    expect(promoted.out).toContain('shop: v1 succeeded');
    expect((await cli('rollback', 'v1', '-a', 'shop-staging')).code).toBe(0);
    const added = await cli('pipelines:add', 'shop', '-a', 'shop-eu', '--stage', 'production');
    expect(added.out.trim()).toBe('Created shop-eu in production of shop');
    expect((await cli('ps', '--help')).out).toContain('ps <app>');
    expect((await cli('-h')).out).toContain('Commands:');
    expect((await cli('--version')).out).toMatch(/^flowops\/\d+\.\d+\.\d+ node-v\d+/);
    // --help, -h and --version after any command, Heroku's names included.
    expect((await cli('logs', '--version')).out).toMatch(/^flowops\/\d+\.\d+\.\d+ node-v\d+/);
    expect((await cli('ps', '-a', 'shop', '--version')).out).toMatch(/^flowops\/\d+\.\d+\.\d+ node-v\d+/);
    for (const heroku of ['pipelines:add', 'pipelines:promote', 'pipelines:diff', 'releases:info']) {
      for (const asked of [
        [heroku, '--help'],
        [heroku, '-h'],
        ['help', heroku],
      ]) {
        const help = await cli(...asked);
        expect(help.code, `${asked.join(' ')}: ${help.err}`).toBe(0);
        expect(help.out).toMatch(new RegExp(`^${heroku} .*\\n  Heroku's name for`));
      }
    }
    expect((await cli('releases', 'shop-staging', '-a', 'shop')).err).toContain('unexpected "shop-staging"');
    expect((await cli('pipelines', '-a', 'shop')).err).toContain('-a/--app does not go with `pipelines`');
  });

  it('keeps an app whose first release went live while flowops read what runs (a runtime restarted mid-deploy)', async () => {
    // Recovery reads the apps and their releases, then tells the runtime "run these, and nothing else".
    // A first deploy that goes live between the two is newer than that picture and must keep serving.
    const asOf = Date.now();
    expect((await t.cli(['pipelines:promote', '-a', 'shop-staging'])).code).toBe(0);
    const production = (await t.json<{ apps: AppView[] }>(['pipelines:info', 'shop'])).apps.find((a) => a.name === 'shop')!.url!;
    expect(await (await fetchApp(production)).text()).toMatch(/^web\.1 /);

    await t.server.platform.recover([], ['shop'], asOf);
    expect(await (await fetchApp(production)).text()).toMatch(/^web\.1 /);
    expect((await t.json<ProcessesView>(['ps', 'shop'])).dynos.map((d) => d.state)).toContain('up');

    // A picture read after it went live and still without a release is the truth: nothing runs.
    await t.server.platform.recover([], ['shop'], Date.now());
    expect((await fetchApp(production)).status).toBe(404);
  });
});
