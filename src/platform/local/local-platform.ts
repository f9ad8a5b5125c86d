import { processTypes } from './procfile.ts';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { log } from '../../log.ts';
import { runOrThrow } from '../../exec.ts';
import { RuntimeClient, RuntimeError } from '../../runtime/client.ts';
import type { AppProcesses, CrashReport, Formation, LogPage, LogQuery, LogSource, RuntimeRelease } from '../../runtime/protocol.ts';
import type { Source } from '../../source/source.ts';
import type { BuildProgress, BuiltSlug, OutputSink, Platform, ReleaseSpec } from '../platform.ts';
import { buildSlug, slugTree, type SlugDirs } from './build-slug.ts';
import { DirSlugStore, type SlugStore } from '../slug-store.ts';
import { readRepoJson } from './repo-file.ts';
import { buildSettings, Sandbox, type SandboxRequest } from './sandbox.ts';
import { dynoEnv, stopDynos, stringValues } from './processes.ts';

export interface LocalPlatformOptions {
  bootTimeoutMs: number;
  sandbox?: Sandbox['mode'];
  buildTimeoutMs?: number;
  /** FLOW_ROUTER_PORT: the one port of every app (0: any free one, as tests ask). */
  routerPort?: number;
  /** FLOW_ROUTER_HOST: the address the router listens on. */
  routerHost?: string;
  /** FLOW_APPS_DOMAIN: an app answers at `<app>.<domain>`. */
  domain?: string;
  /** FLOW_LOG_LINES: the lines of each app's log that are kept. */
  logLines?: number;
  /** FLOW_ROUTER=caddy: Caddy's admin API (FLOW_CADDY_ADMIN); Caddy routes instead of the runtime's router. */
  caddyAdmin?: string;
  /** FLOW_SLUG_STORE: where slugs are kept for every replica; the data dir's `slugs/` when not given. */
  slugStore?: SlugStore;
}

/**
 * Runs apps on this machine. Builds, release phases, test runs and one-off
 * commands run here, as children of flowops; the apps' dynos, the router in
 * front of them and their logs belong to the runtime (src/runtime), a process
 * of its own that outlives flowops, which this platform starts and gives orders.
 */
export class LocalPlatform implements Platform {
  private readonly store: SlugDirs;
  /** Where slug archives are kept for every replica; `store.slugsDir` is this machine's cache of it. */
  readonly slugStore: SlugStore;
  private readonly appsDir: string;
  /** Apps whose live release has a web process: the ones with a URL. */
  private readonly webApps = new Set<string>();
  private readonly runtime: RuntimeClient;
  private readonly restartListeners: (() => void)[] = [];
  /** Set once apps were given to the runtime: from then on, a runtime found dead is started again. */
  private running = false;
  private recovering = false;
  /** Whether recover() ran in this process: the first one (start-up) also clears what a dead flowops left. */
  private recoveredOnce = false;
  private readonly options: Required<Omit<LocalPlatformOptions, 'caddyAdmin' | 'slugStore'>> & Pick<LocalPlatformOptions, 'caddyAdmin'>;
  readonly sandbox: Sandbox;

  constructor(dataDir: string, options: LocalPlatformOptions) {
    this.options = {
      sandbox: 'none',
      buildTimeoutMs: 900_000,
      routerPort: 5000,
      routerHost: '127.0.0.1',
      domain: 'localhost',
      logLines: 1500,
      ...options,
    };
    this.store = {
      slugsDir: path.join(dataDir, 'slugs'),
      cacheDir: path.join(dataDir, 'cache'),
      tmpDir: path.join(dataDir, 'tmp'),
    };
    this.slugStore = options.slugStore ?? new DirSlugStore(this.store.slugsDir);
    this.appsDir = path.join(dataDir, 'apps');
    this.sandbox = new Sandbox(this.options.sandbox, dataDir);
    this.runtime = new RuntimeClient({
      dataDir,
      routerPort: this.options.routerPort,
      routerHost: this.options.routerHost,
      domain: this.options.domain,
      sandbox: this.options.sandbox,
      bootTimeoutMs: this.options.bootTimeoutMs,
      logLines: this.options.logLines,
      ...(this.options.caddyAdmin ? { caddyAdmin: this.options.caddyAdmin } : {}),
    });
    // A runtime started anew runs nothing: unless this is recover() itself, the engine must say what runs.
    this.runtime.onStarted = () => {
      if (!this.recovering) for (const listener of this.restartListeners) listener();
    };
  }

  whenRestarted(listener: () => void): void {
    this.restartListeners.push(listener);
  }

  get isolation(): Sandbox['mode'] {
    return this.sandbox.mode;
  }

  build(source: Source, sha: string, progress: BuildProgress, scope: string): Promise<BuiltSlug> {
    return buildSlug(source, sha, this.store, this.slugStore, progress, {
      sandbox: this.sandbox,
      scope,
      timeoutMs: this.options.buildTimeoutMs,
      startedAt: Date.now(),
    });
  }

  async releasePhase(spec: ReleaseSpec, onOutput: OutputSink): Promise<{ code: number; output: string }> {
    const command = spec.procfile.release;
    if (!command) return { code: 0, output: '' };
    const app = await slugTree(this.store.slugsDir, this.slugStore, spec.slugId);
    onOutput(`-----> Running release command: ${command}\n`);
    const result = await this.run(
      { app, writable: false, env: dynoEnv(spec.config, { DYNO: 'release.1' }), command, tag: `${spec.app}/release` },
      onOutput,
    );
    // As on Heroku, the release phase's output is in the app's log too.
    await this.note(spec.app, 'release.1', result.output.trimEnd().split('\n').slice(-200).join('\n'), 'app').catch(() => undefined);
    return result;
  }

  async runCommand(
    slugId: string,
    command: string,
    config: Record<string, string>,
    onOutput: OutputSink,
  ): Promise<{ code: number; output: string }> {
    const app = await slugTree(this.store.slugsDir, this.slugStore, slugId);
    onOutput(`-----> Running ${command}\n`);
    return this.run({ app, writable: false, env: dynoEnv(config, { DYNO: 'run.1' }), command, tag: 'run' }, onOutput);
  }

  async runTests(slugId: string, onOutput: OutputSink, signal: AbortSignal): Promise<{ code: number | null; output: string }> {
    const tree = await slugTree(this.store.slugsDir, this.slugStore, slugId);
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
    const types = processTypes(spec.procfile);
    if (!types.length) {
      await this.runtime.call('DELETE', `/apps/${spec.app}`);
      this.webApps.delete(spec.app);
      return;
    }
    const tree = await slugTree(this.store.slugsDir, this.slugStore, spec.slugId);
    if (spec.procfile.web) onOutput(`-----> Starting the web process, waiting for it to answer HTTP\n`);
    this.running = true;
    try {
      await this.runtime.call('POST', `/apps/${spec.app}/release`, this.runtimeRelease(spec, tree));
    } catch (err) {
      if (err instanceof RuntimeError) throw new Error(err.message);
      throw err;
    }
    if (spec.procfile.web) this.webApps.add(spec.app);
    else this.webApps.delete(spec.app);
    onOutput(`-----> Live: ${types.map((t) => `${t} (${spec.formation[t] ?? 1})`).join(', ')}\n`);
  }

  async destroy(app: string): Promise<void> {
    this.webApps.delete(app);
    // With no runtime running, nothing of the app runs: a runtime starts empty.
    if (await this.runtime.find()) await this.runtime.call('DELETE', `/apps/${app}`);
    await rm(path.join(this.appsDir, app), { recursive: true, force: true, maxRetries: 3 });
  }

  async recover(current: ReleaseSpec[], appsWithoutRelease: string[], asOf?: number): Promise<void> {
    // Only at start-up: later calls come from a runtime restarted under this flowops, whose own
    // builds, release phases and test runs are under way in those directories and processes.
    const startup = !this.recoveredOnce;
    this.recoveredOnce = true;
    if (startup) await this.sweepTmp();
    // Builds, release phases and test runs of a flowops that died: nobody waits for them any more.
    // (Dynos are the runtime's: they carry a `dyno:` tag and are left alone.)
    const strays = startup ? this.sandbox.findMarked().filter((p) => !p.tag.startsWith('dyno:')) : [];
    if (strays.length) {
      log.warn({ processes: strays.length }, 'stopping processes left over from before the restart');
      await stopDynos(
        strays.map((p) => ({ type: p.tag, pid: p.pid, port: null })),
        2000,
      );
    }
    if (!current.length && !appsWithoutRelease.length && !(await this.runtime.find())) return;
    this.running = true;
    const releases: RuntimeRelease[] = [];
    for (const spec of current) {
      const types = processTypes(spec.procfile);
      if (!types.length) continue;
      let tree: string;
      try {
        tree = await slugTree(this.store.slugsDir, this.slugStore, spec.slugId);
      } catch (error) {
        log.error({ app: spec.app, version: spec.version, err: error }, 'app could not be restarted: its slug is missing');
        continue;
      }
      releases.push(this.runtimeRelease(spec, tree));
      if (spec.procfile.web) this.webApps.add(spec.app);
    }
    this.recovering = true;
    try {
      await this.runtime.call('POST', '/recover', { releases, apps: [...current.map((s) => s.app), ...appsWithoutRelease], asOf });
    } finally {
      this.recovering = false;
    }
  }

  ps(app: string): Promise<AppProcesses> {
    return this.runtime.call('GET', `/apps/${app}/ps`);
  }

  async scale(app: string, formation: Formation): Promise<AppProcesses> {
    return this.runtime.call('PUT', `/apps/${app}/formation`, { formation });
  }

  async restart(app: string, target?: string): Promise<string[]> {
    return (await this.runtime.call<{ dynos: string[] }>('POST', `/apps/${app}/restart`, { target })).dynos;
  }

  async stop(app: string, target: string): Promise<string[]> {
    return (await this.runtime.call<{ dynos: string[] }>('POST', `/apps/${app}/stop`, { target })).dynos;
  }

  logs(app: string, query: LogQuery): Promise<LogPage> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    return this.runtime.call('GET', `/apps/${app}/logs?${params}`);
  }

  async note(app: string, dyno: string, text: string, source: LogSource = 'flowops'): Promise<void> {
    if (text) await this.runtime.call('POST', `/apps/${app}/logs`, { dyno, text, source });
  }

  async crashed(): Promise<Record<string, string[]>> {
    // Asking never starts the runtime: with none running, nothing crashed.
    if (!(await this.runtime.find())) return {};
    return this.runtime.call('GET', '/crashed');
  }

  /** Asked every few seconds: also how a runtime that died is noticed, and started again. */
  async crashes(): Promise<CrashReport[]> {
    if (!(await this.runtime.find())) {
      if (!this.running) return [];
      log.warn('the runtime (router and dynos) is gone; starting it again');
      await this.runtime.ensure();
      return [];
    }
    return this.runtime.call('GET', '/crashes');
  }

  async takeCrash(id: string): Promise<void> {
    await this.runtime.call('DELETE', `/crashes/${encodeURIComponent(id)}`);
  }

  /** Stops the runtime with every app it runs: apps normally outlive flowops; tests and a final shutdown do not want them to. */
  shutdownRuntime(): Promise<void> {
    return this.runtime.shutdown();
  }

  private runtimeRelease(spec: ReleaseSpec, tree: string): RuntimeRelease {
    return {
      app: spec.app,
      releaseId: spec.releaseId,
      version: spec.version,
      tree,
      procfile: spec.procfile,
      config: spec.config,
      formation: spec.formation,
    };
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
    const port = this.options.routerPort || this.runtime.routerPort;
    if (!this.webApps.has(app) || !port) return null;
    // Caddy on 443 serves HTTPS with certificates of its own.
    if (this.options.caddyAdmin && port === 443) return `https://${app}.${this.options.domain}`;
    return `http://${app}.${this.options.domain}${port === 80 ? '' : `:${port}`}`;
  }

  async close(): Promise<void> {
    // The runtime, its router and the apps keep running: the next flowops finds them again.
  }
}
