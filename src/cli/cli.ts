import { forTerminal } from '../format.ts';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type {
  ApiError,
  ApprovalProgress,
  ApprovalView,
  CommandRequest,
  LogsView,
  OperationProgress,
  OperationView,
  Result,
} from '../api/types.ts';
import { helpText, parseCommand } from '../commands/grammar.ts';
import { approvalLine, approvalNeeded, operationHeadline, operationOutcome, renderText } from '../commands/render-text.ts';
import { FlowError } from '../errors.ts';
import pkg from '../../package.json' with { type: 'json' };

export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

class CliError extends Error {}
/** The server did not answer at all (down, restarting). */
class Unreachable extends CliError {}

/** The calls of /api the CLI makes, answering the JSON src/api/types.ts describes. */
interface Client {
  command(body: CommandRequest): Promise<Result>;
  operation(id: number, after: string): Promise<OperationProgress>;
  approval(id: number): Promise<ApprovalProgress>;
  logs(app: string, query: Record<string, string>): Promise<LogsView>;
}

/** How long a CLI that follows something waits for a server that went away (a restart) before it gives up. */
const RECONNECT_MS = 120_000;

/**
 * Calls `ask` again while the server cannot be reached (it restarts), saying so
 * once, for up to RECONNECT_MS: what it then answers is the real outcome.
 */
async function reconnecting<T>(ask: () => Promise<T>, io: CliIO): Promise<T> {
  const deadline = Date.now() + RECONNECT_MS;
  let said = false;
  for (;;) {
    try {
      return await ask();
    } catch (err) {
      if (!(err instanceof Unreachable) || Date.now() > deadline) throw err;
      if (!said) io.err('flowops: the server went away; waiting for it to come back...');
      said = true;
      await sleep(500);
    }
  }
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
      throw new Unreachable(`cannot reach flowops at ${base}: is the server running (\`npm start\`)? Set FLOW_URL to its address`);
    }
    const payload: unknown = await response.json().catch(() => null);
    // A proxy in front of a restarting server answers 502/503 before flowops answers again.
    if ((response.status === 502 || response.status === 503) && method === 'GET')
      throw new Unreachable(`flowops answered ${response.status}`);
    if (!response.ok) throw new CliError((payload as Partial<ApiError> | null)?.error?.message ?? `flowops answered ${response.status}`);
    // The server's JSON is what src/api/types.ts says; this is where the CLI takes its word for it.
    return payload as T;
  };
  return {
    command: (body) => call('POST', '/api/commands', body),
    operation: (id, after) => call('GET', `/api/operations/${id}?after=${after}`),
    approval: (id) => call('GET', `/api/approvals/${id}`),
    logs: (app, query) => call('GET', `/api/apps/${encodeURIComponent(app)}/logs?${new URLSearchParams(query)}`),
  };
}

/** Follows an operation until it ends, printing its progress lines as they arrive. */
async function follow(api: Client, op: OperationView, io: CliIO, json: boolean): Promise<OperationView> {
  if (!json) io.out(`${operationHeadline(op)}...`);
  let after = '0';
  for (;;) {
    const { operation, events } = await reconnecting(() => api.operation(op.id, after), io);
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
    const now = await reconnecting(() => api.approval(request.id), io);
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

/** `logs --tail`: the lines that come after `next`, twice a second, until interrupted (Ctrl-C). */
async function tailLogs(
  api: Client,
  command: { app: string; dyno?: string; source?: string },
  next: number,
  print: (line: string) => void,
  io: CliIO,
): Promise<number> {
  let after = next;
  for (;;) {
    await sleep(400);
    const query: Record<string, string> = { after: String(after) };
    if (command.dyno) query.dyno = command.dyno;
    if (command.source) query.source = command.source;
    const page = await reconnecting(() => api.logs(command.app, query), io);
    for (const line of page.lines) print(line);
    after = page.next;
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
  // `--version` works everywhere, as `--help` does: `flowops logs --version` is the CLI's version too.
  if (words.includes('--version') || words[0] === '-v' || words[0] === 'version') {
    io.out(`flowops/${pkg.version} node-${process.version} ${process.platform}-${process.arch}`);
    return 0;
  }
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
    if (result.kind === 'data' && result.command === 'logs' && command.name === 'logs' && command.tail) {
      // Lines as they come: with --json each one a JSON string on its own line (never raw escapes).
      const print = (line: string) => (json ? terminal.out(JSON.stringify(line)) : io.out(line));
      for (const line of result.data.lines) print(line);
      return await tailLogs(api, command, result.data.next, print, io);
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
