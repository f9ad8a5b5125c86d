import { readSettings, SettingError } from './config.ts';
import { databaseOutage, isConnectionError } from './db/outage.ts';
import { log } from './log.ts';
import { StartupError } from './server/data-dir-lock.ts';
import { startServer, type RunningServer } from './server/start-server.ts';

let server: RunningServer | null = null;
let stopping = false;
/** Stops serving and exits; running jobs finish first, unless `deadlineMs` runs out (after a crash, waiting must not hang forever). */
const stop = (code: number, deadlineMs?: number) => {
  if (stopping) return;
  stopping = true;
  console.log('flowops stopping; apps keep running');
  if (deadlineMs) setTimeout(() => process.exit(code), deadlineMs).unref();
  void (server?.close() ?? Promise.resolve())
    .catch((err: unknown) => log.error({ err }, 'flowops did not stop cleanly'))
    .finally(() => process.exit(code));
};

// The last line of defence. Everything flowops starts is awaited or caught, but
// a library can still drop a rejected promise: that leaves nothing half done in
// this process, so it is logged and flowops keeps serving.
process.on('unhandledRejection', (reason) => {
  log.error({ err: reason }, 'unhandled promise rejection; still serving');
});
// An exception nobody caught can leave any state half changed. The one kind
// known to be harmless is a database connection dying (pg emits it on the
// connection, the pool replaces it): flowops keeps serving through it. Anything
// else stops the server, apps keep running, and its supervisor starts it afresh.
process.on('uncaughtException', (err, origin) => {
  if (isConnectionError(err)) {
    databaseOutage.noticed(err, { where: origin });
    return;
  }
  log.fatal({ err, origin }, 'uncaught exception; stopping');
  stop(70, 10_000);
});

try {
  const settings = readSettings();
  server = await startServer(settings);
  console.log(
    server.sandbox === 'bubblewrap'
      ? 'Sandbox: bubblewrap (builds, tests, release phases and dynos see only their own files)'
      : settings.sandbox === 'none'
        ? 'Sandbox: none (FLOW_SANDBOX=none): repository code runs unsandboxed, as this user'
        : 'Sandbox: none: repository code runs unsandboxed, as this user; install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) and restart',
  );
  const slack = settings.slack;
  console.log(
    !slack
      ? 'Slack: not configured (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET for HTTP mode, or SLACK_APP_TOKEN for Socket Mode)'
      : slack.mode === 'socket'
        ? 'Slack: Socket Mode (connected with SLACK_APP_TOKEN)'
        : `Slack: HTTP mode; point the app's request URLs at ${server.url}/slack/events`,
  );
  const router = settings.router;
  console.log(
    router.caddyAdmin
      ? `Router: Caddy (admin API ${router.caddyAdmin}) serves the apps at <app>.${router.domain}:${router.port}`
      : `Router: apps answer at http://<app>.${router.domain}:${router.port} (FLOW_ROUTER_PORT, FLOW_APPS_DOMAIN); they keep running when flowops stops`,
  );
  // Beyond one machine (README, Production): said only when set, so the default start-up reads as before.
  if (settings.slugStore.kind === 's3')
    console.log(
      `Slugs: in s3://${settings.slugStore.bucket}${settings.slugStore.prefix ? `/${settings.slugStore.prefix}` : ''} (FLOW_SLUG_STORE), uploaded once, fetched by any replica`,
    );
  if (settings.kubernetes)
    console.log(
      settings.platform === 'kubernetes'
        ? `Apps: on Kubernetes (namespace ${settings.kubernetes.namespace} unless --namespace), pods fetch slugs from ${settings.kubernetes.publicUrl}; replicas may share this database (FLOW_PLATFORM=kubernetes)`
        : `Apps: on this machine; on Kubernetes with apps:create --platform kubernetes (pods fetch slugs from ${settings.kubernetes.publicUrl})`,
    );
  if (server.admin.generated) {
    // Never the token itself: this output ends up in log files and collectors.
    console.log(
      `Admin token generated: stored in ${settings.dataDir}/admin-token (readable by this user only); the CLI on this machine uses it`,
    );
  }
  console.log(
    `flowops listening on ${server.url} (database: ${server.database.kind === 'pglite' ? `embedded PGlite in ${settings.dataDir}` : 'Postgres from DATABASE_URL'})`,
  );
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
} catch (err) {
  if (err instanceof SettingError) {
    console.error(`flowops: ${err.message}`);
    process.exit(78);
  }
  if (err instanceof StartupError) {
    console.error(`flowops: ${err.message}`);
    process.exit(err.exitCode);
  }
  log.error({ err }, 'flowops failed to start');
  console.error(`flowops failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
