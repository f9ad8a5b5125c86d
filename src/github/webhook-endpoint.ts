import { Webhooks } from '@octokit/webhooks';
import express, { type Request, type Response } from 'express';
import type { Engine } from '../engine/engine.ts';
import { log } from '../log.ts';

interface Delivery {
  id: string;
  event: string;
  payload: {
    repository?: { full_name?: string };
    ref?: string;
    after?: string;
    pusher?: { name?: string };
    deleted?: boolean;
    action?: string;
    number?: number;
    pull_request?: { title?: string; merged?: boolean; user?: { login?: string }; head: { ref: string; sha: string; repo: { full_name: string } | null } };
  };
}

/** The event core: what a verified delivery changes. It never sees the HTTP request. */
async function handleDelivery(engine: Engine, delivery: Delivery): Promise<boolean> {
  const { payload } = delivery;
  const branch = delivery.event === 'push' && payload.ref?.startsWith('refs/heads/') && !payload.deleted ? payload.ref.slice(11) : null;
  const repository = payload.repository?.full_name ?? null;
  const push = branch && payload.after ? { branch, sha: payload.after, pusher: payload.pusher?.name ?? 'someone' } : undefined;
  const first = await engine.receiveDelivery({ id: delivery.id, event: delivery.event, repository, push });
  // The work a push starts (a test run, an auto-deploy) runs after the answer: GitHub gives up after 10 s.
  if (first && push && repository) {
    setImmediate(() => {
      engine.onPush(`github:${repository}`, push.branch, push.sha, push.pusher).catch((err: unknown) => log.error({ err, delivery: delivery.id }, 'push not handled'));
    });
  }
  const pr = delivery.event === 'pull_request' ? payload.pull_request : undefined;
  if (first && pr && repository && payload.action && payload.number) {
    const event = {
      repo: `github:${repository}`,
      action: payload.action,
      pr: payload.number,
      branch: pr.head.ref,
      sha: pr.head.sha,
      fork: pr.head.repo?.full_name !== repository,
      title: pr.title,
      merged: pr.merged === true,
      author: pr.user?.login,
    };
    setImmediate(() => {
      engine.onPullRequest(event).catch((err: unknown) => log.error({ err, delivery: delivery.id }, 'pull request not handled'));
    });
  }
  return first;
}

/**
 * `POST /github/webhooks`, the HTTP edge (as octokit/webhooks.js keeps it):
 * headers, the signature against GITHUB_WEBHOOK_SECRET, status codes. A
 * forged delivery is refused with nothing done; a redelivery of a delivery id
 * already seen changes nothing.
 */
export function mountGitHubWebhooks(app: express.Express, engine: Engine, secret: string | undefined): void {
  const webhooks = secret ? new Webhooks({ secret }) : null;
  app.post('/github/webhooks', express.text({ type: '*/*', limit: '25mb' }), async (req: Request, res: Response) => {
    const id = req.get('x-github-delivery');
    const event = req.get('x-github-event');
    const signature = req.get('x-hub-signature-256');
    if (!webhooks) {
      log.error({ delivery: id }, 'a GitHub webhook arrived but GITHUB_WEBHOOK_SECRET is not set; set it to the webhook secret configured on GitHub');
      res.status(503).json({ error: { code: 'not_configured', message: 'GitHub webhooks are not configured on this flowops: set GITHUB_WEBHOOK_SECRET' } });
      return;
    }
    if (!id || !event || !signature || typeof req.body !== 'string') {
      res.status(400).json({ error: { code: 'invalid_input', message: 'a GitHub delivery needs X-GitHub-Delivery, X-GitHub-Event and X-Hub-Signature-256 headers and a JSON body' } });
      return;
    }
    if (!(await webhooks.verify(req.body, signature).catch(() => false))) {
      log.warn({ delivery: id, event }, 'GitHub webhook signature does not match: verify that the webhook secret on GitHub matches GITHUB_WEBHOOK_SECRET');
      res.status(401).json({ error: { code: 'unauthenticated', message: 'signature does not match' } });
      return;
    }
    let payload: Delivery['payload'];
    try {
      payload = JSON.parse(req.body) as Delivery['payload'];
    } catch {
      res.status(400).json({ error: { code: 'invalid_input', message: 'the body is not JSON' } });
      return;
    }
    try {
      const first = await handleDelivery(engine, { id, event, payload });
      res.status(first ? 202 : 200).json(first ? { accepted: true } : { duplicate: true });
    } catch (err) {
      log.error({ err, delivery: id, event }, 'GitHub delivery not recorded');
      res.status(500).json({ error: { code: 'internal', message: 'the delivery was not recorded; GitHub may redeliver it' } });
    }
  });
}
