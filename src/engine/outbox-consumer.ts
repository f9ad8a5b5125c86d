import { setTimeout as sleep } from 'node:timers/promises';
import { databaseOutage, isConnectionError } from '../db/outage.ts';
import { log } from '../log.ts';
import type { Engine } from './engine.ts';
import type { Outbox } from './outbox.ts';

const SWEEP_MS = 5000;
const BATCH_MS = 25;

/**
 * The loop every outbox consumer runs (the Slack notifier, GitHub statuses):
 * a round after each transaction that wrote events (after a short pause, so a
 * burst shares one round), a sweep every few seconds for what failed before,
 * a wake-up when a round says its next parked retry is due, never two rounds
 * at once, and a last round on stop before the consumer's lease is handed to
 * another process.
 */
export class OutboxConsumer {
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: NodeJS.Timeout | undefined;
  private stopped = false;

  /** `round` may return when its next parked retry is due, to be woken then rather than at the next sweep. */
  constructor(
    private readonly engine: Pick<Engine, 'onEvents'>,
    private readonly outbox: Outbox,
    readonly name: string,
    private readonly round: () => Promise<Date | null | void>,
  ) {}

  start(): void {
    this.engine.onEvents(() => this.kick());
    this.timer = setInterval(() => this.kick(), SWEEP_MS);
    this.timer.unref();
    this.kick();
  }

  /** Delivers what is pending, then stops and hands the outbox to another process. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.wake);
    this.kick();
    await this.running;
    this.stopped = true;
    await this.outbox.release(this.name);
  }

  /** Waits for the round under way, then runs one more. */
  async settle(): Promise<void> {
    await this.running;
    this.kick();
    await this.running;
  }

  /** Runs a round; a kick during a round makes it go round once more. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      await sleep(BATCH_MS);
      do {
        this.again = false;
        try {
          this.wakeAt(await this.round());
          databaseOutage.answered();
        } catch (err) {
          // A database outage is logged once for the process, not on every sweep; what was not delivered stays in the outbox.
          if (isConnectionError(err)) databaseOutage.noticed(err, { consumer: this.name });
          else log.warn({ consumer: this.name, err: String(err) }, 'outbox delivery failed; retrying on the next sweep');
        }
      } while (this.again);
    })().finally(() => {
      this.running = null;
    });
  }

  private wakeAt(due: Date | null | void): void {
    clearTimeout(this.wake);
    if (!due || this.stopped) return;
    const delay = Math.max(0, due.getTime() - Date.now());
    if (delay >= SWEEP_MS) return; // the sweep comes first
    this.wake = setTimeout(() => this.kick(), delay);
    this.wake.unref();
  }
}
