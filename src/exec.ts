import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface RunResult {
  code: number;
  output: string;
  /** The command ran past `timeoutMs` and was killed (its whole process group, when detached). */
  timedOut?: boolean;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with each chunk of combined stdout/stderr as it arrives. */
  onOutput?: (chunk: string) => void;
  input?: NodeJS.ReadableStream;
  /** Runs the command in a process group of its own (so the group can be killed) and reports its pid. */
  detached?: boolean;
  onSpawn?: (pid: number) => void;
  /** Written to the child's fd 3, then closed (bwrap's `--args 3`). */
  fd3?: string;
  /** Kills the command (SIGKILL; its process group when detached) after this long. */
  timeoutMs?: number;
}

/** Runs a command to completion, collecting stdout and stderr together. Never rejects on exit status. */
export function run(command: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(options.fd3 !== undefined ? (['pipe'] as const) : [])],
      detached: options.detached,
    });
    if (options.fd3 !== undefined) writeAndClose(child.stdio[3] as NodeJS.WritableStream, options.fd3);
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
    let output = '';
    const collect = (chunk: Buffer) => {
      const text = chunk.toString();
      output += text;
      options.onOutput?.(text);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    if (options.input && child.stdin) options.input.pipe(child.stdin);
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            try {
              if (options.detached && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
              else child.kill('SIGKILL');
            } catch {
              /* already gone */
            }
          }, options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output, ...(timedOut ? { timedOut } : {}) });
    });
  });
}

/** Runs a command and returns its stdout; a non-zero exit throws with the command's output. */
export async function runOrThrow(command: string, args: string[], options: RunOptions = {}): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${result.code}: ${result.output.trim()}`);
  }
  return result.output;
}

/**
 * True when a process with this pid exists and is not a zombie. A detached app
 * process that outlived its flowops parent is reparented; where nobody reaps it
 * (a container without an init), a dead one lingers as a zombie that
 * `kill(pid, 0)` still finds.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = processStat(pid);
  return stat === null || stat.state !== 'Z';
}

/** A process's state letter (`R`, `S`, `Z`…) and process group, from /proc/<pid>/stat; null when it cannot be read. */
export function processStat(pid: number): { state: string; group: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may hold spaces and parentheses: the fields after it start past the last ')'.
    const [state, , group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state!, group: Number(group) };
  } catch {
    return null;
  }
}

/** The pids of every process this machine's /proc shows. */
export function listPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * Writes `data` to a child's extra pipe and closes it. A child that dies first
 * (a cancelled test run, a sandbox that could not start) resets the pipe: that
 * is the child's outcome, reported by its exit, not an error of flowops'.
 */
export function writeAndClose(stream: NodeJS.WritableStream, data: string): void {
  stream.on('error', () => undefined);
  stream.end(data);
}
