import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { DynoManager } from './dyno-manager.ts';

/** An app name as flowops allows it: one DNS label. */
const APP_LABEL = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The app a `Host` header names: `shop.localhost:5000` → `shop` when the apps domain is `localhost`. */
export function appOfHost(host: string | undefined, domain: string): string | null {
  if (!host) return null;
  const name = host.replace(/:\d+$/, '').toLowerCase().replace(/\.$/, '');
  const suffix = `.${domain.toLowerCase()}`;
  if (!name.endsWith(suffix)) return null;
  const app = name.slice(0, -suffix.length);
  return APP_LABEL.test(app) ? app : null;
}

const escapeHtml = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function page(res: http.ServerResponse, status: number, title: string, detail: string): void {
  const body = `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body style="font-family:sans-serif;margin:4em auto;max-width:36em"><h1>${escapeHtml(title)}</h1><p>${escapeHtml(detail)}</p><p style="color:#888">flowops router</p></body></html>\n`;
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/**
 * The router: every app behind one port, chosen by the `Host` header
 * (`<app>.<domain>`), balanced round robin over the app's web dynos that are up.
 * WebSocket upgrades pass through. Each request is a `flowops[router]` line in
 * the app's log, in Heroku's format.
 */
export class Router {
  private readonly agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256 });
  private readonly proxy = createProxyServer({ xfwd: true, agent: this.agent });
  private readonly server: http.Server;

  constructor(
    private readonly manager: DynoManager,
    private readonly domain: string,
  ) {
    // A dyno that resets an upgraded connection must not take the router down.
    this.proxy.on('error', (_err, _req, res) => {
      if (res instanceof http.ServerResponse) {
        if (!res.headersSent) page(res, 503, 'Application error', 'The app did not answer this request.');
        else res.destroy();
      } else {
        res.destroy();
      }
    });
    this.server = http.createServer((req, res) => this.web(req, res));
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
    this.server.keepAliveTimeout = 65_000;
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    this.agent.destroy();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private web(req: http.IncomingMessage, res: http.ServerResponse): void {
    const started = performance.now();
    const host = req.headers.host ?? '';
    const app = appOfHost(host, this.domain);
    if (!app || !this.manager.hasApp(app)) {
      page(res, 404, 'No such app', `There is no app at ${host.slice(0, 200)}.`);
      return;
    }
    const target = this.manager.route(app);
    if (!target) {
      this.line(app, req, host, started, 503, 0, null, 'at=error code=H14 desc="No web processes running"');
      page(res, 503, `${app} is not running`, `No web process of ${app} is up right now. Try again in a moment.`);
      return;
    }
    // The hot path forwards with Node's own client over kept-alive connections: measured at about
    // twice http-proxy-3's throughput here (README, Benchmarks). Upgrades go through http-proxy-3.
    const headers = { ...req.headers };
    const remote = req.socket.remoteAddress ?? '';
    headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${String(headers['x-forwarded-for'])}, ${remote}` : remote;
    headers['x-forwarded-proto'] = 'http';
    headers['x-forwarded-port'] = String(req.socket.localPort ?? '');
    headers['x-request-start'] = String(Date.now());
    const upstream = http.request(
      { host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers, agent: this.agent, timeout: 30_000 },
      (answer) => {
        let bytes = 0;
        answer.on('data', (chunk: Buffer) => (bytes += chunk.length));
        // Hop-by-hop headers describe the dyno's connection to the router, not the router's to the client.
        const passed = { ...answer.headers };
        delete passed.connection;
        delete passed['keep-alive'];
        res.writeHead(answer.statusCode ?? 502, passed);
        answer.pipe(res);
        res.once('finish', () => this.line(app, req, host, started, res.statusCode, bytes, target.dyno, 'at=info'));
      },
    );
    // A dyno that does not answer within 30 s, or drops the connection: 503, as Heroku's router says (H12, H13).
    upstream.on('timeout', () => upstream.destroy(new Error('timeout')));
    upstream.on('error', (err) => {
      const timeout = err.message === 'timeout';
      this.line(
        app,
        req,
        host,
        started,
        503,
        0,
        target.dyno,
        timeout ? 'at=error code=H12 desc="Request timeout"' : 'at=error code=H13 desc="Connection closed without response"',
      );
      if (!res.headersSent) page(res, 503, 'Application error', 'The app did not answer this request in time, or dropped it.');
      else res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const app = appOfHost(req.headers.host, this.domain);
    if (!app || !this.manager.hasApp(app)) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const target = this.manager.route(app);
    if (!target) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    this.line(app, req, req.headers.host ?? '', performance.now(), 101, 0, target.dyno, 'at=info');
    this.proxy.ws(req, socket, head, { target: `http://127.0.0.1:${target.port}` });
  }

  private line(
    app: string,
    req: http.IncomingMessage,
    host: string,
    started: number,
    status: number,
    bytes: number,
    dyno: string | null,
    at: string,
  ): void {
    const service = Math.round(performance.now() - started);
    const path = JSON.stringify((req.url ?? '/').slice(0, 500));
    const fwd = JSON.stringify(String(req.socket.remoteAddress ?? ''));
    this.manager.note(
      app,
      'router',
      `${at} method=${(req.method ?? '').slice(0, 16)} path=${path} host=${host.slice(0, 200)} fwd=${fwd} dyno=${dyno ?? ''} service=${service}ms status=${status} bytes=${bytes} protocol=http`,
    );
  }
}
