import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSettings } from '../src/config.ts';

const root = path.resolve(import.meta.dirname, '..');

describe('settings', () => {
  it('chooses the Slack mode from the tokens given', () => {
    expect(readSettings({}).slack).toBeNull();
    expect(readSettings({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's' }).slack).toMatchObject({ mode: 'http' });
    expect(readSettings({ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1', FLOW_SLACK_ADMINS: 'U1, U2' }).slack).toMatchObject({
      mode: 'socket',
      admins: ['U1', 'U2'],
    });
  });

  it('has defaults for everything on a fresh machine', () => {
    const settings = readSettings({});

    expect(settings).toMatchObject({
      port: 3000,
      databaseUrl: undefined,
      dataDir: path.resolve('.flowops'),
      adminToken: undefined,
      bootTimeoutMs: 60_000,
      nudges: { intervalMs: 60_000, stagingDays: 2 },
    });
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT must be a port number (0-65535), got "eighty"; set PORT=3000 or leave it unset'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL must be a postgres:// URL'],
    [{ FLOW_ADMIN_TOKEN: 'short' }, 'FLOW_ADMIN_TOKEN must be at least 16 characters'],
    [{ FLOW_BOOT_TIMEOUT: '-1' }, 'FLOW_BOOT_TIMEOUT must be a whole number of seconds'],
    [
      { FLOW_BUILD_TIMEOUT: '15m' },
      'FLOW_BUILD_TIMEOUT must be a whole number of seconds, got "15m"; set FLOW_BUILD_TIMEOUT=900 or unset it',
    ],
    [
      { FLOW_NUDGE_INTERVAL: '1m' },
      'FLOW_NUDGE_INTERVAL must be a whole number of seconds, got "1m"; set FLOW_NUDGE_INTERVAL=60 or unset it',
    ],
    [
      { FLOW_NUDGE_STAGING_DAYS: '0' },
      'FLOW_NUDGE_STAGING_DAYS must be a whole number of days from 1 to 365, got "0"; set FLOW_NUDGE_STAGING_DAYS=2 or unset it',
    ],
    [{ GITHUB_API_URL: 'github.example.com' }, 'GITHUB_API_URL must be an http(s) URL like https://github.example.com/api/v3'],
    [{ SLACK_SIGNING_SECRET: 's' }, "SLACK_BOT_TOKEN is missing: set it to the app's Bot User OAuth Token (xoxb-...)"],
    [{ SLACK_BOT_TOKEN: 'xoxp-user' }, 'SLACK_BOT_TOKEN must be a bot token (xoxb-...)'],
    [
      { SLACK_BOT_TOKEN: 'xoxb-1' },
      'SLACK_SIGNING_SECRET is missing: set it to the Signing Secret from "Basic Information" (HTTP mode), or set SLACK_APP_TOKEN for Socket Mode',
    ],
    [{ SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xoxb-2' }, 'SLACK_APP_TOKEN must be an app-level token (xapp-...)'],
    [
      { SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's', SLACK_API_URL: 'slack.com/api' },
      'SLACK_API_URL must be an http(s) URL ending in "/"',
    ],
    [
      { SLACK_BOT_TOKEN: 'xoxb-1', SLACK_SIGNING_SECRET: 's', FLOW_SLACK_ADMINS: 'U1,alice' },
      'FLOW_SLACK_ADMINS must be Slack user ids (U0123ABCD), comma-separated; "alice" is not one',
    ],
  ])('refuses %j, naming the setting and what to set', (env, message) => {
    expect(() => readSettings(env)).toThrow(message);
  });

  it('stops `npm start` with one line naming a malformed setting', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH, PORT: 'eighty' },
      encoding: 'utf8',
    });

    expect(run.status).toBe(78);
    expect(run.stderr.trim()).toBe('flowops: PORT must be a port number (0-65535), got "eighty"; set PORT=3000 or leave it unset');
  });
});
