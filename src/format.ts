/** Small formatting helpers every layer may use (a leaf module). */
import type { AuditRecordView, MetricsView } from './api/types.ts';

/** A commit's short sha, as git and Heroku print it; `-` for none. */
export const short = (sha: string | null | undefined) => (sha ? sha.slice(0, 7) : '-');

/** "3 minutes ago", as Heroku prints release ages. */
export function age(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  const units: [number, string][] = [
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ];
  for (const [size, unit] of units) {
    if (seconds >= size) {
      const n = Math.floor(seconds / size);
      return `${n} ${unit}${n === 1 ? '' : 's'} ago`;
    }
  }
  return `${seconds} second${seconds === 1 ? '' : 's'} ago`;
}

/**
 * Text for a terminal: control characters other than line feed and tab (escape
 * sequences that clear the screen, retitle the window or hide text, from build
 * output or commit messages) are shown as `\xNN` instead of acting.
 */
export function forTerminal(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** How long something took: "8s", "2m 05s", "1h 03m". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** When something ends, for messages: "14:05 UTC" today, "Tue 24 Nov 14:05 UTC" on another day. */
export function until(iso: string, now = Date.now()): string {
  const at = new Date(iso);
  const time = `${at.toISOString().slice(11, 16)} UTC`;
  if (at.toISOString().slice(0, 10) === new Date(now).toISOString().slice(0, 10)) return time;
  const day = at.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short', timeZone: 'UTC' }).replace(',', '');
  return `${day} ${time}`;
}

/** A span of time for metrics: "2d 04h", "3h 10m", "42m", "35s". */
export function span(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 86400) return `${Math.floor(s / 86400)}d ${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m`;
  return `${s}s`;
}

/** How often: "2.3 per day", "0.40 per day" (two significant digits, at most two decimals). */
const rate = (n: number) => (n >= 10 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : n.toFixed(2));

/**
 * The four DORA keys as rows of [key, value, band], for the CLI's table and
 * Slack's summary; empty when nothing was deployed or tried in the window.
 */
export function metricsRows(m: MetricsView): [string, string, string][] {
  const f = m.deploymentFrequency;
  const c = m.changeFailureRate;
  if (!c) return [];
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  const lead = m.leadTime;
  const restore = m.timeToRestore;
  return [
    ['Deployment frequency', `${rate(f.perDay)} per day, ${rate(f.perWeek)} per week (${plural(f.deployments, 'deployment')})`, f.band],
    lead
      ? [
          'Lead time for changes',
          `median ${span(lead.medianSeconds)}, p90 ${span(lead.p90Seconds)} (${plural(lead.measured, 'deployment')})`,
          lead.band,
        ]
      : ['Lead time for changes', 'no deployment with known commits', '-'],
    [
      'Change failure rate',
      `${(c.rate * 100).toFixed(1)}% (${c.failures} of ${c.attempts}: ${c.rolledBack} rolled back, ${c.failedRelease} failed release, ${c.fixedForward} fixed forward)`,
      c.band,
    ],
    restore
      ? [
          'Time to restore',
          `median ${span(restore.medianSeconds)} (${restore.restored} restored, ${restore.unrestored} not yet)`,
          restore.band,
        ]
      : ['Time to restore', c.failures ? `${plural(c.failures, 'failure')}, none restored yet` : 'no failures', '-'],
  ];
}

/** What `metrics` says when the window holds no production release: never a NaN. */
export const noMetrics = (m: MetricsView) =>
  `No production releases (deploys or promotions) of ${m.pipeline} in the last ${m.days} day${m.days === 1 ? '' : 's'}.`;

/** `refused`, or `refused ×12 (last 10:14:03)` for a refusal tried again. */
export function outcomeText(r: Pick<AuditRecordView, 'outcome' | 'repeats' | 'lastAt'>): string {
  return r.repeats > 1 ? `${r.outcome} ×${r.repeats}${r.lastAt ? ` (last ${r.lastAt.slice(11, 19)})` : ''}` : r.outcome;
}
