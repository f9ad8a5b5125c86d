import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { listPids, processAlive, processStat } from '../../exec.ts';

/*
 * The local platform's processes: their environment, their ports, and how they stop.
 */

export interface DynoState {
  type: string;
  pid: number;
  port: number | null;
}

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

/** Config of app.json's `env` blocks: only string values become variables. */
export function stringValues(env: unknown): Record<string, string> {
  if (!env || typeof env !== 'object') return {};
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}
