import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { runCli } from '../../src/cli/cli.ts';
import { RuntimeClient } from '../../src/runtime/client.ts';
import type { RuntimeOptions } from '../../src/runtime/protocol.ts';

const root = path.resolve(import.meta.dirname, '../..');

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
}

/** Starts `npm start`'s entry point as a real child process and waits for its "listening" line. */
export async function spawnServer(env: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', FLOW_ROUTER_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`flowops exited with ${code}: ${output}`)));
  });
  return { child, url, output: () => output };
}

/** Stops the runtime of a data dir (router, dynos): apps outlive flowops by design, a test ends them. */
export async function stopRuntime(dataDir: string): Promise<void> {
  await new RuntimeClient({ dataDir } as RuntimeOptions).shutdown();
}

/** Kills the server the hard way, as a crash or an OOM kill would. */
export async function killHard(server: ServerProcess): Promise<void> {
  const exited = once(server.child, 'exit');
  server.child.kill('SIGKILL');
  await exited;
}

/** Runs `flowops <argv>` against the server at `url` as `token`, as a person at a terminal would; what it printed, line by line. */
export async function cliAt(url: string, token: string, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, {
    out: (text) => (out += `${text}\n`),
    err: (text) => (err += `${text}\n`),
    env: { FLOW_URL: url, FLOW_TOKEN: token },
  });
  return { code, out, err };
}
