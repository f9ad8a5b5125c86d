import { QueryFailedError } from 'typeorm';
import { describe, expect, it } from 'vitest';
import { isConnectionError } from '../src/db/outage.ts';

const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });
const wrapped = (driverError: Error) => new QueryFailedError('UPDATE apps SET locked_by = $1', [], driverError);

describe('which database errors are worth waiting out', () => {
  it.each([
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['a reset connection', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['a connection pg saw end', new Error('Connection terminated unexpectedly')],
    ['a client pg gave up on', new Error('Client has encountered a connection error and is not queryable')],
    ['a server shutting down (57P01), through TypeORM', wrapped(pgError('57P01', 'terminating connection due to administrator command'))],
    ['a connection exception (08006), through TypeORM', wrapped(pgError('08006', 'connection failure'))],
    ['a server starting up (57P03)', pgError('57P03', 'the database system is starting up')],
  ])('waits out %s', (_, err) => {
    expect(isConnectionError(err)).toBe(true);
  });

  it.each([
    ['a unique violation (23505)', wrapped(pgError('23505', 'duplicate key value violates unique constraint'))],
    ['a syntax error (42601)', wrapped(pgError('42601', 'syntax error at or near "SELEC"'))],
    ['a row that is not there', new Error('Could not find any entity of type "Operation"')],
    ['not an error at all', 'boom'],
  ])('throws %s at once', (_, err) => {
    expect(isConnectionError(err)).toBe(false);
  });
});
