import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { listPids, processStat, run, type RunResult } from '../../exec.ts';

/** How the local platform runs repository code: inside bubblewrap, or as plain child processes. */
export type SandboxMode = 'bubblewrap' | 'none';

/**
 * The environment variable that marks every process the local platform starts,
 * with the data dir it belongs to, so recovery can find (and stop) processes that
 * flowops started but never got to record. Set on the outer bwrap process only;
 * the code inside gets a cleared environment of its own.
 */
export const MARKER = 'FLOWOPS_SANDBOX';

/** One process to run on the repository's code. */
export interface SandboxRequest {
  /** The host directory the code runs in; `/app` inside the sandbox (as on Heroku). */
  app: string;
  /** Builds and test runs write their own directory; dynos read a slug that other apps may share. */
  writable: boolean;
  /** A host directory for npm's download cache, writable, at `/cache` inside. */
  cache?: string;
  /** The complete environment the code sees, besides PATH and HOME: an allowlist, never flowops' own. */
  env: Record<string, string>;
  /** A shell command line (Procfile style). */
  command: string;
  /** Dynos outlive a flowops restart; everything else (builds, tests, release phase) dies with flowops. */
  outlivesFlowops?: boolean;
  /** A label for recovery: `<app>/<dyno>` or `build`. */
  tag: string;
}

/** What to hand to `spawn`. */
export interface SandboxedCommand {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Written to the child's fd 3 and closed: bwrap's `--args 3`, which carries the sandbox's environment. */
  fd3?: string;
}

/** The few files of /etc that programs need (name resolution, TLS roots, users, time zone); nothing else of the host's configuration. */
const ETC = [
  'passwd',
  'group',
  'hosts',
  'host.conf',
  'resolv.conf',
  'nsswitch.conf',
  'gai.conf',
  'localtime',
  'ssl',
  'ca-certificates',
  'ca-certificates.conf',
  'alternatives',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'mime.types',
  'os-release',
];

/** The top-level system directories: usually symlinks into /usr on a merged-/usr system, directories elsewhere. */
const SYSTEM_DIRS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

/** The install prefix of the Node.js running flowops: its bin/ holds node, npm and npx. */
const nodeBin = path.dirname(process.execPath);
const nodePrefix = path.dirname(nodeBin);

/** PATH inside: the Node.js flowops runs with first, then the system's. */
export const SANDBOX_PATH = [nodeBin, '/usr/local/bin', '/usr/bin', '/bin'].filter((dir, i, all) => all.indexOf(dir) === i).join(':');

/** npm's settings and the TLS trust a build needs to reach the registry; never anything that carries a credential. */
const BUILD_SETTINGS =
  /^(npm_config_(registry|cafile|strict_ssl|proxy|https_proxy|noproxy|fetch_retries|fetch_timeout|loglevel|update_notifier|fund|audit)|NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR|HTTPS?_PROXY|https?_proxy|NO_PROXY|no_proxy)$/;

/** The registry and TLS settings of flowops' own environment that builds inherit (see BUILD_SETTINGS). */
export function buildSettings(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env)
      .filter((entry): entry is [string, string] => BUILD_SETTINGS.test(entry[0]) && entry[1] !== undefined)
      .map(([key, value]) => [key, withoutCredentials(value)]),
  );
}

/** A proxy or registry URL without its `user:password@`: the credential stays flowops', never the build's. */
function withoutCredentials(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/\s]*@/i, '$1');
}

/** True when `bwrap` is on PATH and can make a sandbox here (a container may forbid namespaces). */
export function bubblewrapWorks(): boolean {
  const probe = spawnSync('bwrap', ['--ro-bind', '/', '/', '--unshare-pid', '--proc', '/proc', '--dev', '/dev', 'true'], {
    stdio: 'ignore',
    timeout: 10_000,
  });
  return probe.status === 0;
}

/**
 * Wraps the commands that run repository code. With bubblewrap, the code sees the
 * system directories read-only, its own directory at /app, a private /tmp and
 * HOME, its own /proc (pid namespace), and nothing else of this machine: not the
 * data dir, not the admin token, not another app's slug, not flowops' processes.
 * The network is shared (dynos must answer on loopback). Without a sandbox, only
 * the environment allowlist protects flowops' settings.
 */
export class Sandbox {
  /**
   * @param dataDir the data dir whose processes these are: recovery stops only its own.
   */
  constructor(
    readonly mode: SandboxMode,
    private readonly dataDir: string,
  ) {}

  /** The marker value of one process: data dir, then the request's tag. */
  private mark(tag: string): string {
    return `${this.dataDir}\n${tag}`;
  }

  command(request: SandboxRequest): SandboxedCommand {
    if (this.mode === 'none') {
      const env = { ...request.env, PATH: SANDBOX_PATH, HOME: request.app, ...(request.cache ? { npm_config_cache: request.cache } : {}) };
      return { file: 'sh', args: ['-c', request.command], env: { ...env, [MARKER]: this.mark(request.tag) }, cwd: request.app };
    }
    const env = { ...request.env, PATH: SANDBOX_PATH, HOME: '/home/app', ...(request.cache ? { npm_config_cache: '/cache' } : {}) };
    // The environment of the code inside travels to bwrap through a pipe (`--args 3`: `--clearenv`,
    // then `--setenv` pairs), never as bwrap's own environment — bwrap runs outside the sandbox,
    // so LD_PRELOAD=./evil.so in a config var would load the repository's library into it — and
    // never on its command line, which every local user can read in /proc/<pid>/cmdline.
    const fd3 = ['--clearenv', ...Object.entries(env).flatMap(([key, value]) => ['--setenv', key, value])]
      .map((arg) => `${arg}\0`)
      .join('');
    const args = [
      '--args',
      '3',
      '--unshare-pid',
      '--unshare-ipc',
      '--unshare-uts',
      '--unshare-cgroup-try',
      '--hostname',
      'flowops-sandbox',
      '--cap-drop',
      'ALL',
      ...(request.outlivesFlowops ? [] : ['--die-with-parent']),
      '--ro-bind',
      '/usr',
      '/usr',
      ...systemDirs(),
      ...etcFiles(),
      ...(nodePrefix.startsWith('/usr/') || nodePrefix === '/usr' ? [] : ['--ro-bind', nodePrefix, nodePrefix]),
      '--proc',
      '/proc',
      '--dev',
      '/dev',
      '--tmpfs',
      '/tmp',
      '--tmpfs',
      '/home',
      '--dir',
      '/home/app',
      request.writable ? '--bind' : '--ro-bind',
      request.app,
      '/app',
      ...(request.cache ? ['--bind', request.cache, '/cache'] : []),
      '--chdir',
      '/app',
      '--',
      '/bin/sh',
      '-c',
      request.command,
    ];
    return { file: 'bwrap', args, env: { PATH: SANDBOX_PATH, [MARKER]: this.mark(request.tag) }, cwd: request.app, fd3 };
  }

  /**
   * Runs a request to completion in a process group of its own, the sandbox's
   * environment handed over on fd 3; `timeoutMs` kills the group.
   */
  run(
    request: SandboxRequest,
    options: { onOutput: (chunk: string) => void; onSpawn?: (pid: number) => void; timeoutMs?: number },
  ): Promise<RunResult> {
    const { file, args, env, cwd, fd3 } = this.command(request);
    return run(file, args, { cwd, env, fd3, detached: true, ...options });
  }

  /**
   * Processes of this data dir that carry the marker, with their tag, found by
   * reading /proc. After a crash, the ones that are not a current dyno are
   * leftovers: started but never recorded, or recorded and then forgotten.
   */
  findMarked(): { pid: number; group: number; tag: string }[] {
    const found: { pid: number; group: number; tag: string }[] = [];
    const prefix = `${MARKER}=${this.dataDir}\n`;
    for (const pid of listPids()) {
      let entry: string | undefined;
      try {
        entry = readFileSync(`/proc/${pid}/environ`, 'latin1')
          .split('\0')
          .find((e) => e.startsWith(prefix));
      } catch {
        continue;
      }
      // The process group: a dyno's bwrap leads its group, and its own forks carry the marker too.
      const stat = entry === undefined ? null : processStat(pid);
      if (entry !== undefined && stat) found.push({ pid, group: stat.group, tag: entry.slice(prefix.length) });
    }
    return found;
  }
}

function systemDirs(): string[] {
  const args: string[] = [];
  for (const dir of SYSTEM_DIRS) {
    const full = `/${dir}`;
    if (!existsSync(full)) continue;
    if (lstatSync(full).isSymbolicLink()) args.push('--symlink', readlinkSync(full), full);
    else args.push('--ro-bind', full, full);
  }
  return args;
}

function etcFiles(): string[] {
  return ETC.flatMap((name) => ['--ro-bind-try', `/etc/${name}`, `/etc/${name}`]);
}
