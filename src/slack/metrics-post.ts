import type { KnownBlock } from '@slack/types';
import type { MetricsView } from '../api/types.ts';
import { metricsChartAlt, metricsMessage } from '../blocks/metrics-message.ts';
import { metricsChartPng } from '../charts/metrics-chart.ts';
import type { Actor } from '../engine/access.ts';
import type { Engine } from '../engine/engine.ts';
import type { SlackDeps } from './context.ts';

/** A pipeline's delivery metrics, ready to post: the numbers, the summary message and the chart (null when nothing was deployed). */
export interface MetricsReport {
  metrics: MetricsView;
  message: { text: string; blocks: KnownBlock[] };
  chart: Buffer | null;
}

/**
 * The metrics of a pipeline's production over the last `days` as the actor may
 * see them (the engine checks view first), with the summary blocks and the
 * chart PNG. The weekly digest calls it with `days` 7.
 */
export async function metricsReport(engine: Engine, actor: Actor, pipeline: string, days = 30): Promise<MetricsReport> {
  const metrics = await engine.metrics(actor, pipeline, days);
  const deployed = metrics.changeFailureRate !== null;
  return { metrics, message: metricsMessage(metrics), chart: deployed ? await metricsChartPng(metrics) : null };
}

/**
 * Shares the chart in a channel with Slack's upload flow (files.uploadV2:
 * getUploadURLExternal, the bytes to its upload_url, completeUploadExternal
 * naming the channel). The bot must be in the channel; Slack refuses otherwise.
 */
export async function shareMetricsChart(deps: SlackDeps, report: MetricsReport, channel: string): Promise<void> {
  if (!report.chart) return;
  const m = report.metrics;
  await deps.api.call((web) =>
    web.filesUploadV2({
      channel_id: channel,
      file: report.chart!,
      filename: `${m.pipeline}-metrics-${m.until.slice(0, 10)}.png`,
      title: `${m.pipeline}: deployments per week and lead time, last ${m.days} days`,
      alt_text: metricsChartAlt(m),
    }),
  );
}
