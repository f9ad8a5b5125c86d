import path from 'node:path';
import { z } from 'zod';

/** The settings of one flowops server, read from the environment. */
export interface Settings {
  port: number;
  databaseUrl: string | undefined;
  dataDir: string;
  adminToken: string | undefined;
  bootTimeoutMs: number;
}

export class SettingError extends Error {}

const portSchema = z.coerce.number().int().min(0).max(65535);

/**
 * Reads settings; a missing or malformed one throws a SettingError whose message is
 * the one line start-up prints: the setting's name and what to set.
 */
export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const port = portSchema.safeParse(env.PORT ?? '3000');
  if (!port.success) {
    throw new SettingError(`PORT must be a port number (0-65535), got "${env.PORT}"; set PORT=3000 or leave it unset`);
  }
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new SettingError(
      `DATABASE_URL must be a postgres:// URL, got "${databaseUrl}"; set DATABASE_URL=postgres://user@host:5432/db or unset it to use the embedded database`,
    );
  }
  const adminToken = env.FLOW_ADMIN_TOKEN || undefined;
  if (adminToken !== undefined && adminToken.length < 16) {
    throw new SettingError('FLOW_ADMIN_TOKEN must be at least 16 characters; set a long random value or unset it to have one generated');
  }
  const boot = z.coerce.number().int().min(1).safeParse(env.FLOW_BOOT_TIMEOUT ?? '60');
  if (!boot.success) {
    throw new SettingError(`FLOW_BOOT_TIMEOUT must be a whole number of seconds, got "${env.FLOW_BOOT_TIMEOUT}"; set FLOW_BOOT_TIMEOUT=60 or unset it`);
  }
  return {
    port: port.data,
    databaseUrl,
    dataDir: path.resolve(env.FLOW_DATA_DIR || '.flowops'),
    adminToken,
    bootTimeoutMs: boot.data * 1000,
  };
}
