import { operationMessage, type OperationMessageInput } from '../blocks/operation-message.ts';
import { releaseOutputMessage } from '../blocks/result-message.ts';
import { feedEventMessage } from '../blocks/feed-message.ts';
import { SYSTEM } from '../engine/access.ts';
import type { Engine } from '../engine/engine.ts';
import type { Outbox } from '../engine/outbox.ts';
import { feedKindOf } from '../engine/feeds.ts';
import type { OperationReport } from '../engine/views.ts';
import { OutboxConsumer } from '../engine/outbox-consumer.ts';
import { log } from '../log.ts';
import type { SlackApi } from './slack-api.ts';

const CONSUMER = 'slack';

/**
 * Delivers the engine's events to Slack: every operation gets one message per
 * channel (where it was started, and each feed of its pipeline), posted once and
 * updated in place (`chat.update`) as the operation moves. Channel and `ts` live
 * in the database, so updates go on after a restart; a message Slack refused is
 * retried by the next sweep, so a slow or failing Slack loses nothing.
 */
export class SlackNotifier {
  private readonly loop: OutboxConsumer;

  constructor(
    private readonly engine: Engine,
    private readonly api: SlackApi,
    private readonly outbox: Outbox,
  ) {
    this.loop = new OutboxConsumer(engine, outbox, CONSUMER, async () => {
      await this.drain();
      await this.flush();
    });
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Resolves once nothing is pending (tests). */
  async idle(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      await this.loop.settle();
      await this.api.idle();
      if (!(await this.outbox.behind(1)).length) return;
    }
  }

  /** Reads new events: operations started get a message in each feed; every event of an operation marks its messages behind. */
  private async drain(): Promise<void> {
    for (;;) {
      const events = await this.outbox.next(CONSUMER, 200);
      if (!events?.length) return;
      for (const [i, event] of events.entries()) {
        const feedKind = event.operationId === null && event.pipeline ? feedKindOf(event.type) : null;
        if (feedKind) {
          try {
            const message = feedEventMessage(event);
            for (const channel of await this.outbox.feedChannels(event.pipeline!, feedKind)) {
              await this.api.call((web) => web.chat.postMessage({ channel, ...message }));
            }
          } catch (err) {
            // Slack did not take it: keep the cursor before this event, so the next sweep posts it.
            if (i > 0) await this.outbox.advance(CONSUMER, events[i - 1]!.id);
            throw err;
          }
        }
        if (event.operationId === null) continue;
        const kind = /^(deploy|promote|rollback|config)\.started$/.exec(event.type)?.[1];
        if (kind && event.pipeline) {
          for (const channel of await this.outbox.feedChannels(event.pipeline, kind)) {
            await this.outbox.addStatusMessage(event.operationId, channel);
          }
        }
        await this.outbox.touch(event.operationId);
      }
      await this.outbox.advance(CONSUMER, events[events.length - 1]!.id);
    }
  }

  /** Brings every message that is behind up to date: post once, then update in place; release phase output into the thread. */
  private async flush(): Promise<void> {
    const messages = await this.outbox.behind(100);
    const reports = new Map<number, OperationReport | null>();
    for (const message of messages) {
      if (!reports.has(message.operationId)) reports.set(message.operationId, await this.engine.operationReport(message.operationId));
      const report = reports.get(message.operationId);
      if (!report) continue;
      try {
        const { text, blocks } = operationMessage(await this.messageInput(report));
        let ts = message.ts;
        if (ts) {
          await this.api.call((web) => web.chat.update({ channel: message.channel, ts: ts!, text, blocks }));
        } else {
          const posted = await this.api.call((web) => web.chat.postMessage({ channel: message.channel, text, blocks }));
          ts = posted.ts!;
        }
        const threaded = [...message.threaded];
        for (const target of report.targets) {
          const key = `${target.app}@v${target.version}`;
          if (!target.version || target.status === 'pending' || !target.output.trim() || threaded.includes(key)) continue;
          await this.api.call((web) =>
            web.chat.postMessage({
              channel: message.channel,
              thread_ts: ts!,
              ...releaseOutputMessage(target.app, target.version!, target.output),
            }),
          );
          threaded.push(key);
        }
        await this.outbox.shown(message, { ts, threaded });
      } catch (err) {
        log.warn({ operation: message.operationId, channel: message.channel, err }, 'slack message not delivered; will retry');
      }
    }
  }

  private async messageInput(report: OperationReport): Promise<OperationMessageInput> {
    const op = report.operation;
    const input: OperationMessageInput = {
      operation: op,
      pipeline: op.pipeline ?? '(destroyed)',
      actor: report.actor,
      via: report.via,
      targets: report.targets,
    };
    if (op.status === 'succeeded') {
      const upstream = report.targets.find((t) => (t.stage === 'staging' || t.stage === 'development') && t.current);
      if (upstream && op.pipeline) {
        const diff = (await this.engine.diff(SYSTEM, op.pipeline).catch(() => [])).find((d) => d.upstream === upstream.app);
        input.promote = {
          app: upstream.app,
          version: upstream.version!,
          downstream: diff?.downstream ?? (upstream.stage === 'staging' ? 'production' : 'staging'),
          ahead: diff?.ahead ?? 0,
          commits: diff?.commits ?? [],
        };
      }
      const live = report.targets.find((t) => t.stage === 'production' && t.current);
      if (live) input.rollback = { app: live.app, version: live.version! };
    }
    const failed = report.targets.find((t) => t.status === 'failed' && t.version);
    if (failed && failed.stage !== 'destroyed')
      input.failed = { app: failed.app, version: failed.version!, stage: failed.stage, commit: failed.commit };
    return input;
  }
}
