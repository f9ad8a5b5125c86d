import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processAlive } from '../src/exec.ts';
import { freshDatabase } from './helpers/database.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { processesOf } from './helpers/processes.ts';
import { cliAt, spawnServer, type ServerProcess } from './helpers/server-process.ts';

const root = path.resolve(import.meta.dirname, '..');
const TOKEN = 'startup-admin-token-0123456789';

/** Runs `npm start`'s entry point to its exit (a start-up that fails), with what it printed. */
async function startExpectingExit(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

describe('one flowops per data dir and per port', () => {
  let dir: string;
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let server: ServerProcess;
  const dataDir = () => path.join(dir, 'data');
  const env = () => ({
    FLOW_DATA_DIR: dataDir(),
    PORT: '0',
    FLOW_ADMIN_TOKEN: TOKEN,
    ...(database.url ? { DATABASE_URL: database.url } : {}),
  });
  const flowops = async (...argv: string[]) => {
    const { out, err } = await cliAt(server.url, TOKEN, argv);
    return out + err;
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-startup-'));
    database = await freshDatabase();
  });
  afterAll(async () => {
    if (server?.child.exitCode === null) {
      await flowops('apps:destroy', 'solo-staging', '--confirm', 'solo-staging');
      server.child.kill('SIGTERM');
      await once(server.child, 'exit');
    }
    await database.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('sweeps half-built build dirs and stops processes it started but never recorded, at start', async () => {
    await mkdir(path.join(dataDir(), 'tmp', 'build-abc123', 'app'), { recursive: true });
    await writeFile(path.join(dataDir(), 'tmp', 'build-abc123', 'app', 'half.js'), 'half a build\n');
    // A process of this data dir that a flowops killed between spawn and bookkeeping left behind.
    const stray = spawn('sleep', ['600'], { env: { FLOWOPS_SANDBOX: `${dataDir()}\nghost/web.1` }, detached: true, stdio: 'ignore' });
    const other = spawn('sleep', ['600'], { env: { FLOWOPS_SANDBOX: `/some/other/data\nghost/web.1` }, detached: true, stdio: 'ignore' });
    await Promise.all([once(stray, 'spawn'), once(other, 'spawn')]);

    server = await spawnServer(env());

    expect(await readdir(path.join(dataDir(), 'tmp')).catch(() => [])).toEqual([]);
    for (let i = 0; i < 50 && processAlive(stray.pid!); i++) await new Promise((r) => setTimeout(r, 100));
    expect(processAlive(stray.pid!)).toBe(false);
    expect(processAlive(other.pid!)).toBe(true);
    other.kill('SIGKILL');
  });

  it('refuses a second server on the same data dir at once, naming the first, and changes nothing', async () => {
    const repo = await GitRepo.create(path.join(dir, 'repo'), webApp('only one'));
    await flowops('pipelines:create', 'solo', '--repo', repo.dir);
    await flowops('apps:create', 'solo-staging', '--pipeline', 'solo', '--stage', 'staging');
    await flowops('deploy', 'solo', 'to', 'staging');
    const before = await flowops('pipelines:info', 'solo', '--json');
    const dynos = processesOf(dataDir(), 'dyno:solo-staging/');

    const second = await startExpectingExit(env());

    expect(second.code).toBe(75);
    expect(second.output.trim()).toBe(
      `flowops: another flowops (pid ${server.child.pid}) is using the data dir ${dataDir()}; stop it first, or set FLOW_DATA_DIR to another directory`,
    );
    expect(await flowops('pipelines:info', 'solo', '--json')).toBe(before);
    expect(processesOf(dataDir(), 'dyno:solo-staging/')).toEqual(dynos);
    expect(await flowops('releases', 'solo-staging')).toContain('v1');
  });

  it('stops with one line and exit code 69 when the port is taken, leaving nothing behind', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, resolve));
    const port = (taken.address() as net.AddressInfo).port;
    const fresh = path.join(dir, 'fresh');

    const result = await startExpectingExit({ FLOW_DATA_DIR: fresh, PORT: String(port) });
    taken.close();

    expect(result.code).toBe(69);
    expect(result.output.trim()).toBe(
      `flowops: port ${port} is already in use (another flowops, or another server); stop it or set PORT to a free port`,
    );
    expect((await readdir(fresh)).sort()).toEqual([]);
  });

  it.each([
    [
      'bubblewrap, when bwrap is missing',
      { FLOW_SANDBOX: 'bubblewrap' },
      78,
      'flowops: FLOW_SANDBOX=bubblewrap, but `bwrap` is not installed or cannot create a sandbox here; install it (Debian/Ubuntu: apt-get install bubblewrap) or set FLOW_SANDBOX=auto',
    ],
    [
      'a value it does not know',
      { FLOW_SANDBOX: 'docker' },
      78,
      'flowops: FLOW_SANDBOX must be auto, bubblewrap or none, got "docker"; leave it unset for auto (bubblewrap when installed)',
    ],
  ])('refuses FLOW_SANDBOX=%s', async (_name, settings, code, line) => {
    const bin = path.join(dir, 'no-bwrap-bin');
    await mkdir(bin, { recursive: true });
    if (!existsSync(path.join(bin, 'node'))) await symlink(process.execPath, path.join(bin, 'node'));

    const result = await startExpectingExit({ FLOW_DATA_DIR: path.join(dir, 'sandboxless'), PORT: '0', PATH: bin, ...settings });

    expect(result.code).toBe(code);
    expect(result.output.trim()).toBe(line);
  });

  it('stops when `npm start` is stopped with SIGTERM, leaving no server behind', async () => {
    const npm = spawn('npm', ['start'], {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', FLOW_DATA_DIR: path.join(dir, 'npm-start'), PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    npm.stdout.on('data', (c: Buffer) => (output += c.toString()));
    npm.stderr.on('data', (c: Buffer) => (output += c.toString()));
    for (let i = 0; i < 300 && !/listening on http:\/\/\S+/.test(output); i++) await new Promise((r) => setTimeout(r, 100));
    const url = /listening on (http:\/\/\S+)/.exec(output)![1]!;
    const server = Number((await readFile(`/proc/${npm.pid}/task/${npm.pid}/children`, 'utf8')).trim().split(' ')[0]);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    const exited = once(npm, 'exit');
    npm.kill('SIGTERM');
    await exited;

    for (let i = 0; i < 100 && processAlive(server); i++) await new Promise((r) => setTimeout(r, 100));
    expect(processAlive(server)).toBe(false);
    expect(output).toContain('flowops stopping; apps keep running');
  });
});
