import { readSettings, SettingError } from './config.ts';
import { log } from './log.ts';
import { StartupError } from './server/data-dir-lock.ts';
import { startServer } from './server/start-server.ts';

try {
  const settings = readSettings();
  const server = await startServer(settings);
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
  if (server.admin.generated) {
    console.log(`Admin token (printed once, stored in ${settings.dataDir}/admin-token; the CLI on this machine uses it): ${server.admin.token}`);
  }
  console.log(`flowops listening on ${server.url} (database: ${server.database.kind === 'pglite' ? `embedded PGlite in ${settings.dataDir}` : 'Postgres from DATABASE_URL'})`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    console.log('flowops stopping; apps keep running');
    void server.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
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
