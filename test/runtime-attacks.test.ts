import { spawn } from 'node:child_process';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppView, ProcessesView } from '../src/api/types.ts';
import { parseCommand } from '../src/commands/grammar.ts';
import { lineSplitter } from '../src/runtime/app-logs.ts';
import { fetchApp } from './helpers/app-http.ts';
import { GitRepo } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { waitFor } from './helpers/wait.ts';

const root = path.resolve(import.meta.dirname, '..');

/** A web process that prints what it is asked to (raw bytes too), and a worker that takes its time to stop cleanly. */
const app = {
  'index.js': [
    "const http = require('node:http');",
    'http.createServer((req, res) => {',
    "  if (req.url.startsWith('/raw/')) { process.stdout.write(Buffer.from(req.url.slice(5), 'hex')); res.end('ok'); return; }",
    "  res.end('up');",
    '}).listen(process.env.PORT);',
    '',
  ].join('\n'),
  'worker.js': [
    "console.log('worker up');",
    "process.on('SIGTERM', () => { console.log('got SIGTERM, cleaning up'); setTimeout(() => { console.log('clean exit'); process.exit(0); }, 300); });",
    'setInterval(() => {}, 1000);',
    '',
  ].join('\n'),
  Procfile: 'web: node index.js\nworker: node worker.js\n',
};

describe('the runtime against hostile apps, requests and words', () => {
  let dir: string;
  let t: TestServer;
  let repo: GitRepo;
  const runtimePid = async () =>
    (JSON.parse(await readFile(path.join(t.dir, 'data', 'runtime', 'runtime.json'), 'utf8')) as { pid: number }).pid;
  const ps = (name = 'hostile-staging') => t.json<ProcessesView>(['ps', name]);
  const urlOf = async (pipeline: string) => (await t.json<{ apps: AppView[] }>(['pipelines:info', pipeline])).apps[0]!.url!;
  /** Whether the pipeline's app answers 200 at the URL pipelines:info shows now (none while its router is down). */
  const answers = async (pipeline: string) => {
    const url = await urlOf(pipeline);
    return url !== null && (await fetchApp(url).catch(() => null))?.status === 200;
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-runtime-attacks-'));
    t = await startTestServer();
    repo = await GitRepo.create(path.join(dir, 'repo'), app);
    for (const argv of [
      ['pipelines:create', 'hostile', '--repo', repo.dir],
      ['apps:create', 'hostile-staging', '--pipeline', 'hostile', '--stage', 'staging'],
      ['deploy', 'hostile', 'to', 'staging'],
    ]) {
      const done = await t.cli(argv);
      expect(done.code, done.out + done.err).toBe(0);
    }
  });
  afterAll(async () => {
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('gives a dyno stopped on purpose its SIGTERM grace period, sandboxed or not', async () => {
    const stopped = await t.cli(['ps:stop', 'hostile-staging', 'worker']);
    expect(stopped.out).toContain('Stopping worker.1 of hostile-staging... done');
    const log = (await t.cli(['logs', 'hostile-staging', '--ps', 'worker', '-n', '20'])).out;
    expect(log).toContain('app[worker.1]: got SIGTERM, cleaning up');
    expect(log).toContain('app[worker.1]: clean exit');
    expect(log).toMatch(/app\[worker\.1\]: clean exit\n.* flowops\[worker\.1\]: Process exited with status \d+\n/);
    expect((await ps()).dynos.find((d) => d.name === 'worker.1')!.state).toBe('idle');

    // ps:scale of the type wakes it, as ps:stop says.
    expect((await t.cli(['ps:scale', 'hostile-staging', 'worker=1'])).code).toBe(0);
    await waitFor('worker.1 up', async () => (await ps()).dynos.find((d) => d.name === 'worker.1')?.state === 'up');
  });

  it('shows a dyno’s escape sequences as text in `logs --tail --json` too, one JSON string per line', async () => {
    const url = await urlOf('hostile');
    const tail = spawn(process.execPath, [path.join(root, 'bin/flowops.js'), 'logs', 'hostile-staging', '--tail', '--json', '-n', '1'], {
      env: { PATH: process.env.PATH, FLOW_URL: t.server.url, FLOW_TOKEN: t.server.admin.token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    tail.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('latin1')));
    try {
      await waitFor('the first line', async () => out.includes('\n'));
      await fetchApp(`${url}/raw/${Buffer.from('\x1b]0;PWNED\x07\x1b[31mred\n').toString('hex')}`);
      await waitFor('the escaped line', async () => out.includes('PWNED'), 5000);
      expect(out).not.toContain('\x1b');
      const line = out.split('\n').find((l) => l.includes('PWNED'))!;
      expect((JSON.parse(line) as string).endsWith('app[web.1]: \x1b]0;PWNED\x07\x1b[31mred')).toBe(true);
    } finally {
      tail.kill('SIGINT');
    }
  });

  it('brings the apps back by itself when the runtime is killed, with no command typed', async () => {
    const url = await urlOf('hostile');
    process.kill(await runtimePid(), 'SIGKILL');
    // The dynos outlive it (they are stopped gracefully, never torn down); the router went with it.
    await expect(fetchApp(url)).rejects.toThrow();
    // (The tests' router listens on any free port, FLOW_ROUTER_PORT=0: the new runtime's may differ.)
    await waitFor('the app answering again', () => answers('hostile'), 30_000);
    expect((await ps()).dynos.map((d) => [d.name, d.state])).toEqual([
      ['web.1', 'up'],
      ['worker.1', 'up'],
    ]);
  });

  it('never brings back an app destroyed while the runtime was down, nor shows its log to a new app of that name', async () => {
    const other = await GitRepo.create(path.join(dir, 'zap'), app);
    for (const argv of [
      ['pipelines:create', 'zapper', '--repo', other.dir],
      ['apps:create', 'zap', '--pipeline', 'zapper', '--stage', 'staging'],
      ['deploy', 'zapper', 'to', 'staging'],
    ])
      expect((await t.cli(argv)).code).toBe(0);
    const url = await urlOf('zapper');
    expect((await t.cli(['logs', 'zap'])).out).toContain('Release v1 created by admin');

    process.kill(await runtimePid(), 'SIGKILL');
    expect((await t.cli(['apps:destroy', 'zap', '--confirm', 'zap'])).code).toBe(0);
    await waitFor('the other app answering again', () => answers('hostile'), 30_000);

    expect((await fetchApp(url.replace(/:\d+$/, `:${new URL(await urlOf('hostile')).port}`))).status).toBe(404);
    expect((await t.cli(['apps:create', 'zap', '--pipeline', 'zapper', '--stage', 'development'])).code).toBe(0);
    expect((await t.cli(['logs', 'zap'])).out).toBe('No log lines of zap match.\n');
    expect((await ps('zap')).dynos).toEqual([]);
  });

  it('refuses hostile words: empty --to, __proto__ as a process type, -a given twice or empty', async () => {
    const refused = async (...argv: string[]) => {
      const r = await t.cli(argv);
      expect(r.code, r.out).toBe(2);
      return r.err;
    };
    expect(await refused('pipelines:promote', '-a', 'hostile-staging', '--to', '')).toContain('--to needs the apps to promote to');
    expect(await refused('pipelines:promote', '-a', 'hostile-staging', '--to', ',,,')).toContain('--to needs the apps to promote to');
    expect(await refused('ps:scale', 'hostile-staging', '__proto__=1')).toContain('hostile-staging has no process type "__proto__"');
    expect(await refused('ps', '--app=a', '--app=b')).toContain('-a/--app given twice');
    expect(await refused('ps', '-a', 'a', '--app=b')).toContain('-a/--app given twice');
    expect(await refused('ps', '--app=')).toContain('--app= needs an app name');
    expect(await refused('ps', '-a')).toContain('-a needs an app name');
    expect(await refused('ps:restart', 'hostile-staging', 'clock')).toContain('hostile-staging has no dyno or process type "clock"');
    expect(parseCommand(['ps:scale', 'shop', 'constructor=1'])).toEqual({ name: 'ps:scale', app: 'shop', formation: { constructor: 1 } });
  });

  it('refuses a view-only user every change to the dynos, and masks config:get with a reason, not a fake value', async () => {
    const { token } = await t.json<{ token: string }>(['users:create', 'vic']);
    expect((await t.cli(['access:add', 'hostile', 'vic', 'view'])).code).toBe(0);
    for (const argv of [
      ['ps:restart', 'hostile-staging'],
      ['ps:stop', 'hostile-staging', 'web'],
      ['ps:scale', 'hostile-staging', 'web=2'],
    ]) {
      const denied = await t.cli(argv, token);
      expect(denied.err).toContain(`needs deploy on hostile; you have view`);
    }
    expect((await t.cli(['ps', 'hostile-staging'], token)).code).toBe(0);
    await t.cli(['config:set', 'hostile-staging', 'SECRET=s3cr3t']);
    const masked = await t.cli(['config:get', 'SECRET', '-a', 'hostile-staging'], token);
    expect(masked.code).toBe(2);
    expect(masked.out).toBe('');
    expect(masked.err).toContain('Values are masked');
  });

  it('routes by Host alone: hostile Hosts get 404 and never reach another app', async () => {
    const { port } = new URL(await urlOf('hostile'));
    for (const host of [
      '..localhost',
      'x.hostile-staging.localhost',
      '../hostile-staging.localhost',
      'hostile-staging.localhost.evil',
      '',
    ]) {
      const answer = await fetchApp(`http://127.0.0.1:${port}/`, { headers: { host } });
      expect([400, 404], host).toContain(answer.status);
    }
    // An upgrade to an app that does not exist is refused the same way.
    const socket = net.connect(Number(port), '127.0.0.1');
    let received = '';
    socket.on('data', (c) => (received += c.toString()));
    socket.write(`GET / HTTP/1.1\r\nhost: nothing.localhost\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n`);
    await waitFor('the refusal', async () => received.includes('404'), 5000);
    socket.destroy();
  });

  it('keeps characters whole when a multi-byte one is cut between two chunks of output', () => {
    const lines: string[] = [];
    const split = lineSplitter((line) => lines.push(line));
    const euro = Buffer.from('prix: 5€\n');
    split.write(euro.subarray(0, 9));
    split.write(euro.subarray(9));
    split.end();
    expect(lines).toEqual(['prix: 5€']);
  });
});
