import { forTerminal } from '../format.ts';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiError, ApprovalProgress, ApprovalView, CommandRequest, OperationProgress, OperationView, Result } from '../api/types.ts';
import { helpText, parseCommand } from '../commands/grammar.ts';
import { approvalLine, approvalNeeded, operationHeadline, operationOutcome, renderText } from '../commands/render-text.ts';
import { FlowError } from '../errors.ts';

export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

class CliError extends Error {}

/** The calls of /api the CLI makes, answering the JSON src/api/types.ts describes. */
interface Client {
  command(body: CommandRequest): Promise<Result>;
  operation(id: number, after: string): Promise<OperationProgress>;
  approval(id: number): Promise<ApprovalProgress>;
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
    approval: (id) => call('GET', `/api/approvals/${id}`),
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

/** Waits for an approval request to be decided, printing each approval as it comes. */
async function awaitDecision(api: Client, request: ApprovalView, io: CliIO, json: boolean): Promise<ApprovalView> {
  let seen = request.approvals.length;
  for (;;) {
    const now = await api.approval(request.id);
    for (const a of now.approvals.slice(seen))
      if (!json) io.out(`  approved by ${a.user} (${now.approvals.indexOf(a) + 1} of ${now.needed})`);
    seen = now.approvals.length;
    if (now.status !== 'pending' && !(now.status === 'approved' && now.operation === null)) return now;
    await sleep(1000);
  }
}

/** Follows the operation an approved request became, and prints how it ended; the exit status. */
async function followShipped(api: Client, request: ApprovalView, io: CliIO, json: boolean): Promise<number> {
  if (request.status !== 'shipped' || request.operation === null) {
    if (json) io.out(JSON.stringify(request, null, 2));
    else io.out(approvalLine(request));
    return 1;
  }
  const { operation } = await api.operation(request.operation, '0');
  const done = await follow(api, operation, io, json);
  if (json) io.out(JSON.stringify(done, null, 2));
  else io.out(`${done.status === 'succeeded' ? 'done' : 'failed'}\n${operationOutcome(done)}`);
  return done.status === 'succeeded' ? 0 : 1;
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
    if (result.kind === 'approval') {
      if (!wait) {
        io.out(json ? JSON.stringify(result.approval, null, 2) : approvalNeeded(result.approval));
        return 0;
      }
      if (!json) io.out(`${approvalNeeded(result.approval)}\nWaiting for it (Ctrl-C stops waiting; the request stays)...`);
      const decided = await awaitDecision(api, result.approval, io, json);
      if (!json && decided.status === 'shipped') io.out(approvalLine(decided));
      return followShipped(api, decided, io, json);
    }
    // An approval that completed a request ships it: follow it as the requester would.
    if (result.kind === 'data' && result.command === 'approve' && result.data.status === 'shipped' && wait) {
      if (!json) io.out(approvalLine(result.data));
      return followShipped(api, result.data, io, json);
    }
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
