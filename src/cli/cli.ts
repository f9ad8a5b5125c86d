import { forTerminal } from '../format.ts';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiError, CommandRequest, OperationProgress, OperationView, Result } from '../api/types.ts';
import { helpText, parseCommand } from '../commands/grammar.ts';
import { operationHeadline, operationOutcome, renderText } from '../commands/render-text.ts';
import { FlowError } from '../errors.ts';

export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

class CliError extends Error {}

/** The two calls of /api the CLI makes, answering the JSON src/api/types.ts describes. */
interface Client {
  command(body: CommandRequest): Promise<Result>;
  operation(id: number, after: string): Promise<OperationProgress>;
}

function client(env: NodeJS.ProcessEnv): Client {
  const base = (env.FLOW_URL || 'http://localhost:3000').replace(/\/$/, '');
  let token = env.FLOW_TOKEN;
  if (!token) {
    const file = path.join(path.resolve(env.FLOW_DATA_DIR || '.flowops'), 'admin-token');
    if (!existsSync(file))
      throw new CliError(
        `no token: set FLOW_TOKEN to your flowops token (or run where the server's data dir ${path.dirname(file)} holds admin-token)`,
      );
    token = readFileSync(file, 'utf8').trim();
  }
  const call = async <T>(method: string, pathname: string, body?: unknown): Promise<T> => {
    let response: Response;
    try {
      response = await fetch(`${base}${pathname}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    } catch {
      throw new CliError(`cannot reach flowops at ${base}: is the server running (\`npm start\`)? Set FLOW_URL to its address`);
    }
    const payload: unknown = await response.json().catch(() => null);
    if (!response.ok) throw new CliError((payload as Partial<ApiError> | null)?.error?.message ?? `flowops answered ${response.status}`);
    // The server's JSON is what src/api/types.ts says; this is where the CLI takes its word for it.
    return payload as T;
  };
  return {
    command: (body) => call('POST', '/api/commands', body),
    operation: (id, after) => call('GET', `/api/operations/${id}?after=${after}`),
  };
}

/** Follows an operation until it ends, printing its progress lines as they arrive. */
async function follow(api: Client, op: OperationView, io: CliIO, json: boolean): Promise<OperationView> {
  if (!json) io.out(`${operationHeadline(op)}...`);
  let after = '0';
  for (;;) {
    const { operation, events } = await api.operation(op.id, after);
    for (const event of events) {
      after = String(event.id);
      if (!json && (event.type === 'operation.progress' || event.type.startsWith('release.') || event.type === 'build.succeeded'))
        io.out(`  ${event.message}`);
    }
    if (operation.status === 'succeeded' || operation.status === 'failed') return operation;
    await sleep(250);
  }
}

/** Runs the CLI with `argv` (without node and script); returns the exit status. */
export async function runCli(argv: string[], terminal: CliIO): Promise<number> {
  const json = argv.includes('--json');
  // What repository code printed reaches a person's terminal: its escape sequences are shown, not obeyed.
  const io: CliIO = {
    ...terminal,
    out: (text) => terminal.out(json ? text : forTerminal(text)),
    err: (text) => terminal.err(forTerminal(text)),
  };
  const wait = !argv.includes('--no-wait');
  const words = argv.filter((a) => a !== '--json' && a !== '--no-wait' && a !== '--wait');
  try {
    const command = parseCommand(words);
    if (command.name === 'help') {
      io.out(command.command ? helpText(command.command) : `Usage: flowops <command> [--json] [--no-wait]\n\n${helpText()}`);
      return 0;
    }
    const api = client(io.env);
    const result = await api.command({ argv: words });
    if (result.kind === 'operation' && wait) {
      const done = await follow(api, result.operation, io, json);
      if (json) io.out(JSON.stringify(done, null, 2));
      else io.out(`${done.status === 'succeeded' ? 'done' : 'failed'}\n${operationOutcome(done)}`);
      return done.status === 'succeeded' ? 0 : 1;
    }
    if (json) io.out(JSON.stringify(result.kind === 'operation' ? result.operation : result.data, null, 2));
    else io.out(renderText(result));
    return 0;
  } catch (err) {
    if (err instanceof CliError || err instanceof FlowError) {
      io.err(`flowops: ${err.message}`);
      return 2;
    }
    io.err(`flowops: unexpected error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
