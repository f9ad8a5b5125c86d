import { CI_CONTEXT } from '../engine/ci.ts';
import type { Engine } from '../engine/engine.ts';
import type { Outbox } from '../engine/outbox.ts';
import { short } from '../format.ts';
import { OutboxConsumer } from '../engine/outbox-consumer.ts';
import { hasCommitStatuses, hasDeployments, HostWriteFailed, type CommitState } from '../source/source.ts';
import type { FlowEvent } from '../db/entities.ts';
import { log } from '../log.ts';

const CONSUMER = 'github';
const STATE: Record<string, CommitState> = {
  pending: 'pending',
  building: 'pending',
  running: 'pending',
  succeeded: 'success',
  failed: 'failure',
  errored: 'error',
  cancelled: 'error',
};
/** Back-off between attempts of one status GitHub did not take: 1 s, 2 s, 4 s … up to 5 minutes. */
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 5 * 60_000;
/** A status still undelivered after a day describes the past; it is given up on, and recorded as such. */
const GIVE_UP_MS = 24 * 3_600_000;

/** What a GitHub-bound event updates: one commit status, or one deployment. Null: nothing on GitHub. */
function keyOf(event: FlowEvent): string | null {
  if (!event.pipeline) return null;
  if (/^testrun\.\w+$/.test(event.type)) return `status:${event.pipeline}:${(event.data as { sha?: string }).sha}:${CI_CONTEXT}`;
  if (/^release\.(created|succeeded|failed)$/.test(event.type) && event.app)
    return `deployment:${event.app}@v${(event.data as { version?: number }).version}`;
  return null;
}

function describe(event: FlowEvent): string {
  if (event.type.startsWith('testrun.')) {
    const { sha, number } = event.data as { sha: string; number: number };
    return `the ${CI_CONTEXT} status of ${short(sha)} (test run #${number} ${event.type.slice(8)})`;
  }
  const { version } = event.data as { version: number };
  return `the deployment of ${event.app} v${version} (${event.type.slice(8)})`;
}

/** How long to wait before attempt `attempts + 1`: what GitHub asked for (Retry-After), else doubling back-off with ±20% jitter, so retries of many statuses spread out. */
export function retryDelay(attempts: number, retryAfterMs: number | null): number {
  if (retryAfterMs !== null) return retryAfterMs;
  const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (attempts - 1));
  return Math.round(delay * (0.8 + Math.random() * 0.4));
}

/**
 * Reports to the source host, from the events outbox in order: test runs as
 * commit statuses (context `flowops/ci`), and every release as a deployment
 * (environment = the app, environment_url = its URL) with in_progress /
 * success / failure statuses.
 *
 * One status GitHub does not take never holds up the others. One it refuses
 * for good (422 validation, 404 repository gone, 403 no permission) is
 * skipped, logged, and recorded as an event of the pipeline (its feed shows
 * it). One that may pass later (5xx, no answer, a rate limit) is parked and
 * tried again with back-off (or when GitHub said to), while the cursor moves
 * on; only later updates of the same status or deployment wait behind it, so
 * GitHub never shows an older state over a newer one.
 */
export class GitHubStatusNotifier {
  private readonly loop: OutboxConsumer;

  constructor(
    private readonly engine: Engine,
    private readonly outbox: Outbox,
  ) {
    this.loop = new OutboxConsumer(engine, outbox, CONSUMER, () => this.round());
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Resolves once what is pending has been attempted (tests). */
  idle(): Promise<void> {
    return this.loop.settle();
  }

  /** New events in order, then parked ones that are due; returns when the next parked one is due. */
  private async round(): Promise<Date | null> {
    const outbox = this.outbox;
    for (;;) {
      const events = await outbox.next(CONSUMER, 100);
      if (!events) return null; // another process holds the lease
      if (!events.length) break;
      for (const event of events) {
        const key = keyOf(event);
        if (key && (await outbox.isParked(CONSUMER, key))) {
          await outbox.park(CONSUMER, event, key, { attempts: 0, nextAttemptAt: new Date(), error: null });
        } else if (key) {
          await this.attempt(event, key, { parked: false, attempts: 0 });
        }
        await outbox.advance(CONSUMER, event.id);
      }
    }
    // A delivered one lets the next of its key go, in the same round.
    for (let delivered = true; delivered;) {
      delivered = false;
      for (const { event, attempts } of await outbox.due(CONSUMER, 50)) {
        if (await this.attempt(event, keyOf(event)!, { parked: true, attempts })) delivered = true;
      }
    }
    return outbox.nextDue(CONSUMER);
  }

  /** Tries one event; true when it is done with (delivered, or skipped for good), false when it waits for another attempt. */
  private async attempt(event: FlowEvent, key: string, state: { parked: boolean; attempts: number }): Promise<boolean> {
    const outbox = this.outbox;
    try {
      await this.deliver(event);
      if (state.parked) {
        await outbox.unpark(CONSUMER, event.id);
        log.info({ event: event.id, pipeline: event.pipeline, attempts: state.attempts + 1 }, 'GitHub took a status on a later attempt');
      }
      return true;
    } catch (err) {
      const failure =
        err instanceof HostWriteFailed ? err : new HostWriteFailed(err instanceof Error ? err.message : String(err), null, false, null);
      const expired = Date.now() - new Date(event.createdAt).getTime() > GIVE_UP_MS;
      if (failure.permanent || expired) {
        log.warn(
          { event: event.id, pipeline: event.pipeline, status: failure.status, error: failure.message, attempts: state.attempts + 1 },
          failure.permanent ? 'GitHub refused a status for good; skipped' : 'GitHub did not take a status for a day; given up',
        );
        await this.engine.recordRefusal({
          type: event.type.startsWith('testrun.') ? 'github.status_refused' : 'github.deployment_refused',
          pipeline: event.pipeline!,
          app: event.app,
          message: failure.permanent
            ? `GitHub refused ${describe(event)} with ${failure.status}; flowops skipped it`
            : `GitHub did not take ${describe(event)} for a day; flowops gave up on it`,
          // Only a refusal of a final state is worth a line in the feed: GitHub refusing `pending` and then `failed` is one problem.
          data: {
            event: event.id,
            status: failure.status,
            error: failure.message,
            final: !/\.(pending|building|running|created)$/.test(event.type),
          },
        });
        if (state.parked) await outbox.unpark(CONSUMER, event.id);
        return true;
      }
      const attempts = state.attempts + 1;
      const wait = retryDelay(attempts, failure.retryAfterMs);
      if (attempts === 1)
        log.warn(
          { event: event.id, pipeline: event.pipeline, status: failure.status, error: failure.message, retryInMs: wait },
          'GitHub did not take a status; retrying with back-off',
        );
      await outbox.park(CONSUMER, event, key, { attempts, nextAttemptAt: new Date(Date.now() + wait), error: failure.message });
      return false;
    }
  }

  private async deliver(event: FlowEvent): Promise<void> {
    const status = /^testrun\.(\w+)$/.exec(event.type)?.[1];
    const release = /^release\.(created|succeeded|failed)$/.exec(event.type)?.[1];
    const source = await this.engine.sourceOf(event.pipeline!);
    if (!source) return;
    if (status && hasCommitStatuses(source)) {
      const { sha, number } = event.data as { sha: string; number: number };
      await source.setCommitStatus(sha, { state: STATE[status]!, context: CI_CONTEXT, description: `Test run #${number} ${status}` });
    }
    if (release && event.app && hasDeployments(source)) {
      const { version, commit, stage, url } = event.data as { version: number; commit: string | null; stage: string; url?: string | null };
      if (!commit) return;
      const key = `${event.app}@v${version}`;
      if (release === 'created') {
        // Retried after a failure: the deployment made the first time is reused, never made twice.
        let id = await this.outbox.recall('github-deployment', key);
        if (!id) {
          id = await source.createDeployment(commit, event.app, {
            transient: stage === 'review',
            production: stage === 'production',
            description: event.message,
          });
          await this.outbox.remember('github-deployment', key, id);
        }
        await source.setDeploymentStatus(id, 'in_progress', null);
        return;
      }
      // No deployment: GitHub refused to create it, and that was recorded then.
      const id = await this.outbox.recall('github-deployment', key);
      if (id) await source.setDeploymentStatus(id, release === 'succeeded' ? 'success' : 'failure', url ?? null);
    }
  }
}
