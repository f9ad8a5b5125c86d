import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import type { Settings } from '../config.ts';
import { openDatabase, type Database } from '../db/data-source.ts';
import { Engine } from '../engine/engine.ts';
import { LocalPlatform } from '../platform/local/local-platform.ts';
import { sourceOpener } from '../source/open-source.ts';
import { GitHubStatusNotifier } from '../github/status-notifier.ts';
import { mountGitHubWebhooks } from '../github/webhook-endpoint.ts';
import { createSlackFront, type SlackFront } from '../slack/slack-app.ts';
import { createHttpApp, listen } from './http-server.ts';

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

/** Starts one flowops process: database, engine, local platform, HTTP server. */
export async function startServer(settings: Settings): Promise<RunningServer> {
  await mkdir(settings.dataDir, { recursive: true });
  const database = await openDatabase(settings.databaseUrl, settings.dataDir);
  const platform = new LocalPlatform(settings.dataDir, settings.bootTimeoutMs);
  const openSource = sourceOpener({ cacheDir: path.join(settings.dataDir, 'repos'), github: settings.github });
  const engine = new Engine(database.dataSource, platform, { openSource });
  const admin = await adminToken(settings);
  await engine.ensureAdmin(admin.token);
  await engine.start();
  let slack: SlackFront | null = null;
  const http = createHttpApp(engine, (app) => {
    if (settings.slack) slack = createSlackFront(engine, settings.slack, app);
    mountGitHubWebhooks(app, engine, settings.github.webhookSecret);
  });
  const { server, port } = await listen(http, settings.port);
  const front = slack as SlackFront | null;
  await front?.start();
  const statuses = new GitHubStatusNotifier(engine);
  statuses.start();
  return {
    engine,
    database,
    port,
    url: `http://localhost:${port}`,
    admin,
    slack: front,
    statuses,
    async close() {
      await closeHttp(server);
      await engine.stop();
      await statuses.stop();
      await front?.stop();
      await platform.close();
      await database.close();
    },
  };
}

function closeHttp(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
