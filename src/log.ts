import { pino } from 'pino';

/** Structured logs: a static message and ids, never a sentence built from values. */
export const log = pino({
  level: process.env.LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info'),
  base: undefined,
});
