import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { run, runOrThrow } from '../../exec.ts';
import type { Source } from '../../source/source.ts';
import type { BuiltSlug, OutputSink } from '../platform.ts';
import { parseProcfile } from './procfile.ts';

export interface SlugStore {
  /** `<dataDir>/slugs`: `<sha256>.tgz` archives and `<sha256>/` trees. */
  slugsDir: string;
  /** `<dataDir>/cache`: node_modules per lockfile, npm's download cache. */
  cacheDir: string;
  tmpDir: string;
}

const formatSize = (bytes: number) => (bytes < 1 << 20 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / (1 << 20)).toFixed(1)} MB`);

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function buildNode(dir: string, store: SlugStore, onOutput: OutputSink): Promise<void> {
  const pkgText = await readFile(path.join(dir, 'package.json'), 'utf8');
  const pkg = JSON.parse(pkgText) as { scripts?: Record<string, string>; dependencies?: object; devDependencies?: object };
  const lockfile = path.join(dir, 'package-lock.json');
  const hasLock = existsSync(lockfile);
  const key = createHash('sha256')
    .update(process.version)
    .update(JSON.stringify([pkg.dependencies ?? {}, pkg.devDependencies ?? {}]))
    .update(hasLock ? await readFile(lockfile) : '')
    .digest('hex');
  const cached = path.join(store.cacheDir, 'node_modules', key);
  const env = { ...process.env, npm_config_cache: path.join(store.cacheDir, 'npm'), npm_config_update_notifier: 'false' };

  onOutput('-----> Building dependencies\n');
  if (existsSync(cached)) {
    onOutput('       Restoring node_modules from cache (lockfile unchanged)\n');
    await runOrThrow('cp', ['-a', '--reflink=auto', cached, path.join(dir, 'node_modules')]);
  } else {
    const args = hasLock ? ['ci'] : ['install'];
    onOutput(`       Installing node modules (npm ${args[0]})\n`);
    const installed = await run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, env, onOutput });
    if (installed.code !== 0) throw new Error(`npm ${args[0]} failed with exit code ${installed.code}`);
    if (existsSync(path.join(dir, 'node_modules'))) {
      const staging = path.join(store.cacheDir, 'node_modules', `${key}.${process.pid}.tmp`);
      await mkdir(path.dirname(staging), { recursive: true });
      await runOrThrow('cp', ['-a', '--reflink=auto', path.join(dir, 'node_modules'), staging]);
      await rename(staging, cached).catch(() => rm(staging, { recursive: true, force: true }));
    }
  }
  const script = ['heroku-postbuild', 'build'].find((name) => pkg.scripts?.[name]);
  if (script) {
    onOutput(`-----> Running ${script}\n`);
    const built = await run('npm', ['run', script], { cwd: dir, env, onOutput });
    if (built.code !== 0) throw new Error(`npm run ${script} failed with exit code ${built.code}`);
  }
}

/**
 * Builds a commit into a slug: the tree at that commit, dependencies installed
 * for Node apps, archived deterministically (sorted, fixed mtimes) and stored by
 * the sha256 of the archive. An identical build yields the same slug.
 */
export async function buildSlug(source: Source, sha: string, store: SlugStore, onOutput: OutputSink): Promise<BuiltSlug> {
  await mkdir(store.tmpDir, { recursive: true });
  const work = await mkdtemp(path.join(store.tmpDir, 'build-'));
  try {
    const dir = path.join(work, 'app');
    await mkdir(dir);
    onOutput(`-----> Fetching ${sha.slice(0, 7)}\n`);
    await source.extract(sha, dir);

    let procfile = existsSync(path.join(dir, 'Procfile')) ? parseProcfile(await readFile(path.join(dir, 'Procfile'), 'utf8')) : {};
    if (existsSync(path.join(dir, 'package.json'))) {
      onOutput('-----> Node.js app detected\n');
      await buildNode(dir, store, onOutput);
      if (!procfile.web) {
        const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
        if (pkg.scripts?.start) procfile = { ...procfile, web: 'npm start' };
      }
    } else {
      onOutput('-----> No build needed: the app is used as it is\n');
    }

    onOutput('-----> Compressing slug\n');
    const archive = path.join(work, 'slug.tgz');
    await runOrThrow('sh', [
      '-c',
      'tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" -cf - . | gzip -n -1 > "$2"',
      'sh',
      dir,
      archive,
    ]);
    const id = await sha256File(archive);
    const size = (await stat(archive)).size;
    await ensureSlugsDir(store.slugsDir);
    const tree = path.join(store.slugsDir, id);
    if (!existsSync(tree)) await rename(dir, tree).catch(() => undefined);
    if (!existsSync(`${tree}.tgz`)) await rename(archive, `${tree}.tgz`).catch(() => undefined);
    onOutput(`-----> Slug ${id.slice(0, 12)} (${formatSize(size)}), processes: ${Object.keys(procfile).join(', ') || 'none'}\n`);
    return { id, size, procfile };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Creates the slugs dir with a package.json of its own: Node looks upward for the
 * nearest package.json to decide whether `.js` is CommonJS or ESM, and the data
 * dir often sits inside another project (flowops' own checkout, by default).
 * The boundary makes an app run as it would on Heroku, on its own.
 */
async function ensureSlugsDir(slugsDir: string): Promise<void> {
  await mkdir(slugsDir, { recursive: true });
  const boundary = path.join(slugsDir, 'package.json');
  if (!existsSync(boundary)) await writeFile(boundary, '{ "private": true, "description": "flowops slugs: a package boundary so apps are not read as part of an enclosing project" }\n');
}

/** The slug's tree, unpacked from its archive if only the archive is left. */
export async function slugTree(slugsDir: string, id: string): Promise<string> {
  const tree = path.join(slugsDir, id);
  if (!existsSync(tree)) {
    const staging = `${tree}.${process.pid}.tmp`;
    await ensureSlugsDir(slugsDir);
    await mkdir(staging, { recursive: true });
    await runOrThrow('tar', ['-xzf', `${tree}.tgz`, '-C', staging]);
    await rename(staging, tree).catch(() => rm(staging, { recursive: true, force: true }));
  }
  return tree;
}
