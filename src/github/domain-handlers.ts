import { createEventHandler, emitterEventNames } from '@octokit/webhooks';
import type { Engine } from '../engine/engine.ts';
import type { PullRequestChange } from '../engine/review-apps.ts';
import { log } from '../log.ts';
import { githubRef, type GitHubRef } from '../source/source-ref.ts';
import { branchPushOf } from './parse-delivery.ts';

export type GitHubEventHandlers = ReturnType<typeof createEventHandler>;

const KNOWN_EVENTS: ReadonlySet<string> = new Set(emitterEventNames);

/**
 * Whether octokit's registry may be handed an event of this name: GitHub's own
 * event names only, so a signed delivery named `error` can never reach the
 * registry's error handlers.
 */
export function isGitHubEventName(name: string): boolean {
  return KNOWN_EVENTS.has(name);
}

/** The repository of a validated payload (parseDelivery checked its full name). */
function sourceOf(repository: { full_name: string }): GitHubRef {
  return githubRef(repository.full_name)!;
}

/**
 * The event core, Probot's shape: one typed handler per GitHub event flowops
 * acts on, each turning the payload into a domain call on the engine. It never
 * sees the HTTP request; events without a handler are only recorded.
 */
export function domainHandlers(engine: Engine): GitHubEventHandlers {
  const handlers = createEventHandler({
    log: {
      debug: () => {},
      info: () => {},
      warn: (message: string) => log.warn({ problem: message }, 'GitHub event handler warning'),
      error: () => {},
    },
  });

  handlers.on('push', async (event) => {
    const push = branchPushOf(event);
    if (push) await engine.pushed({ repo: sourceOf(event.payload.repository), ...push });
  });

  handlers.on(['pull_request.opened', 'pull_request.reopened', 'pull_request.synchronize', 'pull_request.closed'], async ({ payload }) => {
    const pr = payload.pull_request;
    const repo = sourceOf(payload.repository);
    const action: PullRequestChange['action'] =
      payload.action === 'closed' ? (pr.merged === true ? 'merged' : 'closed') : payload.action === 'synchronize' ? 'updated' : 'opened';
    // The payload's nullable fields are read as parseDelivery allowed them, whatever the generated types say.
    const head = pr.head as { ref: string; sha: string; repo: { full_name: string } | null };
    const user = pr.user as { login: string } | null | undefined;
    await engine.pullRequestChanged({
      repo,
      pr: payload.number,
      action,
      branch: head.ref,
      sha: head.sha,
      fork: head.repo?.full_name !== payload.repository.full_name,
      title: pr.title,
      author: user?.login,
    });
  });

  return handlers;
}
