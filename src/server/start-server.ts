import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { SettingError, type Settings } from '../config.ts';
import { openDatabase, type Database } from '../db/data-source.ts';
import { Engine } from '../engine/engine.ts';
import { Outbox } from '../engine/outbox.ts';
import { AnotherRunner } from '../engine/recovery.ts';
import { LocalPlatform } from '../platform/local/local-platform.ts';
import { PlacedPlatform } from '../platform/placed-platform.ts';
import { AppEntity } from '../db/entities.ts';
import { instanceKey } from '../db/instance-keys.ts';
import { KubernetesPlatform } from '../platform/kubernetes/kubernetes-platform.ts';
import { kubeConfigFromEnv } from '../platform/kubernetes/kube-config.ts';
import { slugUrl } from '../platform/slug-url.ts';
import { sourceOpener } from '../source/open-source.ts';
import { GitHubStatusNotifier } from '../github/status-notifier.ts';
import { mountGitHubWebhooks } from '../github/webhook-endpoint.ts';
import { createSlackFront, type SlackFront } from '../slack/slack-app.ts';
import { bubblewrapWorks, type SandboxMode } from '../platform/local/sandbox.ts';
import { lockDataDir, StartupError } from './data-dir-lock.ts';
import { createHttpApp, listen } from './http-server.ts';
import { UnverifiedBodyBudget } from '../http/unverified-body-budget.ts';
import { mountSlugEndpoint } from './slug-endpoint.ts';
import { openSlugStore } from '../platform/slug-store.ts';

export interface RunningServer {
  engine: Engine;
  database: Database;
  port: number;
  url: string;
  /** The admin token, and whether it was generated now (then it is printed once). */
  admin: { token: string; generated: boolean };
  /** The Slack front, when Slack is configured. */
  slack: SlackFront | null;
  statuses: GitHubStatusNotifier;
  /** Where repository code runs: `none` when bubblewrap is not installed (FLOW_SANDBOX=auto) or turned off. */
  sandbox: SandboxMode;
  /** The local platform the apps run on (tests stop their apps through it). */
  platform: LocalPlatform;
  /** The process's budget of request bytes buffered before their signature is checked. */
  unverifiedBodies: UnverifiedBodyBudget;
  /** The key of the slug endpoint's tokens (src/platform/slug-url.ts). */
  slugUrlKey: Buffer;
  close(): Promise<void>;
}

/** The file holding the generated admin token; the CLI reads it when FLOW_TOKEN is unset. */
export const adminTokenFile = (dataDir: string) => path.join(dataDir, 'admin-token');

async function adminToken(settings: Settings): Promise<{ token: string; generated: boolean }> {
  if (settings.adminToken) return { token: settings.adminToken, generated: false };
  const file = adminTokenFile(settings.dataDir);
  if (existsSync(file)) return { token: (await readFile(file, 'utf8')).trim(), generated: false };
  const token = `flo_${randomBytes(24).toString('base64url')}`;
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  return { token, generated: true };
}

/** The cluster of KUBECONFIG (or the pod's service account); one that cannot be read stops start-up naming the setting. */
function kubeConfig(kubeconfig: string | undefined) {
  try {
    return kubeConfigFromEnv({ KUBECONFIG: kubeconfig, KUBERNETES_SERVICE_HOST: process.env.KUBERNETES_SERVICE_HOST });
  } catch (err) {
    throw new SettingError(err instanceof Error ? err.message : String(err));
  }
}

/** FLOW_SANDBOX: bubblewrap when it is asked for or (auto) when it works here; none otherwise. */
function sandboxMode(setting: Settings['sandbox']): SandboxMode {
  if (setting === 'none') return 'none';
  if (bubblewrapWorks()) return 'bubblewrap';
  if (setting === 'bubblewrap') {
    throw new SettingError(
      'FLOW_SANDBOX=bubblewrap, but `bwrap` is not installed or cannot create a sandbox here; install it (Debian/Ubuntu: apt-get install bubblewrap) or set FLOW_SANDBOX=auto',
    );
  }
  return 'none';
}

/**
 * Starts one flowops process: it takes the data dir and the port first, so a
 * second server on the same data dir or port stops before it changes anything
 * (no database writes, no app restarts); then database, engine, local platform
 * and the HTTP routes, which answer 503 until then.
 */
export async function startServer(settings: Settings): Promise<RunningServer> {
  // The data dir holds the database, the admin token and every app's slug and logs: this user's only.
  await mkdir(settings.dataDir, { recursive: true, mode: 0o700 });
  await chmod(settings.dataDir, 0o700);
  const sandbox = sandboxMode(settings.sandbox);
  const lock = await lockDataDir(settings.dataDir);
  let handler: http.RequestListener = (_req, res) => {
    res
      .writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' })
      .end('{"error":{"code":"starting","message":"flowops is starting"}}');
  };
  let listening: { server: http.Server; port: number };
  try {
    listening = await listen((req, res) => handler(req, res), settings.port);
  } catch (err) {
    await lock.release();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new StartupError(
        `port ${settings.port} is already in use (another flowops, or another server); stop it or set PORT to a free port`,
        69,
      );
    }
    if ((err as NodeJS.ErrnoException).code === 'EACCES')
      throw new StartupError(`port ${settings.port} needs privileges this user does not have; set PORT to 1024 or above`, 69);
    throw err;
  }
  const { server, port } = listening;
  try {
    const slugStore = openSlugStore(settings.slugStore, settings.dataDir);
    await slugStore.check().catch((err: Error) => {
      throw new StartupError(err.message, 69);
    });
    const database = await openDatabase(settings.databaseUrl, settings.dataDir);
    const platform = new LocalPlatform(settings.dataDir, {
      bootTimeoutMs: settings.bootTimeoutMs,
      sandbox,
      buildTimeoutMs: settings.buildTimeoutMs,
      routerPort: settings.router.port,
      routerHost: settings.router.host,
      domain: settings.router.domain,
      caddyAdmin: settings.router.caddyAdmin,
      logLines: settings.logLines,
      slugStore,
    });
    const openSource = sourceOpener({ cacheDir: path.join(settings.dataDir, 'repos'), github: settings.github });
    // This process's outbox: the engine writes events, the notifiers below deliver them.
    const outbox = new Outbox(database.dataSource, randomUUID());
    const placementOf = async (app: string) => {
      const row = await database.dataSource
        .getRepository(AppEntity)
        .findOne({ where: { name: app }, select: { platform: true, namespace: true } });
      return row && { platform: row.platform, namespace: row.namespace };
    };
    // Every replica signs and checks slug URLs with the same key, made once in the database.
    const slugUrlKey = await instanceKey(database.dataSource, 'slug-urls');
    const kube = settings.kubernetes;
    const kubernetes = kube
      ? new KubernetesPlatform({
          kubeConfig: kubeConfig(kube.kubeconfig),
          builder: platform,
          slugUrl: (app, slugId) => slugUrl(kube.publicUrl, slugUrlKey, app, slugId),
          namespaceOf: async (app) => (await placementOf(app))?.namespace ?? kube.namespace,
          stackImage: kube.stackImage,
          domain: kube.domain,
          rolloutTimeoutMs: kube.rolloutTimeoutMs,
          jobTimeoutMs: kube.jobTimeoutMs,
        })
      : null;
    // Each app on the platform it was created on: this machine, or Kubernetes (src/platform/placed-platform.ts).
    const placed = new PlacedPlatform(platform, kubernetes, placementOf);
    const engine = new Engine(database.dataSource, placed, {
      openSource,
      outbox,
      locks: settings.locks,
      approvalTtlMs: settings.approvalTtlMs,
      auditRetentionDays: settings.auditRetentionDays,
      nudges: settings.nudges,
      placement: { default: settings.platform, kubernetes: kubernetes !== null, namespace: kube?.namespace ?? 'default' },
      jobQueue: settings.databaseUrl ? { databaseUrl: settings.databaseUrl, concurrency: settings.workerConcurrency } : undefined,
    });
    // Before anything is written: the local platform runs apps on this machine, so one flowops per database.
    await engine.register({ alone: settings.platform === 'local' }).catch(async (err: unknown) => {
      await database.close();
      if (!(err instanceof AnotherRunner)) throw err;
      throw new StartupError(
        `another flowops (host ${err.hostname}, pid ${err.pid}) runs on this database; the local platform runs apps on one machine, so one flowops per database: stop it, or run apps on Kubernetes (FLOW_PLATFORM=kubernetes) to run replicas`,
        75,
      );
    });
    const admin = await adminToken(settings);
    await engine.ensureAdmin(admin.token);
    await engine.start();
    let slack: SlackFront | null = null;
    const unverifiedBodies = new UnverifiedBodyBudget(settings.unverifiedBodyBytes);
    const app = createHttpApp(engine, (routes) => {
      if (settings.slack) slack = createSlackFront(engine, outbox, settings.slack, routes, unverifiedBodies, settings.github.webUrl);
      mountGitHubWebhooks(routes, { engine, db: database.dataSource, secret: settings.github.webhookSecret, budget: unverifiedBodies });
      mountSlugEndpoint(routes, { store: slugStore, key: slugUrlKey });
    });
    handler = app;
    const front = slack as SlackFront | null;
    await front?.start();
    const statuses = new GitHubStatusNotifier(engine, outbox);
    statuses.start();
    return {
      engine,
      database,
      port,
      url: `http://localhost:${port}`,
      admin,
      slack: front,
      statuses,
      sandbox,
      platform,
      unverifiedBodies,
      slugUrlKey,
      async close() {
        await closeHttp(server);
        await engine.stop();
        await statuses.stop();
        await front?.stop();
        await platform.close();
        await database.close();
        await lock.release();
      },
    };
  } catch (err) {
    await closeHttp(server);
    await lock.release();
    throw err;
  }
}

function closeHttp(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
