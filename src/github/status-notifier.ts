import { setTimeout as sleep } from 'node:timers/promises';
import { CI_CONTEXT, type Engine } from '../engine/engine.ts';
import { log } from '../log.ts';
import { hasCommitStatuses, hasDeployments, type CommitState } from '../source/source.ts';
import type { FlowEvent } from '../db/entities.ts';

const CONSUMER = 'github';
const SWEEP_MS = 5000;
const BATCH_MS = 25;
const STATE: Record<string, CommitState> = { pending: 'pending', building: 'pending', running: 'pending', succeeded: 'success', failed: 'failure', errored: 'error', cancelled: 'error' };

/**
 * Reports to the source host, from the events outbox in order: test runs as
 * commit statuses (context `flowops/ci`), and every release as a deployment
 * (environment = the app, environment_url = its URL) with in_progress /
 * success / failure statuses. When the host cannot be
 * reached the cursor stays put and the next sweep tries again, so no status is lost.
 */
export class GitHubStatusNotifier {
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private again = false;

  constructor(private readonly engine: Engine) {}

  start(): void {
    this.engine.onEvents(() => this.kick());
    this.timer = setInterval(() => this.kick(), SWEEP_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.kick();
    await this.running;
    this.stopped = true;
    await this.engine.outbox.release(CONSUMER);
  }

  async idle(): Promise<void> {
    await this.running;
    this.kick();
    await this.running;
  }

  /** Delivers what is pending; a kick while a delivery runs makes it go round once more. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      // A short pause lets a burst of events (a thousand webhooks) share one delivery round.
      await sleep(BATCH_MS);
      do {
        this.again = false;
        await this.drain();
      } while (this.again);
    })()
      .catch((err: unknown) => log.warn({ err: String(err) }, 'commit statuses not delivered; retrying on the next sweep'))
      .finally(() => {
        this.running = null;
      });
  }

  private async drain(): Promise<void> {
    for (;;) {
      const events = await this.engine.outbox.next(CONSUMER, 100);
      if (!events?.length) return;
      for (const event of events) {
        await this.deliver(event);
        await this.engine.outbox.advance(CONSUMER, event.id);
      }
    }
  }

  private async deliver(event: FlowEvent): Promise<void> {
    if (!event.pipeline) return;
    const status = /^testrun\.(\w+)$/.exec(event.type)?.[1];
    const release = /^release\.(created|succeeded|failed)$/.exec(event.type)?.[1];
    if (!status && !release) return;
    const source = await this.engine.sourceOf(event.pipeline);
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
        let id = await this.engine.outbox.recall('github-deployment', key);
        if (!id) {
          id = await source.createDeployment(commit, event.app, { transient: stage === 'review', production: stage === 'production', description: event.message });
          await this.engine.outbox.remember('github-deployment', key, id);
        }
        await source.setDeploymentStatus(id, 'in_progress', null);
        return;
      }
      const id = await this.engine.outbox.recall('github-deployment', key);
      if (id) await source.setDeploymentStatus(id, release === 'succeeded' ? 'success' : 'failure', url ?? null);
    }
  }
}
