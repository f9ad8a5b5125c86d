import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSettings } from '../src/config.ts';

const root = path.resolve(import.meta.dirname, '..');

describe('settings', () => {
  it('has defaults for everything on a fresh machine', () => {
    const settings = readSettings({});

    expect(settings).toMatchObject({ port: 3000, databaseUrl: undefined, dataDir: path.resolve('.flowops'), adminToken: undefined, bootTimeoutMs: 60_000 });
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT must be a port number (0-65535), got "eighty"; set PORT=3000 or leave it unset'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL must be a postgres:// URL'],
    [{ FLOW_ADMIN_TOKEN: 'short' }, 'FLOW_ADMIN_TOKEN must be at least 16 characters'],
    [{ FLOW_BOOT_TIMEOUT: '-1' }, 'FLOW_BOOT_TIMEOUT must be a whole number of seconds'],
  ])('refuses %j, naming the setting and what to set', (env, message) => {
    expect(() => readSettings(env)).toThrow(message);
  });

  it('stops `npm start` with one line naming a malformed setting', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: root, env: { PATH: process.env.PATH, PORT: 'eighty' }, encoding: 'utf8' });

    expect(run.status).toBe(78);
    expect(run.stderr.trim()).toBe('flowops: PORT must be a port number (0-65535), got "eighty"; set PORT=3000 or leave it unset');
  });
});
