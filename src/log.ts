import { pino, type LoggerOptions } from 'pino';

/**
 * Text that looks like a credential: flowops, Slack and GitHub tokens, bearer
 * headers, passwords in URLs, PEM private keys. Replaced wherever flowops logs
 * text it did not write itself (error messages, library log lines).
 */
const SECRET_PATTERNS: [RegExp, string][] = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g, '[redacted private key]'],
  [/\bflo_[A-Za-z0-9_-]{16,}/g, 'flo_[redacted]'],
  [/\bx(?:ox[a-z]|app)-[A-Za-z0-9-]{8,}/g, 'xox-[redacted]'],
  [/\b(?:gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{16,})/g, 'gh_[redacted]'],
  [/\b(Bearer|token|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 [redacted]'],
  [/([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+:[^/\s@]+@/gi, '$1[redacted]@'],
];

/** `text` with anything that looks like a token, password or private key replaced. */
export function scrubSecrets(text: string): string {
  return SECRET_PATTERNS.reduce((out, [pattern, replacement]) => out.replace(pattern, replacement), text);
}

/**
 * Fields of an error that describe it without quoting data. Everything else is
 * left out on purpose: TypeORM's QueryFailedError carries the query's
 * `parameters` (config values, token hashes) and Postgres' `detail` and `where`
 * ("Failing row contains (...)", "JSON data, line 1: ...") that quote them;
 * octokit's RequestError carries the request and response.
 */
const SAFE_ERROR_FIELDS = [
  'code',
  'status',
  'statusCode',
  'errno',
  'syscall',
  'severity',
  'table',
  'column',
  'constraint',
  'routine',
] as const;

/** An error as a log line shows it: type, message, stack, safe fields, the SQL text (never its parameters), its cause. */
export function serializeError(err: unknown, depth = 0): Record<string, unknown> {
  if (!(err instanceof Error)) return { type: typeof err, message: scrubSecrets(String(err)) };
  const out: Record<string, unknown> = { type: err.constructor?.name ?? err.name, message: scrubSecrets(err.message) };
  if (err.stack) out.stack = scrubSecrets(err.stack);
  const fields = err as unknown as Record<string, unknown>;
  for (const field of SAFE_ERROR_FIELDS) {
    const value = fields[field];
    if (typeof value === 'string' || typeof value === 'number') out[field] = typeof value === 'string' ? scrubSecrets(value) : value;
  }
  // The SQL text holds $1-style placeholders, not values: it says which statement failed.
  if (typeof fields.query === 'string') out.query = fields.query.slice(0, 2000);
  if (err.cause !== undefined && depth < 3) out.cause = serializeError(err.cause, depth + 1);
  return out;
}

/**
 * A log line's own fields (and one level down) with credentials scrubbed, and
 * errors under any key serialized as `err` is (pino would print an error's
 * enumerable fields, parameters included).
 */
function scrubFields(object: Record<string, unknown>): Record<string, unknown> {
  const scrub = (value: unknown, deep: boolean): unknown => {
    if (typeof value === 'string') return scrubSecrets(value);
    if (value instanceof Error) return serializeError(value);
    if (deep && value && typeof value === 'object' && !Array.isArray(value)) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrub(v, false)]));
    }
    return value;
  };
  // `err` is left to its serializer, which runs after this.
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, k === 'err' ? v : scrub(v, true)]));
}

/** How flowops' logger serializes and scrubs; exported so a test can log through it to a stream. */
export const logOptions: LoggerOptions = {
  base: undefined,
  serializers: { err: serializeError },
  formatters: { log: scrubFields },
};

/** Structured logs: a static message and ids, never a sentence built from values. */
export const log = pino({ ...logOptions, level: process.env.LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info') });
