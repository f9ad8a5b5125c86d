import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { log } from '../../log.ts';
import { processAlive, runOrThrow } from '../../exec.ts';
import type { Source } from '../../source/source.ts';
import type { BuildProgress, BuiltSlug, OutputSink, Platform, ReleaseSpec } from '../platform.ts';
import { buildSlug, slugTree, type SlugStore } from './build-slug.ts';
import { AppProxy } from './proxy.ts';
import { readRepoJson } from './repo-file.ts';
import { buildSettings, Sandbox, type SandboxRequest } from './sandbox.ts';

import {
  allProcesses,
  dynoEnv,
  emptyState,
  freePort,
  spawnDetached,
  stopDynos,
  stringValues,
  tail,
  type AppState,
  type DynoState,
} from './processes.ts';

/**
 * Runs apps as child processes on this machine. Each app's processes run from the
 * slug's tree with `PORT` and the app's config vars, detached so they outlive a
 * flowops restart; the app's URL is a proxy that points at the live web process.
 */
export class LocalPlatform implements Platform {
  private readonly store: SlugStore;
  private readonly appsDir: string;
  private readonly proxies = new Map<string, { proxy: AppProxy; port: number }>();
  private readonly stateWrites = new Map<string, Promise<void>>();
  /** Apps being destroyed: late background writes (a shutdown finishing) must not recreate their state. */
  private readonly destroying = new Set<string>();
  readonly sandbox: Sandbox;

  constructor(
    dataDir: string,
    private readonly bootTimeoutMs: number,
    sandbox: Sandbox['mode'] = 'none',
    private readonly buildTimeoutMs = 900_000,
  ) {
    this.store = {
      slugsDir: path.join(dataDir, 'slugs'),
      cacheDir: path.join(dataDir, 'cache'),
      tmpDir: path.join(dataDir, 'tmp'),
    };
    this.appsDir = path.join(dataDir, 'apps');
    this.sandbox = new Sandbox(sandbox, dataDir);
  }

  get isolation(): Sandbox['mode'] {
    return this.sandbox.mode;
  }

  build(source: Source, sha: string, progress: BuildProgress, scope: string): Promise<BuiltSlug> {
    return buildSlug(source, sha, this.store, progress, {
      sandbox: this.sandbox,
      scope,
      timeoutMs: this.buildTimeoutMs,
      startedAt: Date.now(),
    });
  }

  async releasePhase(spec: ReleaseSpec, onOutput: OutputSink): Promise<{ code: number; output: string }> {
    const command = spec.procfile.release;
    if (!command) return { code: 0, output: '' };
    const app = await slugTree(this.store.slugsDir, spec.slugId);
    onOutput(`-----> Running release command: ${command}\n`);
    let phase: Promise<void> = Promise.resolve();
    const result = await this.run(
      { app, writable: false, env: dynoEnv(spec.config, { DYNO: 'release.1' }), command, tag: `${spec.app}/release` },
      onOutput,
      (pid) => {
        phase = this.updateState(spec.app, () => ({ releasePhase: { type: 'release', pid, port: null } }));
      },
    );
    await phase;
    await this.updateState(spec.app, () => ({ releasePhase: null }));
    return result;
  }

  async runCommand(
    slugId: string,
    command: string,
    config: Record<string, string>,
    onOutput: OutputSink,
  ): Promise<{ code: number; output: string }> {
    const app = await slugTree(this.store.slugsDir, slugId);
    onOutput(`-----> Running ${command}\n`);
    return this.run({ app, writable: false, env: dynoEnv(config, { DYNO: 'run.1' }), command, tag: 'run' }, onOutput);
  }

  async runTests(slugId: string, onOutput: OutputSink, signal: AbortSignal): Promise<{ code: number | null; output: string }> {
    const tree = await slugTree(this.store.slugsDir, slugId);
    const appJson = (await readRepoJson(tree, 'app.json')) as {
      environments?: { test?: { scripts?: Record<string, string>; env?: Record<string, string> } };
    };
    const pkg = (await readRepoJson(tree, 'package.json')) as { scripts?: Record<string, string> };
    const test = appJson.environments?.test;
    const script = test?.scripts?.test ?? (pkg.scripts?.test ? 'npm test' : undefined);
    if (!script) return { code: null, output: 'No test script: add environments.test.scripts.test to app.json\n' };
    await mkdir(this.store.tmpDir, { recursive: true });
    const work = await mkdtemp(path.join(this.store.tmpDir, 'test-'));
    let output = '';
    const sink = (chunk: string) => {
      output += chunk;
      onOutput(chunk);
    };
    try {
      await runOrThrow('cp', ['-a', '--reflink=auto', `${tree}/.`, work]);
      const env = { ...buildSettings(), ...stringValues(test?.env), CI: 'true', DYNO: 'test.1' };
      for (const [name, command] of [
        ['test-setup', test?.scripts?.['test-setup']],
        ['test', script],
      ] as const) {
        if (typeof command !== 'string' || !command) continue;
        // Cancelled before this step began (a cancel can come while the slug is unpacked): run nothing more.
        if (signal.aborted) return { code: 1, output };
        sink(`-----> Running ${name}: ${command}\n`);
        let pid = 0;
        const kill = () => {
          if (pid) void stopDynos([{ type: 'test', pid, port: null }], 1000);
        };
        signal.addEventListener('abort', kill, { once: true });
        const result = await this.run({ app: work, writable: true, env, command, tag: 'test' }, sink, (p) => (pid = p));
        signal.removeEventListener('abort', kill);
        if (result.code !== 0 || signal.aborted) return { code: result.code || 1, output };
      }
      return { code: 0, output };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** Runs a command in the sandbox to completion; a command that cannot even start is exit code 127 with the reason, never a throw. */
  private async run(
    request: SandboxRequest,
    onOutput: OutputSink,
    onSpawn?: (pid: number) => void,
  ): Promise<{ code: number; output: string }> {
    try {
      return await this.sandbox.run(request, { onOutput, onSpawn });
    } catch (err) {
      const why = `could not start ${request.command.split(' ')[0]}: ${err instanceof Error ? err.message : String(err)}\n`;
      onOutput(why);
      return { code: 127, output: why };
    }
  }

  async start(spec: ReleaseSpec, onOutput: OutputSink): Promise<void> {
    const state = await this.readState(spec.app);
    const types = Object.keys(spec.procfile).filter((type) => type !== 'release');
    const app = types.length ? await slugTree(this.store.slugsDir, spec.slugId) : '';
    const logDir = path.join(this.appsDir, spec.app, 'logs');
    await mkdir(logDir, { recursive: true });

    const started: DynoState[] = [];
    try {
      for (const type of types) {
        const port = type === 'web' ? await freePort() : null;
        const logFile = path.join(logDir, `v${spec.version}.${type}.log`);
        const env = dynoEnv(spec.config, { DYNO: `${type}.1`, ...(port ? { PORT: String(port) } : {}) });
        const command = this.sandbox.command({
          app,
          writable: false,
          env,
          command: spec.procfile[type]!,
          outlivesFlowops: true,
          tag: `${spec.app}/${type}.1`,
        });
        const pid = await spawnDetached(command, logFile);
        started.push({ type, pid, port });
      }
    } catch (err) {
      await stopDynos(started, 1000);
      throw new Error(`the processes could not be started: ${err instanceof Error ? err.message : String(err)}`);
    }
    await this.updateState(spec.app, () => ({ starting: started }));

    const web = started.find((dyno) => dyno.type === 'web');
    if (web?.port) {
      onOutput(`-----> Starting web process, waiting for it to answer on port ${web.port}\n`);
      const ok = await this.waitForHttp(web);
      if (!ok) {
        await stopDynos(started, 1000);
        await this.updateState(spec.app, () => ({ starting: [] }));
        const why = processAlive(web.pid) ? `did not answer HTTP within ${this.bootTimeoutMs / 1000} s` : 'exited';
        throw new Error(`the web process ${why}:\n${tail(path.join(logDir, `v${spec.version}.web.log`))}`);
      }
      const port = await this.ensureProxy(spec.app, state.port);
      this.proxies.get(spec.app)!.proxy.target = web.port;
      state.port = port;
    } else {
      await this.closeProxy(spec.app);
      state.port = null;
    }
    const previous = [...state.dynos, ...(state.stopping ?? [])];
    await this.updateState(spec.app, () => ({
      port: state.port,
      releaseId: spec.releaseId,
      dynos: started,
      starting: [],
      stopping: previous,
    }));
    if (previous.length) {
      onOutput(`-----> Stopping the previous release's processes\n`);
      void stopDynos(previous).then(() =>
        this.updateState(spec.app, (now) => ({ stopping: (now.stopping ?? []).filter((d) => !previous.some((p) => p.pid === d.pid)) }), {
          ifExists: true,
        }),
      );
    }
  }

  async destroy(app: string): Promise<void> {
    this.destroying.add(app);
    try {
      const state = await this.readState(app);
      await this.closeProxy(app);
      await stopDynos(allProcesses(state), 5000);
      await this.stateWrites.get(app);
      await rm(path.join(this.appsDir, app), { recursive: true, force: true, maxRetries: 3 });
    } finally {
      this.destroying.delete(app);
    }
  }

  async recover(current: ReleaseSpec[], appsWithoutRelease: string[]): Promise<void> {
    await this.sweepTmp();
    for (const app of appsWithoutRelease) {
      const state = await this.readState(app);
      await stopDynos(allProcesses(state), 2000);
      await this.updateState(app, () => emptyState(), { ifExists: true });
    }
    const kept = new Set<number>();
    const restart: ReleaseSpec[] = [];
    for (const spec of current) {
      const state = await this.readState(spec.app);
      // Whatever flowops was starting, stopping or running as a release phase when it died.
      const leftovers = [...state.starting, ...(state.stopping ?? []), ...(state.releasePhase ? [state.releasePhase] : [])];
      if (leftovers.length) await stopDynos(leftovers, 2000);
      const running = state.releaseId === spec.releaseId && state.dynos.length > 0 && state.dynos.every((d) => processAlive(d.pid));
      if (running) {
        for (const dyno of state.dynos) kept.add(dyno.pid);
        const web = state.dynos.find((d) => d.type === 'web');
        if (web?.port) {
          const port = await this.ensureProxy(spec.app, state.port);
          this.proxies.get(spec.app)!.proxy.target = web.port;
          await this.updateState(spec.app, () => ({ port, starting: [], stopping: [], releasePhase: null }));
        }
        log.info({ app: spec.app, version: spec.version }, 'app still running its current release');
        continue;
      }
      if (state.releaseId !== spec.releaseId || state.dynos.length) await stopDynos(state.dynos, 2000);
      await this.updateState(spec.app, () => ({ releaseId: null, dynos: [], starting: [], stopping: [], releasePhase: null }));
      restart.push(spec);
    }
    // Every process this data dir's flowops started and that is not a current dyno: started but never
    // recorded (flowops died between the two), a release phase or test run of the dead process, an app
    // destroyed meanwhile. Found by their marker, so what flowops never wrote down is still found.
    const strays = this.sandbox.findMarked().filter((p) => !kept.has(p.pid) && !kept.has(p.group));
    if (strays.length) {
      log.warn({ processes: strays.length }, 'stopping processes left over from before the restart');
      await stopDynos(
        strays.map((p) => ({ type: p.tag, pid: p.pid, port: null })),
        2000,
      );
    }
    for (const spec of restart) {
      try {
        await this.start(spec, () => undefined);
        log.info({ app: spec.app, version: spec.version }, 'app restarted on its current release');
      } catch (error) {
        log.error({ app: spec.app, version: spec.version, err: error }, 'app could not be restarted');
      }
    }
  }

  /** Half-built slugs, test copies and cache staging dirs of a flowops that died mid-way. */
  private async sweepTmp(): Promise<void> {
    await rm(this.store.tmpDir, { recursive: true, force: true, maxRetries: 3 });
    for (const dir of [this.store.slugsDir, path.join(this.store.cacheDir, 'node_modules')]) {
      const entries = await readdir(dir).catch(() => [] as string[]);
      for (const entry of entries.filter((e) => e.endsWith('.tmp'))) await rm(path.join(dir, entry), { recursive: true, force: true });
    }
  }

  url(app: string): string | null {
    const entry = this.proxies.get(app);
    if (entry) return `http://127.0.0.1:${entry.port}`;
    const file = path.join(this.appsDir, app, 'state.json');
    if (!existsSync(file)) return null;
    const state = JSON.parse(readFileSync(file, 'utf8')) as AppState;
    return state.port ? `http://127.0.0.1:${state.port}` : null;
  }

  async close(): Promise<void> {
    for (const app of [...this.proxies.keys()]) await this.closeProxy(app);
  }

  private async waitForHttp(web: DynoState): Promise<boolean> {
    const deadline = Date.now() + this.bootTimeoutMs;
    while (Date.now() < deadline) {
      if (!processAlive(web.pid)) return false;
      try {
        const answer = await fetch(`http://127.0.0.1:${web.port}/`, { signal: AbortSignal.timeout(2000), redirect: 'manual' });
        await answer.body?.cancel();
        return true;
      } catch {
        await sleep(20);
      }
    }
    return false;
  }

  /** The app's proxy, listening on its remembered port when that is still free. */
  private async ensureProxy(app: string, port: number | null): Promise<number> {
    const existing = this.proxies.get(app);
    if (existing) return existing.port;
    const proxy = new AppProxy();
    let got: number;
    try {
      got = await proxy.listen(port ?? 0);
    } catch {
      log.warn({ app, port }, 'app port taken, the app gets a new URL');
      got = await proxy.listen(0);
    }
    this.proxies.set(app, { proxy, port: got });
    return got;
  }

  private async closeProxy(app: string): Promise<void> {
    const entry = this.proxies.get(app);
    if (!entry) return;
    this.proxies.delete(app);
    await entry.proxy.close();
  }

  private async readState(app: string): Promise<AppState> {
    try {
      return { ...emptyState(), ...(JSON.parse(await readFile(path.join(this.appsDir, app, 'state.json'), 'utf8')) as AppState) };
    } catch {
      return emptyState();
    }
  }

  /**
   * Changes the app's state file: read, patch, write atomically, one change at a
   * time per app (a release and the previous release's shutdown both write it).
   * With `ifExists`, an app that was destroyed meanwhile is left alone.
   */
  private updateState(app: string, patch: (state: AppState) => Partial<AppState>, options: { ifExists?: boolean } = {}): Promise<void> {
    const dir = path.join(this.appsDir, app);
    const previous = this.stateWrites.get(app) ?? Promise.resolve();
    const next = previous.then(async () => {
      if (options.ifExists && (this.destroying.has(app) || !existsSync(dir))) return;
      const state = await this.readState(app);
      await mkdir(dir, { recursive: true });
      const tmp = path.join(dir, `state.json.${process.pid}.tmp`);
      await writeFile(tmp, JSON.stringify({ ...state, ...patch(state) }));
      await rename(tmp, path.join(dir, 'state.json'));
    });
    const settled = next.catch(() => undefined);
    this.stateWrites.set(app, settled);
    void settled.then(() => {
      if (this.stateWrites.get(app) === settled) this.stateWrites.delete(app);
    });
    return next;
  }
}
