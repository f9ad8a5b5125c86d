import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { log } from '../log.ts';
import { stopDynos } from '../platform/local/processes.ts';
import { Sandbox } from '../platform/local/sandbox.ts';
import { DynoManager } from './dyno-manager.ts';
import {
  controlSocket,
  PROTOCOL,
  runtimeDir,
  runtimeFile,
  type Formation,
  type LogQuery,
  type RuntimeHealth,
  type RuntimeOptions,
  type RuntimeRelease,
} from './protocol.ts';
import { CaddyRouter } from './caddy.ts';
import { Router } from './router.ts';

/*
 * flowops' runtime: the long-lived process that runs the apps — their dynos
 * (restarted when they crash), the router in front of them, and their logs. The
 * flowops server starts it and finds it again when it starts, so apps keep
 * answering while flowops restarts or is killed. It takes orders from flowops
 * on a Unix socket in the data dir (readable by its user only).
 */

const MAX_BODY = 8 * 2 ** 20;

async function body<T>(req: http.IncomingMessage): Promise<T> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error('request too large');
    chunks.push(chunk);
  }
  return (chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {}) as T;
}

function send(res: http.ServerResponse, status: number, payload: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
}

/** Is a runtime answering on this data dir's socket? */
function answering(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socket);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

export async function runRuntime(options: RuntimeOptions): Promise<void> {
  const dir = runtimeDir(options.dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync(path.join(options.dataDir, 'apps'), { recursive: true });
  const socket = controlSocket(options.dataDir);
  if (await answering(socket)) throw new Error(`another runtime is running on ${options.dataDir}`);
  rmSync(socket, { force: true });

  const sandbox = new Sandbox(options.sandbox, options.dataDir);
  // Dynos of a runtime that died: they no longer belong to anyone.
  const strays = sandbox.findMarked().filter((p) => p.tag.startsWith('dyno:'));
  if (strays.length) {
    log.warn({ processes: strays.length }, 'stopping dynos of a runtime that died');
    await stopDynos(
      strays.map((p) => ({ type: p.tag, pid: p.pid, port: null })),
      2000,
    );
  }
  const manager = new DynoManager({ dataDir: options.dataDir, sandbox, bootTimeoutMs: options.bootTimeoutMs, logLines: options.logLines });
  const router = options.caddyAdmin
    ? new CaddyRouter(manager, options.caddyAdmin, options.routerPort, options.domain)
    : new Router(manager, options.domain);
  let routerPort = options.routerPort;
  try {
    if (router instanceof CaddyRouter) {
      await router.start();
      manager.onChange(() => router.changed());
    } else routerPort = await router.listen(options.routerPort, options.routerHost);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw new Error(
        `the router's port ${options.routerPort} is already in use (another flowops, or another server); stop it or set FLOW_ROUTER_PORT to a free port`,
      );
    if (code === 'EACCES')
      throw new Error(
        `the router's port ${options.routerPort} needs privileges this user does not have; set FLOW_ROUTER_PORT to 1024 or above (or put Caddy in front)`,
      );
    throw err;
  }

  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    await router.close();
    await manager.close();
    rmSync(runtimeFile(options.dataDir), { force: true });
    rmSync(socket, { force: true });
    process.exit(0);
  };

  const control = http.createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) send(res, 400, { error: err instanceof Error ? err.message : String(err) });
    });
  });
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    // Caddy hears of route changes shortly after they happen; an order is answered once it has.
    const reply = async (status: number, payload: unknown) => {
      if (router instanceof CaddyRouter && req.method !== 'GET') await router.settled();
      send(res, status, payload);
    };
    const url = new URL(req.url ?? '/', 'http://runtime');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const route = `${req.method} /${parts[0] ?? ''}${parts.length > 2 ? `/:app/${parts[2]}` : parts.length === 2 ? '/:app' : ''}`;
    const app = parts[1] ?? '';
    switch (route) {
      case 'GET /health':
        return reply(200, { protocol: PROTOCOL, pid: process.pid, routerPort } satisfies RuntimeHealth);
      case 'POST /shutdown':
        send(res, 200, {});
        return void shutdown();
      case 'POST /recover': {
        const { releases, apps, asOf } = await body<{ releases: RuntimeRelease[]; apps?: string[]; asOf?: number }>(req);
        await manager.recover(releases, apps ?? releases.map((r) => r.app), typeof asOf === 'number' ? asOf : undefined);
        return reply(200, {});
      }
      case 'POST /apps/:app/release':
        try {
          const release = await body<RuntimeRelease>(req);
          await manager.serially(release.app, () => manager.deploy(release));
          return reply(200, {});
        } catch (err) {
          return reply(409, { error: err instanceof Error ? err.message : String(err) });
        }
      case 'PUT /apps/:app/formation': {
        const { formation } = await body<{ formation: Formation }>(req);
        await manager.serially(app, () => manager.scale(app, formation));
        return reply(200, manager.ps(app));
      }
      case 'POST /apps/:app/restart': {
        const { target } = await body<{ target?: string }>(req);
        return reply(200, { dynos: await manager.serially(app, () => manager.restart(app, target)) });
      }
      case 'POST /apps/:app/stop': {
        const { target } = await body<{ target: string }>(req);
        return reply(200, { dynos: await manager.serially(app, () => manager.stop(app, target)) });
      }
      case 'DELETE /apps/:app':
        await manager.serially(app, () => manager.destroy(app));
        return reply(200, {});
      case 'GET /apps/:app/ps':
        return reply(200, manager.ps(app));
      case 'GET /apps/:app/logs': {
        const q = url.searchParams;
        const query: LogQuery = {
          num: q.has('num') ? Number(q.get('num')) : undefined,
          dyno: q.get('dyno') ?? undefined,
          source: (q.get('source') as LogQuery['source']) ?? undefined,
          after: q.has('after') ? Number(q.get('after')) : undefined,
        };
        return reply(200, manager.log(app).query(query));
      }
      case 'POST /apps/:app/logs': {
        const { dyno, text, source } = await body<{ dyno: string; text: string; source?: 'app' | 'flowops' }>(req);
        for (const line of text.split('\n')) manager.note(app, dyno, line, source === 'app' ? 'app' : 'flowops');
        return reply(200, {});
      }
      case 'GET /crashed':
        return reply(200, manager.crashedDynos());
      case 'GET /crashes':
        return reply(200, manager.pendingCrashes());
      case 'DELETE /crashes/:app':
        manager.takeCrash(app);
        return reply(200, {});
      default:
        return reply(404, { error: `no route ${route}` });
    }
  };
  await new Promise<void>((resolve, reject) => {
    control.once('error', reject);
    control.listen(socket, () => resolve());
  });

  // A data dir that was removed leaves the runtime nothing to run: it stops with its apps.
  setInterval(() => {
    if (!existsSync(options.dataDir)) void shutdown();
  }, 2000).unref();
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  // Like flowops: a dropped promise is logged, an uncaught exception stops the runtime (flowops starts it again).
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'runtime: unhandled rejection'));

  writeFileSync(runtimeFile(options.dataDir), JSON.stringify({ protocol: PROTOCOL, pid: process.pid, routerPort } satisfies RuntimeHealth));
  log.info({ routerPort, pid: process.pid }, 'runtime ready');
}
