import { CI_CONTEXT, type Engine } from '../engine/engine.ts';
import { log } from '../log.ts';
import { hasCommitStatuses, type CommitState } from '../source/source.ts';

const CONSUMER = 'github';
const SWEEP_MS = 5000;
const STATE: Record<string, CommitState> = { pending: 'pending', building: 'pending', running: 'pending', succeeded: 'success', failed: 'failure', errored: 'error', cancelled: 'error' };

/**
 * Reports test runs to the source host as commit statuses (context
 * `flowops/ci`), from the events outbox in order. When the host cannot be
 * reached the cursor stays put and the next sweep tries again, so no status is lost.
 */
export class GitHubStatusNotifier {
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

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

  kick(): void {
    if (this.stopped || this.running) return;
    this.running = this.drain()
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
        const status = /^testrun\.(\w+)$/.exec(event.type)?.[1];
        if (status && event.pipeline) {
          const source = await this.engine.sourceOf(event.pipeline);
          const { sha, number } = event.data as { sha: string; number: number };
          if (source && hasCommitStatuses(source)) {
            await source.setCommitStatus(sha, { state: STATE[status]!, context: CI_CONTEXT, description: `Test run #${number} ${status}` });
          }
        }
        await this.engine.outbox.advance(CONSUMER, event.id);
      }
    }
  }
}
