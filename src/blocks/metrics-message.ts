import type { KnownBlock } from '@slack/types';
import type { Band, MetricsView } from '../api/types.ts';
import { metricsRows, noMetrics } from '../format.ts';
import { contextBlock, mrkdwn, mrkdwnText, section, slackMessage, type Mrkdwn } from './mrkdwn.ts';

const BAND_MARK: Record<Band, string> = {
  elite: ':large_green_circle: elite',
  high: ':large_blue_circle: high',
  medium: ':large_yellow_circle: medium',
  low: ':red_circle: low',
};

const bandMark = (band: string) => (band in BAND_MARK ? BAND_MARK[band as Band] : '–');

/** `/flow metrics <pipeline>`: the four DORA keys with their bands, posted in the channel above the chart. */
export function metricsMessage(m: MetricsView): { text: string; blocks: KnownBlock[] } {
  const rows = metricsRows(m);
  if (!rows.length) return slackMessage(mrkdwn`${noMetrics(m)}`, [section(mrkdwn`${noMetrics(m)}`)]);
  const window = `${m.since.slice(0, 10)} to ${m.until.slice(0, 10)}`;
  const title: Mrkdwn = mrkdwn`*Delivery metrics of ${m.pipeline}* · production · last ${m.days} days`;
  return slackMessage(mrkdwn`Delivery metrics of ${m.pipeline}, production, last ${m.days} days`, [
    section(title),
    {
      type: 'section',
      fields: rows.flatMap(([key, value, band]) => [mrkdwnText(mrkdwn`*${key}*\n${value}`), mrkdwnText(mrkdwn`\n${bandMark(band)}`)]),
    },
    contextBlock(
      mrkdwn`${window} UTC · bands of the DORA research program (2023 report) · \`flowops metrics ${m.pipeline} --json\` has every deployment`,
    ),
  ]);
}

/**
 * The summary shown to the person alone, where posting it would put the
 * pipeline's numbers before a channel that does not follow it: says why, and
 * how to share it.
 */
export function privateMetricsMessage(
  message: { text: string; blocks: KnownBlock[] },
  pipeline: string,
): { text: string; blocks: KnownBlock[] } {
  return {
    text: message.text,
    blocks: [
      ...message.blocks,
      contextBlock(
        mrkdwn`:lock: Only you see this: this channel is not a feed of ${pipeline}. Post it with the chart in a feed of ${pipeline}, or a manager of ${pipeline} can post it here (or \`/flow subscribe ${pipeline}\` here).`,
      ),
    ],
  };
}

/** The chart's text for people who cannot see it (Slack's alt text). */
export function metricsChartAlt(m: MetricsView): string {
  const weeks = m.weeks.map((w) => `${w.start}: ${w.deployments}`).join(', ');
  return `Deployments per week of ${m.pipeline} (${weeks}), with their median lead time`;
}
