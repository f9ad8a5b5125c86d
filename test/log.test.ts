import { Writable } from 'node:stream';
import { pino } from 'pino';
import { QueryFailedError } from 'typeorm';
import { describe, expect, it } from 'vitest';
import { logOptions, scrubSecrets } from '../src/log.ts';

/** A logger with flowops' options that writes into a string. */
function capture() {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { logger: pino({ ...logOptions, level: 'info' }, stream), text: () => text };
}

/** A failed write as TypeORM reports it from Postgres: the query, its parameters, and the driver's error quoting the row. */
function failedConfigWrite(): QueryFailedError {
  const driverError = Object.assign(new Error('new row for relation "apps" violates check constraint "apps_config_check"'), {
    code: '23514',
    severity: 'ERROR',
    table: 'apps',
    constraint: 'apps_config_check',
    detail: 'Failing row contains (3, shop, {"API_KEY": "sk_live_rowvalue"}).',
    where: 'JSON data, line 1: {"API_KEY": "sk_live_where...',
  });
  return new QueryFailedError(
    'UPDATE "apps" SET "config" = config || $1::jsonb WHERE "id" = $2',
    ['{"API_KEY":"sk_live_param"}', 3],
    driverError,
  );
}

describe('the log', () => {
  it.each([
    ['a flowops token', 'token flo_AbCdEfGhIjKlMnOpQrStUvWxYz012345 refused', 'flo_AbCdEfGhIjKlMnOpQrStUvWxYz012345'],
    ['a Slack bot token', 'invalid xoxb-1234-5678-AbCdEfGh', 'xoxb-1234-5678-AbCdEfGh'],
    ['a Slack app token', 'xapp-1-A0123-456-abcdef0123', 'xapp-1-A0123-456-abcdef0123'],
    ['a GitHub token', 'auth ghp_0123456789abcdefABCDEF0123456789', 'ghp_0123456789abcdefABCDEF0123456789'],
    ['a fine-grained GitHub token', 'github_pat_11ABCDEFG0123456789_abcdef', 'github_pat_11ABCDEFG0123456789_abcdef'],
    ['a bearer header', 'Authorization: Bearer s3cr3t-v4lue.xyz', 's3cr3t-v4lue.xyz'],
    ['a password in a URL', 'git clone https://bob:hunter2pw@git.example.com/shop.git failed', 'hunter2pw'],
    ['a private key', 'key -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY----- bad', 'MIIEpAIBAAKCAQEA'],
  ])('scrubs %s from text', (_what, text, secret) => {
    expect(scrubSecrets(text)).not.toContain(secret);
  });

  it('leaves ordinary text alone', () => {
    const text = 'deploy of 0f0a53b to shop-staging failed: release phase exited with 3 (see https://example.com/docs)';

    expect(scrubSecrets(text)).toBe(text);
  });

  it("logs a failed query's statement, code and constraint, never its parameters or the row Postgres quotes", () => {
    const { logger, text } = capture();

    logger.error({ err: failedConfigWrite(), path: '/api/commands' }, 'request failed');

    const line = JSON.parse(text()) as { err: Record<string, unknown> };
    expect(line.err).toMatchObject({
      type: 'QueryFailedError',
      code: '23514',
      table: 'apps',
      constraint: 'apps_config_check',
      query: 'UPDATE "apps" SET "config" = config || $1::jsonb WHERE "id" = $2',
    });
    expect(text()).not.toContain('sk_live');
    expect(text()).not.toContain('Failing row');
  });

  it('serializes an error under any key the same way', () => {
    const { logger, text } = capture();

    logger.warn({ failure: failedConfigWrite(), cause: { error: failedConfigWrite() } }, 'something failed');

    expect(text()).toContain('apps_config_check');
    expect(text()).not.toContain('sk_live');
  });

  it('scrubs tokens from the fields of a line and from an error message', () => {
    const { logger, text } = capture();

    logger.warn(
      {
        bolt: 'An API error occurred: invalid_auth for xoxb-1234-5678-AbCdEfGh',
        err: new Error('GET https://x:ghp_0123456789abcdefABCDEF0123456789@api/ failed'),
      },
      'bolt',
    );

    expect(text()).not.toContain('AbCdEfGh');
    expect(text()).not.toContain('ghp_0123456789abcdef');
  });
});
