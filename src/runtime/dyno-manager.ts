import { processTypes } from '../platform/local/procfile.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeAndClose } from '../exec.ts';
import { log } from '../log.ts';
import { dynoEnv, freePort, stopDynos } from '../platform/local/processes.ts';
import type { Sandbox } from '../platform/local/sandbox.ts';
import { AppLog, lineSplitter } from './app-logs.ts';
import type { AppProcesses, CrashReport, DynoStateName, DynoView, Formation, LogSource, RuntimeRelease } from './protocol.ts';

/** A dyno that ran this long before it crashed had recovered: its crash starts a new episode and the back-off starts over. */
const HEALTHY_MS = 60_000;
/** The longest wait between two restarts of a dyno that keeps crashing (Heroku's dyno manager waits up to 20 minutes; we wait up to 5). */
export const MAX_BACKOFF_MS = 300_000;
/** How long a dyno stopped on purpose gets between SIGTERM and SIGKILL (Heroku gives 30 s). */
const STOP_GRACE_MS = 10_000;

/** The wait before restarting a dyno after its `crashes`-th crash in a row: at once, then 10 s doubling up to MAX_BACKOFF_MS. */
export function backoffMs(crashes: number): number {
  return crashes <= 1 ? 0 : Math.min(MAX_BACKOFF_MS, 10_000 * 2 ** (crashes - 2));
}

/** The tag of a dyno's processes (see Sandbox's marker): how a new runtime finds a dead one's dynos. */
export const dynoTag = (app: string, dyno: string) => `dyno:${app}/${dyno}`;

interface Dyno {
  name: string;
  type: string;
  command: string;
  version: number;
  port: number | null;
  child: ChildProcess | null;
  state: DynoStateName;
  since: Date;
  exitCode: number | null;
  /** Crashes in a row: the back-off. */
  crashes: number;
  upSince: number | null;
  /** The restart waiting for its back-off. */
  timer: NodeJS.Timeout | null;
  /** Stopped on purpose: its exit is no crash. */
  stopping: boolean;
  /** Stopped for good (replaced, scaled down, destroyed): its state changes are not the app's news. */
  retired: boolean;
  exited: Promise<void>;
}

interface AppRun {
  release: RuntimeRelease | null;
  /** When `release` went live (epoch ms). */
  liveSince: number;
  /** The current release's dynos (a release being started keeps its own until it is live). */
  dynos: Dyno[];
  /** Dynos put to rest with ps:stop: idle until a restart, a scale or the next release. */
  stopped: Set<string>;
  log: AppLog;
  /** Round-robin position of the router among the web dynos. */
  turn: number;
}

export interface ManagerOptions {
  dataDir: string;
  sandbox: Sandbox;
  bootTimeoutMs: number;
  logLines: number;
}

/** What is told when the web dynos that are up change (FLOW_ROUTER=caddy pushes its routes then). */
type Listener = () => void;

/**
 * The dyno manager: runs each app's current release as its formation of dynos,
 * restarts a dyno that exits (at once, then with a growing back-off), reports
 * each crash episode once, and tells the router which web dynos are up.
 */
export class DynoManager {
  private readonly apps = new Map<string, AppRun>();
  private readonly crashes: CrashReport[] = [];
  private readonly listeners: Listener[] = [];
  /** Orders about one app run one at a time (a release, a scale, a restart, a recovery). */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly options: ManagerOptions) {}

  /** The log of an app (created on first use). */
  log(name: string): AppLog {
    return this.app(name).log;
  }

  /** A line of flowops' own in the app's log (`flowops[api]: …`). */
  note(name: string, dyno: string, text: string, src: LogSource = 'flowops'): void {
    this.app(name).log.append(src, dyno, text);
  }

  /**
   * Makes `release` the app's live release: starts its dynos beside the running
   * ones, waits until every web dyno answers HTTP, then routes to them and stops
   * the previous ones. Throws, leaving the previous release serving, when they
   * do not come up.
   */
  async deploy(release: RuntimeRelease): Promise<void> {
    const app = this.app(release.app);
    const fresh = plan(release, new Set());
    try {
      for (const dyno of fresh) await this.spawn(app, dyno, release);
    } catch (err) {
      await this.retire(app, fresh);
      throw new Error(`the processes could not be started: ${err instanceof Error ? err.message : String(err)}`);
    }
    const webs = fresh.filter((d) => d.type === 'web');
    const failures = await Promise.all(webs.map((d) => this.boot(d)));
    const failed = failures.findIndex(Boolean);
    if (failed >= 0) {
      await this.retire(app, fresh);
      throw new Error(`the web process ${failures[failed]}:\n${app.log.lastOf(webs[failed]!.name, 20).join('\n')}`);
    }
    for (const dyno of fresh) if (dyno.state === 'starting') this.setState(app, dyno, 'up');
    const previous = app.dynos;
    app.dynos = fresh;
    app.release = release;
    app.liveSince = Date.now();
    app.stopped = new Set();
    this.changed();
    if (previous.length) void this.retire(app, previous);
  }

  /**
   * Runs `releases` and nothing else: what flowops asks after it restarts. Apps already on their
   * release keep running; `known` apps without a release stop but keep their log; any other app
   * (destroyed while the runtime was down) goes, with its log. `asOf`: when flowops began reading
   * that picture; an app whose release went live since (its first deploy, say) is newer than it and stays.
   */
  async recover(releases: RuntimeRelease[], known: string[], asOf?: number): Promise<void> {
    const wanted = new Set(releases.map((r) => r.app));
    const kept = new Set(known);
    const newer = (name: string) => {
      const app = this.apps.get(name);
      return asOf !== undefined && app?.release != null && app.liveSince >= asOf;
    };
    for (const name of [...this.apps.keys()])
      if (!wanted.has(name))
        await this.serially(name, async () => void (newer(name) || (await this.destroy(name, { keepLog: kept.has(name) }))));
    for (const release of releases) await this.serially(release.app, () => this.recoverOne(release));
  }

  private async recoverOne(release: RuntimeRelease): Promise<void> {
    const app = this.app(release.app);
    // A newer release went live meanwhile (release ids only grow): flowops' picture was older.
    if (app.release && app.release.releaseId > release.releaseId) return;
    if (app.release?.releaseId === release.releaseId) {
      if (JSON.stringify(app.release.formation) !== JSON.stringify(release.formation)) await this.scale(release.app, release.formation);
      return;
    }
    try {
      await this.deploy(release);
    } catch (err) {
      log.error({ app: release.app, err }, 'app could not be started on its current release');
    }
  }

  /** Changes the app's formation: starts the dynos it lacks, stops the ones beyond it. */
  async scale(name: string, formation: Formation): Promise<void> {
    const app = this.app(name);
    if (!app.release) return;
    app.release = { ...app.release, formation: { ...app.release.formation, ...formation } };
    // Scaling a type starts its dynos that ps:stop put to rest, as `ps:stop` says.
    for (const stopped of [...app.stopped]) if (Object.hasOwn(formation, stopped.split('.')[0]!)) app.stopped.delete(stopped);
    app.dynos = app.dynos.filter((d) => !(d.state === 'idle' && Object.hasOwn(formation, d.type)));
    const wanted = new Set(plan(app.release, new Set()).map((d) => d.name));
    const extra = app.dynos.filter((d) => !wanted.has(d.name));
    app.dynos = app.dynos.filter((d) => wanted.has(d.name));
    for (const dyno of extra) app.stopped.delete(dyno.name);
    await Promise.all([this.retire(app, extra), this.fill(app)]);
  }

  /** Restarts every dyno, a type's, or one; a restarted dyno starts its back-off afresh. */
  async restart(name: string, target?: string): Promise<string[]> {
    const app = this.app(name);
    const chosen = app.dynos.filter((d) => matches(d.name, target));
    for (const dyno of chosen) app.stopped.delete(dyno.name);
    app.dynos = app.dynos.filter((d) => !chosen.includes(d));
    await this.retire(app, chosen);
    await this.fill(app);
    return chosen.map((d) => d.name);
  }

  /** Stops a dyno or a type's dynos; they stay idle until a restart, a scale or the next release. */
  async stop(name: string, target: string): Promise<string[]> {
    const app = this.app(name);
    const chosen = app.dynos.filter((d) => matches(d.name, target));
    for (const dyno of chosen) app.stopped.add(dyno.name);
    await Promise.all(chosen.map((d) => this.halt(app, d, 'idle')));
    return chosen.map((d) => d.name);
  }

  /** Stops every dyno of the app and forgets it (with its log, unless kept). */
  async destroy(name: string, options: { keepLog?: boolean } = {}): Promise<void> {
    const app = this.apps.get(name);
    if (!app) return;
    const dynos = app.dynos;
    app.dynos = [];
    app.release = null;
    this.changed();
    await this.retire(app, dynos);
    if (!options.keepLog) {
      app.log.flush();
      this.apps.delete(name);
      rmSync(path.join(this.options.dataDir, 'apps', name, 'log.jsonl'), { force: true });
    }
  }

  ps(name: string): AppProcesses {
    const app = this.apps.get(name);
    const release = app?.release ?? null;
    return {
      app: name,
      version: release?.version ?? null,
      formation: release ? Object.fromEntries(types(release).map((t) => [t, countOf(release, t)])) : {},
      commands: release ? Object.fromEntries(types(release).map((t) => [t, release.procfile[t]!])) : {},
      dynos: (app?.dynos ?? []).map(view),
    };
  }

  /** The port of the next web dyno that is up, round robin; null when none is. */
  route(name: string): { port: number; dyno: string } | null {
    const app = this.apps.get(name);
    if (!app) return null;
    const up = app.dynos.filter((d) => d.type === 'web' && d.state === 'up' && d.port !== null);
    if (!up.length) return null;
    const dyno = up[app.turn++ % up.length]!;
    return { port: dyno.port!, dyno: dyno.name };
  }

  /** The crashed dynos of every app that has some. */
  crashedDynos(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [name, app] of this.apps) {
      const dynos = app.dynos.filter((d) => d.state === 'crashed').map((d) => d.name);
      if (dynos.length) out[name] = dynos;
    }
    return out;
  }

  /** Runs `work` after the app's earlier orders. */
  serially<T>(app: string, work: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(app) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.queues.set(app, settled);
    void settled.then(() => {
      if (this.queues.get(app) === settled) this.queues.delete(app);
    });
    return next;
  }

  /** Calls `listener` whenever a dyno changes state or an app its dynos. */
  onChange(listener: Listener): void {
    this.listeners.push(listener);
  }

  /** Every app whose release has a web process, with the ports of its web dynos that are up. */
  webTargets(): Map<string, number[]> {
    const targets = new Map<string, number[]>();
    for (const [name, app] of this.apps) {
      if (!app.release?.procfile.web) continue;
      targets.set(
        name,
        app.dynos.filter((d) => d.type === 'web' && d.state === 'up' && d.port !== null).map((d) => d.port!),
      );
    }
    return targets;
  }

  hasApp(name: string): boolean {
    return this.apps.get(name)?.release != null;
  }

  /** Crash episodes flowops has not taken yet. */
  pendingCrashes(): CrashReport[] {
    return [...this.crashes];
  }

  takeCrash(id: string): void {
    const at = this.crashes.findIndex((c) => c.id === id);
    if (at >= 0) this.crashes.splice(at, 1);
  }

  /** Stops every dyno: the runtime is going away. */
  async close(): Promise<void> {
    await Promise.all([...this.apps.values()].map((app) => this.retire(app, app.dynos)));
    for (const app of this.apps.values()) app.log.flush();
  }

  private app(name: string): AppRun {
    let app = this.apps.get(name);
    if (!app) {
      app = {
        release: null,
        liveSince: 0,
        dynos: [],
        stopped: new Set(),
        log: new AppLog(path.join(this.options.dataDir, 'apps', name), this.options.logLines),
        turn: 0,
      };
      this.apps.set(name, app);
    }
    return app;
  }

  /** Starts the dynos the formation wants and the app lacks (not the idle ones). */
  private async fill(app: AppRun): Promise<void> {
    if (!app.release) return;
    const release = app.release;
    const have = new Set(app.dynos.map((d) => d.name));
    for (const dyno of plan(release, app.stopped)) {
      if (have.has(dyno.name)) continue;
      app.dynos.push(dyno);
      await this.launch(app, dyno, release);
    }
    for (const name of app.stopped) {
      const [type] = name.split('.');
      if (!have.has(name) && plan(release, new Set()).some((d) => d.name === name))
        app.dynos.push({ ...blank(type!, name, release), state: 'idle' });
    }
    app.dynos.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  }

  /** Starts a dyno of the current release; a dyno that does not come up counts as a crash. */
  private async launch(app: AppRun, dyno: Dyno, release: RuntimeRelease): Promise<void> {
    try {
      await this.spawn(app, dyno, release);
    } catch (err) {
      this.note(release.app, dyno.name, `Process could not start: ${err instanceof Error ? err.message : String(err)}`);
      this.crashed(app, dyno, null);
      return;
    }
    if (dyno.type !== 'web') {
      this.setState(app, dyno, 'up');
      return;
    }
    void this.boot(dyno).then((why) => {
      if (!why) {
        if (dyno.state === 'starting') this.setState(app, dyno, 'up');
      } else if (dyno.child) {
        this.note(release.app, dyno.name, `Error R10 (Boot timeout) -> Web process ${why}`);
        void stopDynos([{ type: dyno.type, pid: dyno.child.pid!, port: null }], 1000);
      }
    });
  }

  /** Starts a dyno's process, its output going to the app's log. */
  private async spawn(app: AppRun, dyno: Dyno, release: RuntimeRelease): Promise<void> {
    dyno.port = dyno.type === 'web' ? await freePort() : null;
    const env = dynoEnv(release.config, { DYNO: dyno.name, ...(dyno.port ? { PORT: String(dyno.port) } : {}) });
    const command = this.options.sandbox.command({
      app: release.tree,
      writable: false,
      env,
      command: dyno.command,
      // Not tied to the runtime's life: a dyno stopped on purpose gets SIGTERM and its grace period
      // (bwrap's --die-with-parent would tear the sandbox down at once). A runtime that dies leaves
      // its dynos running; the next one finds them by their tag and stops them.
      outlivesFlowops: true,
      tag: dynoTag(release.app, dyno.name),
    });
    this.note(release.app, dyno.name, `Starting process with command \`${dyno.command}\``);
    const child = spawn(command.file, command.args, {
      cwd: command.cwd,
      env: command.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', command.fd3 !== undefined ? 'pipe' : 'ignore'],
    });
    if (command.fd3 !== undefined) writeAndClose(child.stdio[3] as NodeJS.WritableStream, command.fd3);
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve());
    });
    dyno.child = child;
    dyno.stopping = false;
    dyno.exitCode = null;
    this.setState(app, dyno, 'starting');
    const out = lineSplitter((line) => app.log.append('app', dyno.name, line));
    const err = lineSplitter((line) => app.log.append('app', dyno.name, line));
    child.stdout!.on('data', (chunk: Buffer) => out.write(chunk));
    child.stderr!.on('data', (chunk: Buffer) => err.write(chunk));
    dyno.exited = new Promise((resolve) =>
      child.once('close', (code, signal) => {
        out.end();
        err.end();
        dyno.child = null;
        const status = code ?? (signal ? 128 + (signalNumber(signal) ?? 15) : 1);
        this.note(release.app, dyno.name, `Process exited with status ${status}`);
        // Stopped on purpose: halt() sets where it ends.
        if (!dyno.stopping) this.crashed(app, dyno, status);
        resolve();
      }),
    );
  }

  /** Waits until a web dyno answers HTTP; null when it does, or why not. */
  private async boot(dyno: Dyno): Promise<string | null> {
    const deadline = Date.now() + this.options.bootTimeoutMs;
    while (Date.now() < deadline) {
      if (!dyno.child || dyno.state === 'crashed') return 'exited';
      try {
        const answer = await fetch(`http://127.0.0.1:${dyno.port}/`, { signal: AbortSignal.timeout(2000), redirect: 'manual' });
        await answer.body?.cancel();
        return dyno.child ? null : 'exited';
      } catch {
        await sleep(25);
      }
    }
    return `did not answer HTTP within ${this.options.bootTimeoutMs / 1000} s`;
  }

  /** A dyno exited on its own: crashed; restarted after its back-off if it still belongs to the formation. */
  private crashed(app: AppRun, dyno: Dyno, status: number | null): void {
    const release = app.release;
    const current = app.dynos.includes(dyno);
    const recovered = dyno.upSince !== null && Date.now() - dyno.upSince >= HEALTHY_MS;
    if (recovered) dyno.crashes = 0;
    dyno.crashes++;
    dyno.exitCode = status;
    this.setState(app, dyno, 'crashed');
    if (!current || !release) return;
    if (dyno.crashes === 1)
      this.crashes.push({
        id: randomUUID(),
        app: release.app,
        dyno: dyno.name,
        exitCode: status,
        at: new Date().toISOString(),
        lines: app.log.lastOf(dyno.name, 10),
      });
    const wait = backoffMs(dyno.crashes);
    dyno.timer = setTimeout(() => {
      dyno.timer = null;
      if (!app.dynos.includes(dyno) || dyno.state !== 'crashed') return;
      void this.launch(app, dyno, release);
    }, wait);
    dyno.timer.unref();
  }

  /** Stops dynos for good (a release replaced, scaled down, destroyed). */
  private async retire(app: AppRun, dynos: Dyno[]): Promise<void> {
    const running = dynos.filter((d) => d.child);
    // As Heroku says it; the new release's dyno of the same name writes beside it meanwhile.
    for (const dyno of running) app.log.append('flowops', dyno.name, `Stopping v${dyno.version}'s process with SIGTERM`);
    for (const dyno of dynos) dyno.retired = true;
    await Promise.all(dynos.map((d) => this.halt(app, d, 'idle')));
  }

  /** Stops a dyno's process (SIGTERM, then SIGKILL after the grace) and leaves it in `state`. */
  private async halt(app: AppRun, dyno: Dyno, state: DynoStateName): Promise<void> {
    if (dyno.timer) clearTimeout(dyno.timer);
    dyno.timer = null;
    dyno.stopping = true;
    const child = dyno.child;
    if (child?.pid) {
      await stopDynos([{ type: dyno.type, pid: child.pid, port: null }], STOP_GRACE_MS);
      await dyno.exited;
    }
    if (dyno.state !== state) this.setState(app, dyno, state);
  }

  private setState(app: AppRun, dyno: Dyno, state: DynoStateName): void {
    const before = dyno.state;
    dyno.state = state;
    dyno.since = new Date();
    dyno.upSince = state === 'up' ? Date.now() : state === 'starting' ? dyno.upSince : null;
    // Only the app's own dynos: a replaced release's stops quietly under the same name.
    if (before !== state && app.release && !dyno.retired) app.log.append('flowops', dyno.name, `State changed from ${before} to ${state}`);
    this.changed();
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}

/** The release's process types that run as dynos (the release phase does not). */
function types(release: RuntimeRelease): string[] {
  return processTypes(release.procfile);
}

/** A type's number of dynos: as scaled, or one. */
function countOf(release: RuntimeRelease, type: string): number {
  return release.formation[type] ?? 1;
}

function blank(type: string, name: string, release: RuntimeRelease): Dyno {
  return {
    name,
    type,
    command: release.procfile[type]!,
    version: release.version,
    port: null,
    child: null,
    state: 'starting',
    since: new Date(),
    exitCode: null,
    crashes: 0,
    upSince: null,
    timer: null,
    stopping: false,
    retired: false,
    exited: Promise.resolve(),
  };
}

/** The dynos a release's formation asks for, without the ones put to rest. */
function plan(release: RuntimeRelease, stopped: Set<string>): Dyno[] {
  return types(release).flatMap((type) =>
    Array.from({ length: countOf(release, type) }, (_, i) => blank(type, `${type}.${i + 1}`, release)).filter((d) => !stopped.has(d.name)),
  );
}

/** `web` matches web.1 and web.2; `web.1` only itself; nothing matches everything. */
function matches(dyno: string, target: string | undefined): boolean {
  return !target || dyno === target || dyno.startsWith(`${target}.`);
}

function view(dyno: Dyno): DynoView {
  return {
    name: dyno.name,
    type: dyno.type,
    state: dyno.state,
    since: dyno.since.toISOString(),
    command: dyno.command,
    version: dyno.version,
    exitCode: dyno.exitCode,
  };
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGSEGV: 11, SIGTERM: 15 } as Record<string, number>)[signal];
}
