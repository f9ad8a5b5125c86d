import type { EmitterWebhookEvent } from '@octokit/webhooks';
import type express from 'express';
import type { Request, Response } from 'express';
import type { DataSource } from 'typeorm';
import type { Engine } from '../engine/engine.ts';
import { FlowError, InvalidInput, Unauthenticated } from '../errors.ts';
import { log } from '../log.ts';
import { sendError } from '../http/send-error.ts';
import { hmacMatches } from '../http/signature.ts';
import type { UnverifiedBodyBudget } from '../http/unverified-body-budget.ts';
import { GitHubDeliveries } from './deliveries.ts';
import { domainHandlers, isGitHubEventName, type GitHubEventHandlers } from './domain-handlers.ts';
import { parseDelivery } from './parse-delivery.ts';

/** GitHub caps webhook payloads at 25 MB; it never sends more. */
export const GITHUB_BODY_LIMIT = 25 * 2 ** 20;

const DELIVERY_ID = /^[A-Za-z0-9._-]{1,128}$/;
const EVENT_NAME = /^[a-z_]{1,64}$/;
const SIGNATURE = /^sha256=[0-9a-f]{64}$/;

interface GitHubFront {
  engine: Engine;
  deliveries: GitHubDeliveries;
  handlers: GitHubEventHandlers;
}

/**
 * A verified, well-formed delivery: recorded once, then, if it is new, handed
 * to the typed handlers, which turn it into domain calls on the engine.
 */
async function handleDelivery(front: GitHubFront, event: EmitterWebhookEvent): Promise<boolean> {
  const { first, events } = await front.deliveries.recordOnce(event);
  if (events > 0) front.engine.eventsWritten();
  // The work a delivery starts (a test run, an auto-deploy, a review app) runs after the answer: GitHub gives up after 10 s.
  if (first && isGitHubEventName(event.name)) {
    setImmediate(() => {
      front.handlers
        .receive(event)
        .catch((err: unknown) => log.error({ err, delivery: event.id, event: event.name }, 'GitHub delivery not handled'));
    });
  }
  return first;
}

/**
 * The headers, checked before a byte of the body is read: a request that is not
 * even shaped like a GitHub delivery costs nothing.
 */
function checkHeaders(req: Request): { id: string; event: string; signature: string } {
  const id = req.get('x-github-delivery');
  const event = req.get('x-github-event');
  const signature = req.get('x-hub-signature-256');
  if (!id || !event || !signature) {
    throw new InvalidInput('a GitHub delivery needs X-GitHub-Delivery, X-GitHub-Event and X-Hub-Signature-256 headers and a JSON body');
  }
  if (!DELIVERY_ID.test(id) || !EVENT_NAME.test(event))
    throw new InvalidInput('X-GitHub-Delivery or X-GitHub-Event is not what GitHub sends');
  if (!SIGNATURE.test(signature)) throw new Unauthenticated('X-Hub-Signature-256 must be sha256= and 64 hex digits');
  if (!req.is('application/json')) {
    throw new InvalidInput('the body must be application/json: set the webhook\'s content type to "application/json" on GitHub');
  }
  return { id, event, signature };
}

/**
 * `POST /github/webhooks`, the HTTP edge (as octokit/webhooks.js keeps it):
 * headers first, then the body (within GitHub's 25 MB and the process's budget
 * of unverified bytes), the signature against GITHUB_WEBHOOK_SECRET, and the
 * payload's shape. A forged or malformed delivery is refused with nothing
 * recorded; a redelivery of a delivery id already seen changes nothing.
 */
export function mountGitHubWebhooks(
  app: express.Express,
  options: { engine: Engine; db: DataSource; secret: string | undefined; budget: UnverifiedBodyBudget },
): void {
  const { engine, secret, budget } = options;
  const front: GitHubFront = { engine, deliveries: new GitHubDeliveries(options.db), handlers: domainHandlers(engine) };
  app.post('/github/webhooks', async (req: Request, res: Response) => {
    if (!secret) {
      log.error(
        { delivery: req.get('x-github-delivery') },
        'a GitHub webhook arrived but GITHUB_WEBHOOK_SECRET is not set; set it to the webhook secret configured on GitHub',
      );
      res.set('connection', 'close');
      res.status(503).json({
        error: { code: 'not_configured', message: 'GitHub webhooks are not configured on this flowops: set GITHUB_WEBHOOK_SECRET' },
      });
      return;
    }
    let id: string | undefined;
    let event: string | undefined;
    try {
      const headers = checkHeaders(req);
      ({ id, event } = headers);
      const { parts, release } = await budget.read(req, GITHUB_BODY_LIMIT);
      let verified: boolean;
      try {
        // GitHub's signature: HMAC-SHA256 of the body's bytes, exactly as they arrived, with the webhook secret.
        verified = hmacMatches(secret, parts, headers.signature.slice('sha256='.length));
      } finally {
        release();
      }
      if (!verified) {
        log.warn(
          { delivery: id, event },
          'GitHub webhook signature does not match: verify that the webhook secret on GitHub matches GITHUB_WEBHOOK_SECRET',
        );
        throw new Unauthenticated('signature does not match');
      }
      const delivery = parseDelivery(id, event, Buffer.concat(parts).toString('utf8'));
      const first = await handleDelivery(front, delivery);
      res.status(first ? 202 : 200).json(first ? { accepted: true } : { duplicate: true });
    } catch (err) {
      if (err instanceof FlowError) {
        if (err.code === 'invalid_input' && id)
          log.warn({ delivery: id, event, problem: err.message }, 'GitHub delivery refused as malformed; nothing recorded');
        if (err.code === 'payload_too_large' || err.code === 'unavailable')
          log.warn({ delivery: id, event, code: err.code }, 'GitHub delivery refused before its signature was checked');
        sendError(req, res, err);
        return;
      }
      log.error({ err, delivery: id, event }, 'GitHub delivery not recorded');
      res.status(500).json({ error: { code: 'internal', message: 'the delivery was not recorded; GitHub may redeliver it' } });
    }
  });
}
