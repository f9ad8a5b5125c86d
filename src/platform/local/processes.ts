import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { listPids, processAlive, processStat, writeAndClose } from '../../exec.ts';
import type { SandboxedCommand } from './sandbox.ts';

/*
 * The local platform's processes: what it remembers of them, and how it starts,
 * finds ports for and stops them.
 */

export interface DynoState {
  type: string;
  pid: number;
  port: number | null;
}

/** What the local platform remembers of an app, in `<dataDir>/apps/<app>/state.json`. */
export interface AppState {
  /** The port of the app's URL, kept across restarts. */
  port: number | null;
  releaseId: number | null;
  dynos: DynoState[];
  /** Processes of a release still booting; killed at recovery if flowops died meanwhile. */
  starting: DynoState[];
  /** A release phase under way; killed at recovery, so an interrupted migration never runs beside its retry. */
  releasePhase?: DynoState | null;
  /** The previous release's processes while they shut down; killed at recovery if flowops died meanwhile. */
  stopping?: DynoState[];
}

/** Every process the platform started for the app and may still have to stop. */
export const allProcesses = (state: AppState): DynoState[] => [
  ...state.dynos,
  ...state.starting,
  ...(state.stopping ?? []),
  ...(state.releasePhase ? [state.releasePhase] : []),
];

export const emptyState = (): AppState => ({ port: null, releaseId: null, dynos: [], starting: [], releasePhase: null });

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Stops a process group: SIGTERM, then SIGKILL after `graceMs` (Heroku gives 30 s; we give 10). */
export async function stopDynos(dynos: DynoState[], graceMs = 10_000): Promise<void> {
  const signal = (pid: number, sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      // Not a group leader (a process found by its marker, not one flowops spawned): just the process.
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  for (const dyno of dynos) signal(dyno.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (dynos.some((d) => groupAlive(d.pid)) && Date.now() < deadline) await sleep(50);
  // Whatever is left of each group gets SIGKILL: a process that ignores SIGTERM, and in a sandbox the
  // pid namespace's init (bwrap's, which ignores SIGTERM from outside), whose death ends the namespace.
  for (const dyno of dynos) if (groupAlive(dyno.pid)) signal(dyno.pid, 'SIGKILL');
}

/**
 * True while a living process (not a zombie) of the group that `pid` leads is
 * left, or `pid` itself: read from /proc, since a zombie nobody reaps still
 * counts for kill(-pid, 0).
 */
function groupAlive(pid: number): boolean {
  if (processAlive(pid)) return true;
  return listPids().some((member) => {
    const stat = processStat(member);
    return stat !== null && stat.group === pid && stat.state !== 'Z';
  });
}

/**
 * The environment of an app's processes: its config vars, HOST and the dyno's own
 * variables. Never flowops' settings: the sandbox adds only PATH and HOME.
 */
export function dynoEnv(config: Record<string, string>, extra: Record<string, string>): Record<string, string> {
  return { ...config, HOST: '127.0.0.1', ...extra };
}

/** Starts a dyno in a process group of its own, its output appended to `logFile`; resolves with its pid once it runs. */
export function spawnDetached(command: SandboxedCommand, logFile: string): Promise<number> {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(command.file, command.args, {
      cwd: command.cwd,
      env: command.env,
      detached: true,
      stdio: ['ignore', fd, fd, command.fd3 !== undefined ? 'pipe' : 'ignore'],
    });
    if (command.fd3 !== undefined) writeAndClose(child.stdio[3] as NodeJS.WritableStream, command.fd3);
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => {
        child.unref();
        resolve(child.pid!);
      });
    });
  } finally {
    closeSync(fd);
  }
}

/** Config of app.json's `env` blocks: only string values become variables. */
export function stringValues(env: unknown): Record<string, string> {
  if (!env || typeof env !== 'object') return {};
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}

export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
