import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
// @ts-expect-error: a JavaScript module of the repository's bin/, typed by its JSDoc.
import { bundled } from '../../bin/bundled.js';
import { Unavailable } from '../errors.ts';
import { processAlive } from '../exec.ts';
import { controlSocket, PROTOCOL, runtimeDir, type RuntimeHealth, type RuntimeOptions } from './protocol.ts';

const bundle = bundled as (entry: string, name: string) => Promise<string>;

/** The runtime could not be started or refused an order: said as it is, never as an unexpected error. */
export class RuntimeError extends Unavailable {
  constructor(message: string) {
    super(message, 5);
  }
}

/** How long a runtime may take to answer after it was started. */
const START_TIMEOUT_MS = 30_000;

/**
 * flowops' side of its runtime: finds the one running on the data dir, or starts
 * it (detached, so it outlives flowops), and sends it orders.
 */
/** How many times a health check that timed out is asked again before the runtime counts as gone. */
const HEALTH_ATTEMPTS = 5;

export class RuntimeClient {
  private health: RuntimeHealth | null = null;
  /** A runtime answered this client once: one started after that replaces one that died. */
  private seen = false;
  /** Called after this client started a new runtime (none ran, or it had died): it runs what it remembers, flowops must say what is right. */
  onStarted: (() => void) | null = null;
  private starting: Promise<RuntimeHealth> | null = null;
  private readonly socket: string;

  constructor(private readonly options: RuntimeOptions) {
    this.socket = controlSocket(options.dataDir);
  }

  /** The router's port, once the runtime is known. */
  get routerPort(): number | null {
    return this.health?.routerPort ?? null;
  }

  /** The runtime answering on the data dir, started when there is none (or an older one, which is replaced). */
  ensure(): Promise<RuntimeHealth> {
    this.starting ??= this.findOrStart().finally(() => (this.starting = null));
    return this.starting;
  }

  /** The running runtime, or null, without starting one. */
  async find(): Promise<RuntimeHealth | null> {
    // A runtime that is slow to answer (a loaded machine) is still there: asked again, never replaced for it.
    for (let attempt = 1; ; attempt++) {
      try {
        const health = await this.raw<RuntimeHealth>('GET', '/health', undefined, 2000);
        if (health.protocol !== PROTOCOL) return null;
        this.health = health;
        this.seen = true;
        return health;
      } catch (err) {
        if ((err as Error).message === 'timed out' && attempt < HEALTH_ATTEMPTS) continue;
        this.health = null;
        return null;
      }
    }
  }

  async call<T>(method: string, pathname: string, body?: unknown): Promise<T> {
    await this.ensure();
    try {
      return await this.raw<T>(method, pathname, body);
    } catch (err) {
      // Only an order that never reached a runtime is sent again (it went away since: start one, once);
      // one that was taken may have been carried out, and is never repeated.
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ECONNREFUSED' && code !== 'ENOENT')
        throw err instanceof RuntimeError ? err : new RuntimeError(`the runtime did not answer: ${(err as Error).message}`);
      this.health = null;
      await this.ensure();
      return this.raw<T>(method, pathname, body);
    }
  }

  /** Stops the runtime and every app it runs (tests; an admin taking flowops down for good). */
  async shutdown(): Promise<void> {
    const health = await this.find();
    if (!health) return;
    await this.raw('POST', '/shutdown').catch(() => undefined);
    const deadline = Date.now() + 15_000;
    while (processAlive(health.pid) && Date.now() < deadline) await sleep(25);
    this.health = null;
  }

  private async findOrStart(): Promise<RuntimeHealth> {
    if (this.health) return this.health;
    const found = await this.find();
    if (found) return found;
    // One that speaks another protocol (flowops was upgraded): stop it first.
    const old = await this.raw<RuntimeHealth>('GET', '/health', undefined, 2000).catch(() => null);
    if (old) {
      await this.raw('POST', '/shutdown').catch(() => undefined);
      while (processAlive(old.pid)) await sleep(25);
    }
    const dir = runtimeDir(this.options.dataDir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const logFile = path.join(dir, 'runtime.log');
    const fd = openSync(logFile, 'a');
    const started = Date.now();
    try {
      const entry = await bundle('src/runtime/process.ts', 'runtime');
      const child = spawn(process.execPath, [entry, JSON.stringify(this.options)], {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: { PATH: process.env.PATH, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' },
      });
      child.unref();
      let exited = false;
      child.once('exit', () => (exited = true));
      while (Date.now() - started < START_TIMEOUT_MS) {
        const replaced = this.seen;
        const health = await this.find();
        if (health) {
          if (replaced) this.onStarted?.();
          return health;
        }
        if (exited) break;
        await sleep(25);
      }
    } finally {
      closeSync(fd);
    }
    const last = readFileSync(logFile, 'utf8').trim().split('\n').at(-1) ?? '';
    throw new RuntimeError(`the runtime (router and dynos) did not start: ${last.replace(/^flowops runtime: /, '') || 'no answer'}`);
  }

  private raw<T>(method: string, pathname: string, body?: unknown, timeoutMs?: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        {
          socketPath: this.socket,
          method,
          path: pathname,
          headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
          // A connection of its own: Node's global agent would time out an order that takes longer than 5 s (a release's boot).
          agent: false,
          ...(timeoutMs ? { timeout: timeoutMs } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {
              return reject(new RuntimeError(`the runtime answered ${res.statusCode}: ${text.slice(0, 200)}`));
            }
            if ((res.statusCode ?? 500) >= 400)
              return reject(new RuntimeError((parsed as { error?: string }).error ?? `status ${res.statusCode}`));
            resolve(parsed as T);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end(payload);
    });
  }
}
