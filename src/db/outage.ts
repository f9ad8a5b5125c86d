import { setTimeout as sleep } from 'node:timers/promises';
import { log } from '../log.ts';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
]);
/** Postgres' own "try again": shutting down, starting up, out of connection slots. Class 08 (connection exception) is matched whole. */
const SERVER_CODES = new Set(['57P01', '57P02', '57P03', '53300']);
/** What the pg driver says when its connection went away (it has no code for these). */
const DRIVER_MESSAGES =
  /Connection terminated|connection timeout|timeout exceeded when trying to connect|not queryable|Connection refused|server closed the connection/i;

/**
 * Whether an error means the database could not be reached (a network
 * failure, a dropped connection, a server restarting), as opposed to a query
 * the database answered with an error. Only the former is worth waiting out.
 * Looks through TypeORM's wrapper (`driverError`) and `cause`.
 */
export function isConnectionError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || SERVER_CODES.has(code) || code.startsWith('08'))) return true;
    if (typeof message === 'string' && DRIVER_MESSAGES.test(message)) return true;
    e = (e as { driverError?: unknown }).driverError ?? (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Whether the database is known to be unreachable, so that an outage is
 * logged once when it is first noticed and once when it is over, however many
 * loops and jobs run into it meanwhile.
 */
class DatabaseOutage {
  private since: number | null = null;

  /** Notes a failed attempt; logs the first of an outage (and returns true). */
  noticed(err: unknown, context: Record<string, unknown>): boolean {
    if (this.since !== null) return false;
    this.since = Date.now();
    log.error(
      { ...context, err: err instanceof Error ? err.message : String(err) },
      'database unreachable; retrying with back-off until it is back',
    );
    return true;
  }

  /** Notes a query that worked; logs the end of an outage. */
  answered(): void {
    if (this.since === null) return;
    log.warn({ downForMs: Date.now() - this.since }, 'database is back');
    this.since = null;
  }

  get down(): boolean {
    return this.since !== null;
  }
}

export const databaseOutage = new DatabaseOutage();

const FIRST_WAIT_MS = 100;
const MAX_WAIT_MS = 5000;

/**
 * Runs `work` (a database write that must not be lost: an operation's
 * outcome, a release's status) until the database answers: a connection
 * error is waited out with back-off (100 ms doubling to 5 s), logged once
 * for this piece of work (`context` says which), not once per try;
 * any other error is thrown as it is. `work` must be safe to run again: a
 * transaction, or a single statement.
 */
export async function untilDatabaseAnswers<T>(context: Record<string, unknown>, work: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      const result = await work();
      databaseOutage.answered();
      return result;
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      // One line per waiting piece of work: the outage's own line when it is the first to notice.
      if (!databaseOutage.noticed(err, context) && attempt === 0) log.warn(context, 'waiting for the database to record this');
      await sleep(Math.min(MAX_WAIT_MS, FIRST_WAIT_MS * 2 ** attempt));
    }
  }
}
