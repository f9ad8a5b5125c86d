import { createHash } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { FlowError, Unauthenticated } from '../errors.ts';
import type { SeenRequests } from '../engine/seen-requests.ts';
import { log } from '../log.ts';
import { sendError } from '../http/send-error.ts';
import { hmacMatches } from '../http/signature.ts';
import type { UnverifiedBodyBudget } from '../http/unverified-body-budget.ts';

/** Slack's window: a request whose timestamp is further than this from now, either way, is refused. */
const WINDOW_SECONDS = 5 * 60;
/** Bolt's own default body limit; Slack's requests are far smaller. */
const SLACK_BODY_LIMIT = 4 * 2 ** 20;
/** Slack retries an event three times over about six minutes; its id is remembered well past that. */
const EVENT_ID_SECONDS = 60 * 60;

const TIMESTAMP = /^\d{1,12}$/;
const SIGNATURE = /^v0=[0-9a-f]{64}$/;

/**
 * What makes a request the same request again. An Events API event keeps its
 * `event_id` when Slack retries it (with X-Slack-Retry-Num, a new timestamp and
 * signature); anything else is the same request when its timestamp and
 * signature are, remembered until its timestamp leaves the window.
 */
function sameRequestKey(req: Request, body: Buffer, timestamp: string, signature: string): { key: string; seconds: number } {
  if (req.is('application/json')) {
    try {
      const json = JSON.parse(body.toString('utf8')) as { type?: unknown; event_id?: unknown };
      if (json?.type === 'event_callback' && typeof json.event_id === 'string')
        return { key: hash(`slack-event:${json.event_id}`), seconds: EVENT_ID_SECONDS };
    } catch {
      // Not JSON after all: Bolt answers it with 400; it is keyed as any request.
    }
  }
  const leaves = Number(timestamp) + WINDOW_SECONDS - Math.floor(Date.now() / 1000);
  return { key: hash(`slack-request:${timestamp}:${signature}`), seconds: Math.max(leaves, 0) + 60 };
}

const hash = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * In front of Bolt's receiver on `/slack/events` (HTTP mode). Bolt refuses a
 * timestamp more than 5 minutes old but not one in the future, and runs a
 * replayed request again; this refuses both. Headers are checked before the
 * body is read, the body is read once (within the process's budget of
 * unverified bytes) and handed to Bolt as `rawBody`, and a request already taken
 * — by this process or another one on the same database — is answered 200 and
 * runs no listener.
 */
export function guardSlackRequests(options: { signingSecret: string; budget: UnverifiedBodyBudget; seen: SeenRequests }): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    try {
      const timestamp = req.get('x-slack-request-timestamp');
      const signature = req.get('x-slack-signature');
      if (!timestamp || !signature || !TIMESTAMP.test(timestamp) || !SIGNATURE.test(signature)) {
        throw new Unauthenticated('a Slack request needs X-Slack-Request-Timestamp and a v0 X-Slack-Signature');
      }
      const skew = Math.floor(Date.now() / 1000) - Number(timestamp);
      if (Math.abs(skew) > WINDOW_SECONDS) {
        log.warn(
          { skew },
          "Slack request timestamp is more than 5 minutes from this clock: a replay, or this server's clock is wrong (check NTP)",
        );
        throw new Unauthenticated('the request timestamp is more than 5 minutes away from now');
      }
      const { parts, release } = await options.budget.read(req, SLACK_BODY_LIMIT);
      let verified: boolean;
      try {
        // Slack's v0 signature: HMAC-SHA256 of `v0:<timestamp>:<body>` with the signing secret.
        verified = hmacMatches(options.signingSecret, [`v0:${timestamp}:`, ...parts], signature.slice('v0='.length));
      } finally {
        release();
      }
      if (!verified) {
        log.warn(
          {},
          'Slack request signature does not match: verify that SLACK_SIGNING_SECRET is the Signing Secret from "Basic Information"',
        );
        throw new Unauthenticated('signature does not match');
      }
      const body = Buffer.concat(parts);
      // Bolt takes req.rawBody when it is there (as on Google Cloud) instead of reading the stream again.
      (req as Request & { rawBody?: Buffer }).rawBody = body;
      const same = sameRequestKey(req, body, timestamp, signature);
      if (req.get('x-slack-retry-num')) {
        // Slack's retry of an event: rare, so it waits for the answer and is told not to retry again.
        if (!(await options.seen.markSeen(same.key, same.seconds))) {
          log.info({ retry: req.get('x-slack-retry-num') }, 'Slack request already taken; this repeat does nothing');
          res.set('x-slack-no-retry', '1').status(200).end();
          return;
        }
      } else {
        // Every other request is acked at once (Bolt answers within Slack's 3 s without waiting for the
        // database); its listener's work waits for this answer and does nothing for a repeat (afterAck).
        const first = options.seen.markSeen(same.key, same.seconds);
        first.catch(() => undefined);
        (req as Request & { firstDelivery?: Promise<boolean> }).firstDelivery = first;
      }
      next();
    } catch (err) {
      if (err instanceof FlowError) sendError(req, res, err);
      else next(err);
    }
  };
}
