import type { Request, Response } from 'express';
import type { ApiError } from '../api/types.ts';
import { FlowError, Unavailable } from '../errors.ts';
import { httpStatusOf } from './http-status.ts';

/**
 * Answers a refused request with its status and `{ error: { code, message } }`.
 * When the body was not read (refused on its headers, or part-way), the
 * connection is closed after the answer: keeping it alive would mean reading,
 * and throwing away, whatever the sender still has to send.
 */
export function sendError(req: Request, res: Response, err: FlowError): void {
  if (!req.complete) res.set('connection', 'close');
  if (err instanceof Unavailable) res.set('retry-after', String(err.retryAfterSeconds));
  res.status(httpStatusOf[err.code]).json({ error: { code: err.code, message: err.message } } satisfies ApiError);
}
