import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketServer, type WebSocket } from 'ws';

export interface SlackCall {
  method: string;
  args: Record<string, unknown>;
  /** What the fake answered. */
  result?: Record<string, unknown>;
  /** When it arrived (ms since the epoch). */
  at?: number;
}

const JSON_FIELDS = new Set(['blocks', 'view', 'attachments', 'files']);
const KNOWN = new Set([
  'auth.test',
  'chat.postMessage',
  'chat.postEphemeral',
  'chat.update',
  'views.publish',
  'views.open',
  'views.update',
  'apps.connections.open',
  'files.getUploadURLExternal',
  'files.completeUploadExternal',
]);

/** A file sent to an upload_url the fake handed out (files.uploadV2's second step). */
export interface SlackUpload {
  fileId: string;
  /** What files.getUploadURLExternal was told. */
  filename: string;
  length: number;
  /** The bytes that arrived. */
  bytes: Buffer;
}

/**
 * A stand-in for Slack's Web API on a local port, as Renovate's HTTP mocks are:
 * it records every call so tests assert what was sent, and it answers a method
 * nobody expected with an error and remembers it. It also takes `response_url`
 * posts, and can speak Socket Mode over a local WebSocket.
 */
export class FakeSlack {
  readonly calls: SlackCall[] = [];
  readonly responses: Record<string, unknown>[] = [];
  readonly unexpected: string[] = [];
  /** Files uploaded through the upload URLs the fake handed out, by file id. */
  readonly uploads = new Map<string, SlackUpload>();
  /** Channels the bot is not in: Slack refuses to share an upload there (`not_in_channel`). */
  readonly outside = new Set<string>();
  /** Channels Slack answers `is_archived` for. */
  readonly archived = new Set<string>();
  /** How long each Web API call takes to answer (a slow Slack). */
  delayMs = 0;
  readonly sockets: WebSocket[] = [];
  private readonly failures: { method: string; status: number; retryAfter?: number }[] = [];
  private ts = 1_700_000_000;
  private held: Promise<void> | null = null;
  private releaseHeld: () => void = () => undefined;
  private server!: http.Server;
  private wss: WebSocketServer | null = null;
  url = '';

  static async start(options: { socketMode?: boolean } = {}): Promise<FakeSlack> {
    const fake = new FakeSlack();
    fake.server = http.createServer((req, res) => void fake.handle(req, res));
    if (options.socketMode) {
      fake.wss = new WebSocketServer({ server: fake.server, path: '/socket' });
      fake.wss.on('connection', (socket) => {
        fake.sockets.push(socket);
        socket.send(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'fake' }, connection_info: { app_id: 'A1' } }));
      });
    }
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  get apiUrl(): string {
    return `${this.url}/api/`;
  }

  responseUrl(id: string): string {
    return `${this.url}/respond/${id}`;
  }

  /** Holds every Web API call unanswered until `release()`: a Slack that does not answer. */
  hold(): void {
    this.held = new Promise((resolve) => (this.releaseHeld = resolve));
  }

  release(): void {
    this.held = null;
    this.releaseHeld();
  }

  /** The next call of `method` fails with this status (429 with Retry-After: a rate limit). */
  failNext(method: string, status: number, retryAfter?: number): void {
    this.failures.push({ method, status, retryAfter });
  }

  callsOf(method: string): SlackCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  async waitFor<T>(find: () => T | undefined | false, what: string, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find();
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; calls: ${JSON.stringify(this.calls.map((c) => c.method))}`);
      await sleep(50);
    }
  }

  /** With SLACK_DUMP=<file> set, writes every call as `{method, body}` lines, for ../shared/tools/blockkit-preview. */
  async dump(name: string): Promise<void> {
    const file = process.env.SLACK_DUMP;
    if (!file) return;
    const { appendFile } = await import('node:fs/promises');
    const lines = [
      ...this.calls.map((c) => ({
        method: `${name}: ${c.method}${c.args.thread_ts ? ' (thread)' : ''}`,
        body: c.args,
        at: (c as { at?: number }).at,
      })),
      ...this.responses.map((r) => ({ method: `${name}: response`, body: r })),
    ];
    await appendFile(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  }

  async close(): Promise<void> {
    await this.dump('slack');
    for (const socket of this.sockets) socket.terminate();
    this.wss?.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const raw = body.toString();
    const url = new URL(req.url ?? '/', this.url);
    if (url.pathname.startsWith('/upload/')) {
      await this.receiveUpload(url.pathname.slice(8), req, body, res);
      return;
    }
    if (url.pathname.startsWith('/respond/')) {
      this.responses.push({ id: url.pathname.slice(9), ...(JSON.parse(raw || '{}') as Record<string, unknown>) });
      res.writeHead(200).end('ok');
      return;
    }
    const method = url.pathname.replace(/^\/api\//, '');
    if (this.held) await this.held;
    const args: Record<string, unknown> = {};
    if ((req.headers['content-type'] ?? '').includes('json')) Object.assign(args, JSON.parse(raw || '{}'));
    else for (const [k, v] of new URLSearchParams(raw)) args[k] = JSON_FIELDS.has(k) ? JSON.parse(v) : v;
    const failure = this.failures.findIndex((f) => f.method === method);
    if (failure >= 0) {
      const { status, retryAfter } = this.failures.splice(failure, 1)[0]!;
      this.calls.push({ method: `${method} (failed ${status})`, args });
      res
        .writeHead(status, { 'content-type': 'application/json', ...(retryAfter ? { 'retry-after': String(retryAfter) } : {}) })
        .end(JSON.stringify({ ok: false, error: status === 429 ? 'ratelimited' : 'internal_error' }));
      return;
    }
    if (this.delayMs) await sleep(this.delayMs);
    if (typeof args.channel === 'string' && this.archived.has(args.channel)) {
      // Slack answers an archived channel with HTTP 200 and ok: false, for ever.
      this.calls.push({ method: `${method} (is_archived)`, args });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, error: 'is_archived' }));
      return;
    }
    const call: SlackCall = { method, args, at: Date.now() };
    this.calls.push(call);
    if (!KNOWN.has(method)) {
      this.unexpected.push(method);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, error: 'unknown_method' }));
      return;
    }
    const answer: Record<string, unknown> = { ok: true };
    if (method === 'auth.test') Object.assign(answer, { user_id: 'UBOT', team_id: 'T1', bot_id: 'B1' });
    if (method === 'chat.postMessage') Object.assign(answer, { channel: args.channel, ts: `${this.ts++}.000100` });
    if (method === 'chat.update') Object.assign(answer, { channel: args.channel, ts: args.ts });
    if (method === 'views.open') Object.assign(answer, { view: { id: `V${this.ts++}`, ...(args.view as object) } });
    if (method === 'views.update') Object.assign(answer, { view: { id: args.view_id, ...(args.view as object) } });
    if (method === 'files.getUploadURLExternal') {
      const fileId = `F${this.ts++}`;
      this.uploads.set(fileId, { fileId, filename: String(args.filename), length: Number(args.length), bytes: Buffer.alloc(0) });
      Object.assign(answer, { upload_url: `${this.url}/upload/${fileId}`, file_id: fileId });
    }
    if (method === 'files.completeUploadExternal') {
      const files = (args.files ?? []) as { id: string; title?: string }[];
      if (typeof args.channel_id === 'string' && this.outside.has(args.channel_id))
        Object.assign(answer, { ok: false, error: 'not_in_channel' });
      else if (!files.every((f) => this.uploads.get(f.id)?.bytes.length)) {
        // Slack completes only files whose bytes arrived.
        Object.assign(answer, { ok: false, error: 'file_not_found' });
      } else Object.assign(answer, { files: files.map((f) => ({ id: f.id, title: f.title, name: this.uploads.get(f.id)!.filename })) });
    }
    if (method === 'apps.connections.open') Object.assign(answer, { url: `${this.url.replace('http', 'ws')}/socket` });
    call.result = answer;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
  }

  /** The upload_url step: the file's bytes, raw or as the one file of a multipart form (as @slack/web-api sends them). */
  private async receiveUpload(fileId: string, req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): Promise<void> {
    const upload = this.uploads.get(fileId);
    this.calls.push({ method: 'upload', args: { fileId, bytes: body.length }, at: Date.now() });
    if (!upload) {
      this.unexpected.push(`upload to unknown file ${fileId}`);
      res.writeHead(404).end('not found');
      return;
    }
    let bytes = body;
    const type = req.headers['content-type'] ?? '';
    if (type.startsWith('multipart/form-data')) {
      const form = await new Request('http://fake/', {
        method: 'POST',
        headers: { 'content-type': type },
        body: new Uint8Array(body),
      }).formData();
      const file = [...form.values()].find((v): v is File => typeof v !== 'string');
      bytes = file ? Buffer.from(await file.arrayBuffer()) : Buffer.alloc(0);
    }
    upload.bytes = bytes;
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`OK - ${bytes.length}`);
  }
}

/** Signs a request body as Slack does: v0 HMAC-SHA256 of `v0:<timestamp>:<body>` with the signing secret. */
export function slackSignature(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

/** POSTs a body to flowops' Slack endpoint, signed (or mis-signed) as Slack signs it. */
export async function postToSlackEndpoint(
  url: string,
  body: string,
  options: { secret: string; contentType: string; timestamp?: number; signature?: string },
): Promise<Response> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  return fetch(`${url}/slack/events`, {
    method: 'POST',
    headers: {
      'content-type': options.contentType,
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': options.signature ?? slackSignature(options.secret, timestamp, body),
    },
    body,
  });
}

/** A slash command's form body, as Slack sends `/flow <text>`. */
export function slashCommand(fields: {
  text: string;
  user: string;
  userName: string;
  channel: string;
  responseUrl: string;
  /** The typing user's workspace: T1 (the app's own, as the fake's auth.test says) unless a Slack Connect guest's. */
  team?: string;
}): string {
  return new URLSearchParams({
    token: 'legacy-verification-token',
    team_id: fields.team ?? 'T1',
    team_domain: 'acme',
    channel_id: fields.channel,
    channel_name: 'deploys',
    user_id: fields.user,
    user_name: fields.userName,
    command: '/flow',
    text: fields.text,
    api_app_id: 'A1',
    is_enterprise_install: 'false',
    response_url: fields.responseUrl,
    trigger_id: '1.2.3',
  }).toString();
}

/** A block_actions payload, as Slack sends a button click. */
export function buttonClick(fields: {
  actionId: string;
  value: string;
  user: string;
  userName: string;
  channel: string;
  responseUrl: string;
  messageTs?: string;
}): string {
  const payload = {
    type: 'block_actions',
    user: { id: fields.user, username: fields.userName, name: fields.userName, team_id: 'T1' },
    api_app_id: 'A1',
    token: 'legacy-verification-token',
    container: { type: 'message', message_ts: fields.messageTs ?? '1.1', channel_id: fields.channel, is_ephemeral: false },
    trigger_id: '1.2.3',
    team: { id: 'T1', domain: 'acme' },
    channel: { id: fields.channel, name: 'deploys' },
    message: { type: 'message', ts: fields.messageTs ?? '1.1', text: 'release' },
    response_url: fields.responseUrl,
    actions: [
      {
        action_id: fields.actionId,
        block_id: 'operation_actions',
        value: fields.value,
        type: 'button',
        text: { type: 'plain_text', text: 'x' },
        action_ts: '1.2',
      },
    ],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/** A view_submission payload, as Slack sends a dialog's Submit: its callback id, metadata and input values. */
export function viewSubmission(fields: {
  callbackId: string;
  privateMetadata: string;
  /** Input values by block id then action id, as Slack's view.state.values. */
  values: Record<string, Record<string, unknown>>;
  user: string;
  userName: string;
  viewId?: string;
}): string {
  const payload = {
    type: 'view_submission',
    team: { id: 'T1', domain: 'acme' },
    user: { id: fields.user, username: fields.userName, name: fields.userName, team_id: 'T1' },
    api_app_id: 'A1',
    token: 'legacy-verification-token',
    trigger_id: '1.2.4',
    view: {
      id: fields.viewId ?? 'V1',
      team_id: 'T1',
      type: 'modal',
      callback_id: fields.callbackId,
      private_metadata: fields.privateMetadata,
      blocks: [],
      state: { values: fields.values },
      hash: '1.abc',
      title: { type: 'plain_text', text: 'x' },
      app_id: 'A1',
      bot_id: 'B1',
    },
    response_urls: [],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}
