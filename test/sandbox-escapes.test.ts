import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOrThrow } from '../src/exec.ts';
import { buildSettings } from '../src/platform/local/sandbox.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { processesOf } from './helpers/processes.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { fetchApp } from './helpers/app-http.ts';

/** A package tarball, as npm packs one (`package/` inside), whose module says `text`. */
async function packageTarball(dir: string, text: string): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'flowops-pkg-'));
  await mkdir(path.join(work, 'package'));
  await writeFile(path.join(work, 'package', 'package.json'), JSON.stringify({ name: 'greeting', version: '1.0.0', main: 'index.js' }));
  await writeFile(path.join(work, 'package', 'index.js'), `module.exports = ${JSON.stringify(text)};\n`);
  await mkdir(dir, { recursive: true });
  await runOrThrow('tar', ['-czf', path.join(dir, 'greeting-1.0.0.tgz'), '-C', work, 'package']);
  await rm(work, { recursive: true, force: true });
}

/** A Node app that answers what its `greeting` dependency (a vendored tarball, no lockfile) says. */
const greetingApp = {
  'package.json': JSON.stringify({
    name: 'app',
    version: '1.0.0',
    scripts: { start: 'node index.js' },
    dependencies: { greeting: 'file:vendor/greeting-1.0.0.tgz' },
  }),
  'index.js': "require('node:http').createServer((q, s) => s.end(require('greeting'))).listen(process.env.PORT);\n",
};

describe('repository code trying to get out of its sandbox', () => {
  let t: TestServer;
  const dataDir = () => path.join(t.dir, 'data');
  const url = async (pipeline: string) => (await t.json<{ apps: { url: string }[] }>(['pipelines:info', pipeline])).apps[0]!.url;

  async function pipeline(name: string, files: Record<string, string>): Promise<GitRepo> {
    const repo = await GitRepo.create(path.join(t.dir, name), files);
    await t.cli(['pipelines:create', name, '--repo', repo.dir]);
    await t.cli(['apps:create', `${name}-staging`, '--pipeline', name, '--stage', 'staging']);
    return repo;
  }

  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.close());

  it('keeps config vars out of bwrap’s own environment and command line, so LD_PRELOAD cannot load into it', async () => {
    await pipeline('preload', webApp('preload'));
    await t.cli(['config:set', 'preload-staging', 'LD_PRELOAD=./evil.so', 'PRELOAD_SECRET=s3cr3t-in-config']);

    const deployed = await t.cli(['deploy', 'preload', 'to', 'staging']);

    expect(deployed.code, deployed.out + deployed.err).toBe(0);
    const outside = processesOf(dataDir(), 'dyno:preload-staging/');
    expect(outside.length).toBeGreaterThan(0);
    for (const pid of outside) {
      const environ = (await readFile(`/proc/${pid}/environ`, 'latin1')).split('\0').filter(Boolean);
      expect(environ.map((e) => e.split('=')[0]).sort()).toEqual(['FLOWOPS_SANDBOX', 'PATH']);
      expect(await readFile(`/proc/${pid}/cmdline`, 'latin1')).not.toContain('s3cr3t-in-config');
    }
  });

  it('never restores one repository’s node_modules into another’s build, even from an identical package.json', async () => {
    const evil = await pipeline('evilcache', greetingApp);
    await packageTarball(path.join(evil.dir, 'vendor'), 'poisoned by evilcache');
    await evil.commit({}, 'Vendor our greeting');
    await t.cli(['deploy', 'evilcache', 'to', 'staging']);
    const victim = await pipeline('victimcache', greetingApp);
    await packageTarball(path.join(victim.dir, 'vendor'), 'hello from the victim');
    await victim.commit({}, 'Vendor our greeting');

    const deployed = await t.cli(['deploy', 'victimcache', 'to', 'staging']);

    expect(deployed.code, deployed.out + deployed.err).toBe(0);
    expect(deployed.out).not.toContain('Restoring node_modules from cache');
    expect(await (await fetchApp(await url('victimcache'))).text()).toBe('hello from the victim');
  });

  it('never writes through a committed node_modules symlink when it restores the dependency cache', async () => {
    const target = await mkdtemp(path.join(os.tmpdir(), 'flowops-symlink-target-'));
    const repo = await pipeline('symcache', greetingApp);
    await packageTarball(path.join(repo.dir, 'vendor'), 'symcache');
    await repo.commit({}, 'Vendor our greeting');
    await t.cli(['deploy', 'symcache', 'to', 'staging']);
    await symlink(target, path.join(repo.dir, 'node_modules'));
    await repo.commit({}, 'A node_modules that points elsewhere');

    await t.cli(['deploy', 'symcache', 'to', 'staging']);

    expect(await readdir(target)).toEqual([]);
    await rm(target, { recursive: true, force: true });
  });

  it('stops every process of a destroyed app, even one that ignores SIGTERM', async () => {
    await pipeline('stubborn', {
      'index.js':
        "process.on('SIGTERM', () => {}); require('node:http').createServer((q, s) => s.end('still here')).listen(process.env.PORT);\n",
      Procfile: 'web: node index.js\n',
    });
    const deployed = await t.cli(['deploy', 'stubborn', 'to', 'staging']);
    expect(deployed.code, deployed.out + deployed.err).toBe(0);
    const url = (await t.json<{ apps: { url: string }[] }>(['pipelines:info', 'stubborn'])).apps[0]!.url;
    expect(await (await fetchApp(url)).text()).toBe('still here');
    expect(processesOf(dataDir(), 'dyno:stubborn-staging/').length).toBeGreaterThan(0);

    await t.cli(['apps:destroy', 'stubborn-staging', '--confirm', 'stubborn-staging']);

    expect((await fetchApp(url)).status).toBe(404);
    expect(processesOf(dataDir(), 'dyno:stubborn-staging/')).toEqual([]);
  });

  it('shows a release phase’s terminal escape sequences in the CLI instead of obeying them', async () => {
    await pipeline('escapes', webApp('escapes', "process.stdout.write('\\x1b]0;pwned\\x07\\x1b[2Jmigrated\\n')"));
    await t.cli(['deploy', 'escapes', 'to', 'staging']);

    const output = await t.cli(['releases:output', 'escapes-staging']);

    expect(output.out).toContain('\\x1b]0;pwned\\x07\\x1b[2Jmigrated');
    expect(output.out).not.toContain('\x1b');
  });

  it('keeps the data dir to flowops’ own user', async () => {
    expect((await stat(dataDir())).mode & 0o777).toBe(0o700);
  });
});

describe('the registry settings a build inherits', () => {
  it('carry no credential from a proxy or registry URL', () => {
    const settings = buildSettings({
      HTTPS_PROXY: 'http://user:pa55@proxy.example:3128',
      npm_config_registry: 'https://tok:en@registry.example/',
      npm_config__authToken: 'x',
      PATH: '/bin',
    });

    expect(settings).toEqual({ HTTPS_PROXY: 'http://proxy.example:3128', npm_config_registry: 'https://registry.example/' });
  });
});
