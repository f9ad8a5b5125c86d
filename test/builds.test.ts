import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runOrThrow } from '../src/exec.ts';
import { GitRepo } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

/** A package `name` as an npm tarball in `dir`, exporting `text`. */
async function packageTarball(dir: string, name: string, text: string): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'flowops-pkg-'));
  await mkdir(path.join(work, 'package'));
  await writeFile(path.join(work, 'package', 'package.json'), JSON.stringify({ name, version: '1.0.0', main: 'index.js' }));
  await writeFile(path.join(work, 'package', 'index.js'), `module.exports = ${JSON.stringify(text)};\n`);
  await mkdir(dir, { recursive: true });
  await runOrThrow('tar', ['-czf', path.join(dir, `${name}-1.0.0.tgz`), '-C', work, 'package']);
  await rm(work, { recursive: true, force: true });
}

/** Every file under `dir`, relative, sorted. */
async function listing(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

describe('builds as Heroku’s Node.js buildpack makes them', () => {
  let dir: string;
  let t: TestServer;
  const slugTree = async (output: string) => {
    const prefix = /Slug ([0-9a-f]{12})/.exec(output)![1]!;
    const id = (await readdir(path.join(t.dir, 'data', 'slugs'))).find((e) => e.startsWith(prefix) && !e.endsWith('.tgz'))!;
    return path.join(t.dir, 'data', 'slugs', id);
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-builds-'));
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('follows the repository’s default branch when no --branch is given (Heroku’s samples use master)', async () => {
    const repo = await GitRepo.create(path.join(dir, 'legacy'), { 'index.js': 'console.log(1)\n' });
    await repo.git('branch', '-m', 'main', 'master');

    const created = await t.cli(['pipelines:create', 'legacy', '--repo', repo.dir]);

    expect(created.out).toContain('(branch master)');
    expect((await t.cli(['pipelines:info', 'legacy'])).out).toContain('branch master');
  });

  it('prunes devDependencies after the build, and a cached build makes the same node_modules as a cold one', async () => {
    const repo = await GitRepo.create(path.join(dir, 'pruned'), {
      'package.json': JSON.stringify({
        name: 'app',
        version: '1.0.0',
        engines: { node: '>=99' },
        scripts: { start: 'node index.js', build: "node -e \"console.log('built with', require('devtool'))\"" },
        dependencies: { greeting: 'file:vendor/greeting-1.0.0.tgz' },
        devDependencies: { devtool: 'file:vendor/devtool-1.0.0.tgz' },
      }),
      'index.js': "require('node:http').createServer((q, s) => s.end(require('greeting'))).listen(process.env.PORT);\n",
    });
    await packageTarball(path.join(repo.dir, 'vendor'), 'greeting', 'hello');
    await packageTarball(path.join(repo.dir, 'vendor'), 'devtool', 'the dev tool');
    await repo.commit({}, 'Vendor the packages');
    for (const argv of [
      ['pipelines:create', 'pruned', '--repo', repo.dir],
      ['apps:create', 'pruned-staging', '--pipeline', 'pruned', '--stage', 'staging'],
    ])
      expect((await t.cli(argv)).code).toBe(0);

    const cold = await t.cli(['deploy', 'pruned', 'to', 'staging']);
    expect(cold.code, cold.out + cold.err).toBe(0);
    await repo.commit({ 'README.md': 'A change that keeps the dependencies\n' }, 'Docs');
    const cached = await t.cli(['deploy', 'pruned', 'to', 'staging']);
    expect(cached.code, cached.out + cached.err).toBe(0);

    expect(cold.out).toContain('Pruning devDependencies');
    expect(cold.out).toMatch(/Warning: package\.json asks for Node\.js ">=99" \(engines\.node\), but this flowops has v\d+/);
    expect(cached.out).toContain('Restoring node_modules from cache');
    const coldModules = await listing(path.join(await slugTree(cold.out), 'node_modules'));
    const cachedModules = await listing(path.join(await slugTree(cached.out), 'node_modules'));
    expect(coldModules).toContain('greeting/index.js');
    expect(coldModules.some((f) => f.startsWith('devtool/'))).toBe(false);
    expect(cachedModules).toEqual(coldModules);
  });

  it('says what it found in a repository it cannot build, so a failing boot is no surprise', async () => {
    const repo = await GitRepo.create(path.join(dir, 'rubyish'), {
      Gemfile: "source 'https://rubygems.org'\ngem 'sinatra'\n",
      Procfile: 'web: bundle exec ruby app.rb\n',
    });
    for (const argv of [
      ['pipelines:create', 'rubyish', '--repo', repo.dir],
      ['apps:create', 'rubyish-staging', '--pipeline', 'rubyish', '--stage', 'staging'],
    ])
      expect((await t.cli(argv)).code).toBe(0);

    const deployed = await t.cli(['deploy', 'rubyish', 'to', 'staging']);

    expect(deployed.out).toContain(
      'Found Gemfile (Ruby): flowops builds Node.js apps only, so nothing ran (no bundle install); the app is used as it is and must bring what it needs',
    );
    expect(deployed.code).toBe(1);
  });
});
