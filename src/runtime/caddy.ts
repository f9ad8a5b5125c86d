import { log } from '../log.ts';
import type { DynoManager } from './dyno-manager.ts';

/** The server flowops owns in Caddy's config; every other server and app of that Caddy is left as it is. */
const SERVER = 'flowops';

type Json = Record<string, unknown>;

/**
 * FLOW_ROUTER=caddy: instead of its own router, the runtime drives a Caddy
 * server through Caddy's admin API, for a real domain with automatic HTTPS.
 * Each app with web dynos up is a route `<app>.<domain>` → those dynos
 * (Caddy balances them and proxies WebSockets); an app with none answers 503.
 * Caddy runs on its own (a system service), so apps keep answering while
 * flowops and its runtime restart.
 */
export class CaddyRouter {
  private timer: NodeJS.Timeout | null = null;
  private pushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly manager: DynoManager,
    private readonly admin: string,
    private readonly port: number,
    private readonly domain: string,
  ) {}

  /** Checks that Caddy answers, and gives it the routes of now. */
  async start(): Promise<void> {
    try {
      const answer = await fetch(`${this.admin}/config/`, { signal: AbortSignal.timeout(5000) });
      await answer.body?.cancel();
    } catch {
      throw new Error(
        `FLOW_ROUTER=caddy, but Caddy's admin API does not answer at ${this.admin}: start Caddy (systemctl start caddy, or caddy run), or set FLOW_CADDY_ADMIN to its admin address`,
      );
    }
    await this.push();
  }

  /** Something on the route table changed (a web dyno up or down, an app gone): Caddy hears of it shortly. */
  changed(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), 50);
  }

  /**
   * Resolves once Caddy has the routes of now: an order (release, scale,
   * restart) is answered only then, so a release reported live is served.
   */
  async settled(): Promise<void> {
    if (this.timer) this.flush();
    await this.pushing;
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pushing = this.pushing.then(() => this.push()).catch((err: unknown) => log.error({ err }, 'caddy: routes not updated'));
  }

  /** The runtime stops with its apps: Caddy forgets flowops' server rather than route to dynos that are gone. */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    await this.pushing;
    await fetch(`${this.admin}/config/apps/http/servers/${SERVER}`, { method: 'DELETE', signal: AbortSignal.timeout(5000) }).catch(
      () => undefined,
    );
  }

  /** The routes of every app, in Caddy's JSON config. */
  routes(): Json[] {
    const routes: Json[] = [];
    for (const [app, ports] of this.manager.webTargets()) {
      const host = `${app}.${this.domain}`;
      routes.push({
        '@id': `flowops-${app}`,
        match: [{ host: [host] }],
        handle: ports.length
          ? [{ handler: 'reverse_proxy', upstreams: ports.map((port) => ({ dial: `127.0.0.1:${port}` })) }]
          : [
              {
                handler: 'static_response',
                status_code: 503,
                headers: { 'Content-Type': ['text/plain; charset=utf-8'], 'Cache-Control': ['no-store'] },
                body: `${app} is not running: no web process of ${app} is up right now. Try again in a moment.\n`,
              },
            ],
        terminal: true,
      });
    }
    routes.push({
      handle: [
        {
          handler: 'static_response',
          status_code: 404,
          headers: { 'Content-Type': ['text/plain; charset=utf-8'] },
          body: 'There is no app at this address.\n',
        },
      ],
    });
    return routes;
  }

  /** Replaces flowops' server in Caddy's config (read, change ours, load). */
  private async push(): Promise<void> {
    const current = (await (await fetch(`${this.admin}/config/`, { signal: AbortSignal.timeout(10_000) })).json()) as Json | null;
    const config: Json = current ?? {};
    const apps = (config.apps ??= {}) as Json;
    const http = (apps.http ??= {}) as Json;
    const servers = (http.servers ??= {}) as Json;
    servers[SERVER] = {
      listen: [`:${this.port}`],
      routes: this.routes(),
      // On 443 Caddy gets certificates for the apps' hosts (automatic HTTPS); on another port it serves plain HTTP.
      ...(this.port === 443 ? {} : { automatic_https: { disable: true } }),
    };
    const answer = await fetch(`${this.admin}/load`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(config),
      signal: AbortSignal.timeout(10_000),
    });
    if (!answer.ok) throw new Error(`Caddy refused the routes (${answer.status}): ${(await answer.text()).slice(0, 500)}`);
  }
}
