import { readSettings, SettingError } from './config.ts';
import { log } from './log.ts';
import { startServer } from './server/start-server.ts';

try {
  const settings = readSettings();
  const server = await startServer(settings);
  console.log(`flowops listening on ${server.url} (database: ${server.database.kind === 'pglite' ? `embedded PGlite in ${settings.dataDir}` : 'Postgres from DATABASE_URL'})`);
  const slack = settings.slack;
  console.log(
    !slack
      ? 'Slack: not configured (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET for HTTP mode, or SLACK_APP_TOKEN for Socket Mode)'
      : slack.mode === 'socket'
        ? 'Slack: Socket Mode (connected with SLACK_APP_TOKEN)'
        : `Slack: HTTP mode; point the app's request URLs at ${server.url}/slack/events`,
  );
  if (server.admin.generated) {
    // Never the token itself: this output ends up in log files and collectors.
    console.log(`Admin token generated: stored in ${settings.dataDir}/admin-token (readable by this user only); the CLI on this machine uses it`);
  }
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
  log.error({ err }, 'flowops failed to start');
  console.error(`flowops failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
