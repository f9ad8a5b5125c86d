import path from 'node:path';
import type { DynoState, DynoView } from '../api/types.ts';
import type { SandboxMode } from '../platform/local/sandbox.ts';

/** Process types from a Procfile: `{ web: 'node index.js', release: '...' }`. */
type Procfile = Record<string, string>;

/*
 * What flowops and its runtime (the long-lived process that runs the dynos, the
 * router and the log store; see runtime/main.ts) say to each other, as JSON over
 * HTTP on a Unix socket in the data dir.
 */

/** Bumped when a message changes meaning: a flowops that finds an older runtime replaces it. */
export const PROTOCOL = 1;

/** Process types scaled to a number of dynos: `{ web: 2, worker: 1 }`. */
export type Formation = Record<string, number>;

/** One release of an app, as the runtime runs it. */
export interface RuntimeRelease {
  app: string;
  releaseId: number;
  version: number;
  /** The slug's unpacked tree on this machine. */
  tree: string;
  procfile: Procfile;
  config: Record<string, string>;
  /** Types missing from it run one dyno each. */
  formation: Formation;
}

export type { DynoView } from '../api/types.ts';
export type DynoStateName = DynoState;

export interface AppProcesses {
  app: string;
  version: number | null;
  formation: Formation;
  /** Each process type's command. */
  commands: Record<string, string>;
  dynos: DynoView[];
}

export type LogSource = 'app' | 'flowops';

export interface LogQuery {
  /** The last this many lines (default 100). */
  num?: number;
  /** A process type (`web`), a dyno (`web.1`), or flowops' own `api` and `router`. */
  dyno?: string;
  source?: LogSource;
  /** Only lines after this cursor (from a previous page's `next`): what --tail asks for. */
  after?: number;
}

export interface LogPage {
  lines: string[];
  /** The cursor of the last line: ask for `after=next` to get what came since. */
  next: number;
}

/** A dyno that crashed after running fine: one report per crash episode, until flowops has taken it. */
export interface CrashReport {
  id: string;
  app: string;
  dyno: string;
  exitCode: number | null;
  at: string;
  /** The dyno's last log lines. */
  lines: string[];
}

/** How flowops starts its runtime (runtime/main.ts). */
export interface RuntimeOptions {
  dataDir: string;
  routerPort: number;
  routerHost: string;
  domain: string;
  /** FLOW_ROUTER=caddy: the admin API of the Caddy that routes instead of the runtime's own router. */
  caddyAdmin?: string;
  sandbox: SandboxMode;
  bootTimeoutMs: number;
  logLines: number;
}

export const runtimeDir = (dataDir: string) => path.join(dataDir, 'runtime');
export const controlSocket = (dataDir: string) => path.join(runtimeDir(dataDir), 'control.sock');
/** Where a running runtime says who it is: `RuntimeHealth` as JSON. */
export const runtimeFile = (dataDir: string) => path.join(runtimeDir(dataDir), 'runtime.json');

export interface RuntimeHealth {
  protocol: number;
  pid: number;
  routerPort: number;
}
