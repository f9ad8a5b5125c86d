import { createHash } from 'node:crypto';
import { pullRequestCard, pushCard } from '../blocks/change-cards.ts';
import { approvalMessage } from '../blocks/approval-message.ts';
import { nudgeMessage } from '../blocks/nudge-message.ts';
import { metricsChartAlt } from '../blocks/metrics-message.ts';
import { metricsChartPng } from '../charts/metrics-chart.ts';
import type { MetricsView } from '../api/types.ts';
import { feedEventMessage } from '../blocks/feed-message.ts';
import { sourceLinks } from '../blocks/links.ts';
import { operationMessage, type Card } from '../blocks/operation-message.ts';
import type { SubjectReport } from '../engine/cards.ts';
import type { Engine } from '../engine/engine.ts';
import type { Outbox } from '../engine/outbox.ts';
import { OutboxConsumer } from '../engine/outbox-consumer.ts';
import { log } from '../log.ts';
import type { SlackApi } from './slack-api.ts';

const CONSUMER = 'slack';

const hashOf = (message: { text: string; blocks: unknown }) =>
  createHash('sha256')
    .update(JSON.stringify([message.text, message.blocks]))
    .digest('hex')
    .slice(0, 32);

/** Slack's answers that trying again cannot change: the channel or message is gone, the bot may not post there, the message is malformed. */
const PERMANENT = new Set([
  'channel_not_found',
  'is_archived',
  'not_in_channel',
  'message_not_found',
  'cant_update_message',
  'edit_window_closed',
  'invalid_blocks',
  'invalid_blocks_format',
  'msg_too_long',
  'restricted_action',
  'restricted_action_read_only_channel',
  'restricted_action_thread_only_channel',
  'team_access_not_granted',
]);

function refusedForGood(err: unknown): boolean {
  const code = (err as { data?: { error?: unknown } } | null)?.data?.error;
  return typeof code === 'string' && PERMANENT.has(code);
}

/**
 * A person's direct messages with the app, for their chat account
 * (`slack:<team>:<user>`): chat.postMessage to a user id posts there. None for
 * an account of another front.
 */
function directChannel(account: string): string[] {
  const user = /^slack:[^:]*:([UW][A-Z0-9]{1,20})$/.exec(account)?.[1];
  return user ? [user] : [];
}

/** A thread reply already posted: `key ts hash` in the status message's `threaded`. */
function parseThreaded(entry: string): { key: string; ts: string; hash: string } | null {
  const [key, ts, hash] = entry.split(' ');
  return key && ts && hash ? { key, ts, hash } : null;
}

/**
 * Delivers the engine's events to Slack as messages that follow a subject: an
 * operation (where it was started, and each feed of its pipeline), a pull
 * request, a push to the deploy branch. Each is posted once per channel and
 * updated in place (`chat.update`, which notifies nobody) as its subject moves;
 * a failure gets a thread reply that mentions its person and is broadcast.
 * When something ends in a pipeline, its messages that still show buttons are
 * redrawn, so buttons that no longer apply go. Channel, `ts` and the replies
 * posted live in the database, so updates go on after a restart; a message
 * Slack refused is retried by the next sweep, so a slow Slack loses nothing.
 */
export class SlackNotifier {
  private readonly loop: OutboxConsumer;

  constructor(
    private readonly engine: Engine,
    private readonly api: SlackApi,
    private readonly outbox: Outbox,
    /** GitHub's web address, for commit and pull request links. */
    private readonly githubWebUrl: string | null,
  ) {
    this.loop = new OutboxConsumer(engine, outbox, CONSUMER, async () => {
      if (await this.drain()) await this.flush();
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

  /**
   * Reads new events: which messages each concerns (posting new ones in the
   * feeds). False when another process holds the consumer's lease: it does the
   * posting, so no message goes out twice.
   */
  private async drain(): Promise<boolean> {
    for (;;) {
      const events = await this.outbox.next(CONSUMER, 200);
      if (!events) return false;
      if (!events.length) return true;
      for (const event of events) {
        const { touch, post, retire } = await this.engine.subjectsOf(event);
        for (const to of post) {
          const channels =
            'feed' in to
              ? await this.outbox.feedChannels(event.pipeline!, to.feed)
              : 'optIn' in to
                ? await this.outbox.optInChannels(event.pipeline!, to.optIn)
                : directChannel(to.person);
          for (const channel of channels) await this.outbox.addStatusMessage(to.subject, event.pipeline, channel);
        }
        await this.outbox.touch(touch);
        if (retire && event.pipeline) await this.outbox.touchLive(event.pipeline);
      }
      await this.outbox.advance(CONSUMER, events[events.length - 1]!.id);
    }
  }

  /**
   * A digest's chart, in its message's thread (files.uploadV2). Once, right
   * after the message is posted: a chart Slack refused is logged, not retried,
   * as the message itself already says the numbers.
   */
  private async shareChart(channel: string, ts: string, metrics: MetricsView): Promise<void> {
    try {
      const file = await metricsChartPng(metrics);
      await this.api.call((web) =>
        web.filesUploadV2({
          channel_id: channel,
          thread_ts: ts,
          file,
          filename: `${metrics.pipeline}-metrics-${metrics.until.slice(0, 10)}.png`,
          title: `${metrics.pipeline}: deployments per week and lead time, last ${metrics.days} days`,
          alt_text: metricsChartAlt(metrics),
        }),
      );
    } catch (err) {
      log.warn({ err, channel, pipeline: metrics.pipeline }, 'the chart of a digest was not shared');
    }
  }

  private card(subject: SubjectReport): Card {
    const links = sourceLinks(subject.report.repo, this.githubWebUrl);
    switch (subject.kind) {
      case 'op':
        return operationMessage(subject.report, links);
      case 'pr':
        return pullRequestCard(subject.report, links);
      case 'push':
        return pushCard(subject.report, links);
      case 'event':
        return { ...feedEventMessage(subject.report.event), live: false, replies: [] };
      case 'approval':
        return approvalMessage(subject.report, links);
      case 'nudge':
        return nudgeMessage(subject.report, links);
    }
  }

  /** Brings every message that is behind up to date: post once, then update in place when it changed; its thread replies likewise. */
  private async flush(): Promise<void> {
    const messages = await this.outbox.behind(100);
    const cards = new Map<string, Card | null>();
    for (const message of messages) {
      try {
        if (!cards.has(message.subject)) {
          const report = await this.engine.report(message.subject);
          cards.set(message.subject, report && this.card(report));
        }
        const card = cards.get(message.subject);
        if (!card) {
          // Its subject is gone (a destroyed pipeline): nothing more to show.
          await this.outbox.shown(message, { ts: message.ts, threaded: message.threaded, live: false, shownHash: message.shownHash });
          continue;
        }
        const { text, blocks } = card;
        const hash = hashOf(card);
        let ts = message.ts;
        if (!ts) {
          ts = (await this.api.call((web) => web.chat.postMessage({ channel: message.channel, text, blocks }))).ts!;
          await this.outbox.posted(message, { ts, threaded: message.threaded });
          if (card.chart) await this.shareChart(message.channel, ts, card.chart);
        } else if (hash !== message.shownHash) {
          await this.api.call((web) => web.chat.update({ channel: message.channel, ts: ts!, text, blocks }));
        }
        const threaded = [...message.threaded];
        for (const reply of card.replies) {
          const replyHash = hashOf(reply);
          const at = threaded.findIndex((e) => parseThreaded(e)?.key === reply.key);
          const posted = at >= 0 ? parseThreaded(threaded[at]!)! : null;
          if (posted?.hash === replyHash) continue;
          if (posted) {
            await this.api.call((web) =>
              web.chat.update({ channel: message.channel, ts: posted.ts, text: reply.text, blocks: reply.blocks }),
            );
            threaded[at] = `${reply.key} ${posted.ts} ${replyHash}`;
          } else {
            const sent = await this.api.call((web) =>
              web.chat.postMessage({
                channel: message.channel,
                thread_ts: ts!,
                text: reply.text,
                blocks: reply.blocks,
                reply_broadcast: reply.broadcast,
              }),
            );
            threaded.push(`${reply.key} ${sent.ts!} ${replyHash}`);
          }
          await this.outbox.posted(message, { ts, threaded });
        }
        await this.outbox.shown(message, { ts, threaded, live: card.live, shownHash: hash });
      } catch (err) {
        const permanent = refusedForGood(err);
        log.warn(
          { subject: message.subject, channel: message.channel, err: String(err), attempts: message.attempts + 1 },
          permanent
            ? 'Slack refused a message for good (channel gone, archived, or the bot not in it); skipped'
            : 'slack message not delivered; will retry',
        );
        await this.outbox.undelivered(message, permanent).catch(() => undefined);
      }
    }
  }
}
