import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import { runOrThrow } from '../../exec.ts';
import type { Source } from '../../source/source.ts';
import type { BuildProgress, BuiltSlug } from '../platform.ts';
import { SLUG_ID, type SlugStore } from '../slug-store.ts';
import { parseProcfile } from './procfile.ts';
import { readRepoFile, readRepoJson } from './repo-file.ts';
import { buildSettings, type Sandbox } from './sandbox.ts';

/** A build's log lines as Heroku's buildpacks write them (`-----> step`, indented details), each also reported as a step. */
function reporter(progress: BuildProgress) {
  return {
    onOutput: progress.output,
    step(text: string) {
      progress.output(`-----> ${text}\n`);
      progress.step?.(text, false);
    },
    detail(text: string) {
      progress.output(`       ${text}\n`);
      progress.step?.(text, true);
    },
  };
}

/** Lockfiles of large apps run to megabytes. */
const LOCKFILE_LIMIT = 64 << 20;

/** This machine's dirs for builds and slugs: the local cache of the slug store. */
export interface SlugDirs {
  /** `<dataDir>/slugs`: `<sha256>.tgz` archives and `<sha256>/` trees, as this machine unpacked them. */
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

interface BuildContext {
  sandbox: Sandbox;
  /** Whose builds these are (the pipeline's repository): npm's download cache is not shared across scopes. */
  scope: string;
  /** How long the build's steps may take in all (FLOW_BUILD_TIMEOUT): a build script that never ends must not hold a build slot for ever. */
  timeoutMs: number;
  /** When this build started (Date.now()). */
  startedAt: number;
}

/**
 * Installs a Node app's dependencies and runs its build, as Heroku's Node.js
 * buildpack does, every step inside the sandbox. node_modules is cached per
 * repository and lockfile, as npm extracted it with scripts off (`npm ci --ignore-scripts`), and
 * install scripts run afterwards on the build's own copy (`npm rebuild`): so no
 * build's scripts can change what a later build, of this repository or another,
 * restores from the cache.
 */
async function buildNode(dir: string, store: SlugDirs, progress: BuildProgress, context: BuildContext): Promise<void> {
  const { step, detail, onOutput } = reporter(progress);
  const pkg = (await readRepoJson(dir, 'package.json')) as {
    scripts?: Record<string, unknown>;
    dependencies?: object;
    devDependencies?: object;
    engines?: { node?: unknown };
  };
  // As Heroku's buildpack reports it; here the app runs on the Node.js flowops runs, whatever it asks for.
  const wanted = typeof pkg.engines?.node === 'string' ? pkg.engines.node.slice(0, 100) : null;
  if (wanted === null) detail(`Using Node.js ${process.version} (package.json names no engines.node)`);
  else if (semver.validRange(wanted) && semver.satisfies(process.version, wanted))
    detail(`Using Node.js ${process.version} (engines.node "${wanted}")`);
  else
    detail(
      `Warning: package.json asks for Node.js "${wanted}" (engines.node), but this flowops has ${process.version}; the app builds and runs on ${process.version}`,
    );
  const lock = await readRepoFile(dir, 'package-lock.json', LOCKFILE_LIMIT);
  // Everything that decides what npm extracts, and whose builds these are: a cache entry is never shared
  // between repositories (another repository can copy a lockfile and vendor its own tarballs).
  const key = createHash('sha256')
    .update(process.version)
    .update(context.scope)
    .update(JSON.stringify(pkg))
    .update(lock ?? '')
    .update((await readRepoFile(dir, 'npm-shrinkwrap.json', LOCKFILE_LIMIT)) ?? '')
    .update((await readRepoFile(dir, '.npmrc')) ?? '')
    .digest('hex');
  // A committed node_modules (or a symlink of that name) is the repository's own: never restored over,
  // never copied into the cache.
  const committed = await lstat(path.join(dir, 'node_modules')).then(
    () => true,
    () => false,
  );
  const cached = path.join(store.cacheDir, 'node_modules', key);
  const npmCache = path.join(store.cacheDir, 'npm', createHash('sha256').update(context.scope).digest('hex').slice(0, 16));
  await mkdir(npmCache, { recursive: true });
  const env = { ...buildSettings(), npm_config_update_notifier: 'false' };
  const npm = async (args: string, failure: string) => {
    const left = Math.max(1, context.startedAt + context.timeoutMs - Date.now());
    const done = await context.sandbox.run(
      { app: dir, writable: true, cache: npmCache, env, command: `npm ${args}`, tag: 'build' },
      { onOutput, timeoutMs: left },
    );
    if (done.timedOut)
      throw new Error(`the build took longer than ${Math.round(context.timeoutMs / 1000)} s and was stopped (FLOW_BUILD_TIMEOUT)`);
    if (done.code !== 0) throw new Error(`${failure} failed with exit code ${done.code}`);
  };

  step('Building dependencies');
  if (!committed && existsSync(cached)) {
    detail('Restoring node_modules from cache (lockfile unchanged)');
    await runOrThrow('cp', ['-a', '-T', '--reflink=auto', cached, path.join(dir, 'node_modules')]);
  } else {
    const install = lock !== null ? 'ci' : 'install';
    detail(`Installing node modules (npm ${install})`);
    await npm(`${install} --ignore-scripts --no-audit --no-fund --loglevel=error`, `npm ${install}`);
    if (!committed && existsSync(path.join(dir, 'node_modules'))) {
      const staging = path.join(store.cacheDir, 'node_modules', `${key}.${process.pid}.tmp`);
      await mkdir(path.dirname(staging), { recursive: true });
      await runOrThrow('cp', ['-a', '-T', '--reflink=auto', path.join(dir, 'node_modules'), staging]);
      await rename(staging, cached).catch(() => rm(staging, { recursive: true, force: true }));
    }
  }
  if (existsSync(path.join(dir, 'node_modules'))) await npm('rebuild --loglevel=error', 'npm rebuild (install scripts)');
  for (const script of ['prepare', ['heroku-postbuild', 'build'].find((name) => typeof pkg.scripts?.[name] === 'string')]) {
    if (!script || typeof pkg.scripts?.[script] !== 'string') continue;
    step(`Running ${script}`);
    await npm(`run ${script}`, `npm run ${script}`);
  }
  // As Heroku's buildpack does after the build: devDependencies leave the slug (the build used them).
  if (!committed && existsSync(path.join(dir, 'node_modules')) && pkg.devDependencies && Object.keys(pkg.devDependencies).length) {
    step('Pruning devDependencies');
    await npm('prune --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error', 'npm prune');
  }
}

/** What a repository without package.json was made with, as its files tell: flowops builds Node.js apps only. */
const OTHER_STACKS: [file: string, stack: string, install: string][] = [
  ['Gemfile', 'Ruby', 'bundle install'],
  ['requirements.txt', 'Python', 'pip install'],
  ['Pipfile', 'Python', 'pipenv install'],
  ['pyproject.toml', 'Python', 'pip install'],
  ['go.mod', 'Go', 'go build'],
  ['pom.xml', 'Java', 'mvn package'],
  ['composer.json', 'PHP', 'composer install'],
  ['Cargo.toml', 'Rust', 'cargo build'],
];

/**
 * Builds a commit into a slug: the tree at that commit, dependencies installed
 * for Node apps, archived deterministically (sorted, fixed mtimes) and stored by
 * the sha256 of the archive, in the local cache and in the slug store (once:
 * an identical build yields the same slug, already there).
 */
export async function buildSlug(
  source: Source,
  sha: string,
  store: SlugDirs,
  slugStore: SlugStore,
  progress: BuildProgress,
  context: BuildContext,
): Promise<BuiltSlug> {
  const { step, detail } = reporter(progress);
  await mkdir(store.tmpDir, { recursive: true });
  const work = await mkdtemp(path.join(store.tmpDir, 'build-'));
  try {
    const dir = path.join(work, 'app');
    await mkdir(dir);
    step(`Fetching ${sha.slice(0, 7)}`);
    await source.extract(sha, dir);

    const procfileText = await readRepoFile(dir, 'Procfile');
    let procfile = procfileText !== null ? parseProcfile(procfileText) : {};
    if ((await readRepoFile(dir, 'package.json')) !== null) {
      step('Node.js app detected');
      await buildNode(dir, store, progress, context);
      if (!procfile.web) {
        const pkg = (await readRepoJson(dir, 'package.json')) as { scripts?: Record<string, unknown> };
        if (typeof pkg.scripts?.start === 'string') procfile = { ...procfile, web: 'npm start' };
      }
    } else {
      const found = OTHER_STACKS.find(([file]) => existsSync(path.join(dir, file)));
      if (found)
        step(
          `Found ${found[0]} (${found[1]}): flowops builds Node.js apps only, so nothing ran (no ${found[2]}); the app is used as it is and must bring what it needs`,
        );
      else step('No build needed: the app is used as it is');
    }

    step('Compressing slug');
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
    // Other replicas, and pods on Kubernetes, run the slug from the store: the build is done once it is there.
    if (await slugStore.put(id, `${tree}.tgz`)) detail(`Stored in ${slugStore.description}`);
    step(`Slug ${id.slice(0, 12)} (${formatSize(size)}), processes: ${Object.keys(procfile).join(', ') || 'none'}`);
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
  if (!existsSync(boundary))
    await writeFile(
      boundary,
      '{ "private": true, "description": "flowops slugs: a package boundary so apps are not read as part of an enclosing project" }\n',
    );
}

/** Slugs being unpacked on this machine: two releases of one slug at once unpack it once. */
const unpacking = new Map<string, Promise<string>>();

/**
 * The slug's tree in the local cache: unpacked from the archive, which is
 * fetched from the slug store first (its sha256 verified) when another replica
 * built the slug.
 */
export function slugTree(slugsDir: string, slugStore: SlugStore, id: string): Promise<string> {
  if (!SLUG_ID.test(id)) return Promise.reject(new Error(`not a slug id: "${id.slice(0, 80)}"`));
  const tree = path.join(slugsDir, id);
  if (existsSync(tree)) return Promise.resolve(tree);
  let pending = unpacking.get(tree);
  if (!pending) {
    pending = unpack(slugsDir, slugStore, id).finally(() => unpacking.delete(tree));
    unpacking.set(tree, pending);
  }
  return pending;
}

async function unpack(slugsDir: string, slugStore: SlugStore, id: string): Promise<string> {
  const tree = path.join(slugsDir, id);
  if (existsSync(tree)) return tree;
  await ensureSlugsDir(slugsDir);
  if (!existsSync(`${tree}.tgz`)) await slugStore.fetch(id, `${tree}.tgz`);
  const staging = `${tree}.${process.pid}.tmp`;
  await mkdir(staging, { recursive: true });
  await runOrThrow('tar', ['-xzf', `${tree}.tgz`, '-C', staging]);
  await rename(staging, tree).catch(() => rm(staging, { recursive: true, force: true }));
  return tree;
}
