import { CI_CONTEXT, type Engine } from '../engine/engine.ts';
import { OutboxConsumer } from '../engine/outbox-consumer.ts';
import { hasCommitStatuses, hasDeployments, type CommitState } from '../source/source.ts';
import type { FlowEvent } from '../db/entities.ts';

const CONSUMER = 'github';
const STATE: Record<string, CommitState> = { pending: 'pending', building: 'pending', running: 'pending', succeeded: 'success', failed: 'failure', errored: 'error', cancelled: 'error' };

/**
 * Reports to the source host, from the events outbox in order: test runs as
 * commit statuses (context `flowops/ci`), and every release as a deployment
 * (environment = the app, environment_url = its URL) with in_progress /
 * success / failure statuses. When the host cannot be
 * reached the cursor stays put and the next sweep tries again, so no status is lost.
 */
export class GitHubStatusNotifier {
  private readonly loop: OutboxConsumer;

  constructor(private readonly engine: Engine) {
    this.loop = new OutboxConsumer(engine, CONSUMER, () => this.drain());
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Resolves once what is pending has been delivered (tests). */
  idle(): Promise<void> {
    return this.loop.settle();
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
