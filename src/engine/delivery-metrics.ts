import type { Band, ChangeFailure, MetricsDeployment, MetricsView } from '../api/types.ts';

/*
 * The four DORA keys as a pure function of plain records, so each number can
 * be checked by hand (test/metrics.test.ts does). README "Delivery metrics"
 * states every definition below in words; change both together.
 */

const HOUR = 3600;
const DAY = 24 * HOUR;
const WEEK_MS = 7 * DAY * 1000;

/** A release of a production app, as the metrics read it. */
export interface ProductionRelease {
  app: string;
  version: number;
  /** What made it (its operation's kind). Deploys and promotions are deployments; rollbacks and config changes are not. */
  kind: 'deploy' | 'promote' | 'rollback' | 'config';
  status: 'succeeded' | 'failed';
  commit: string | null;
  /** When it went live (succeeded) or its release failed, in ms since the epoch. */
  at: number;
}

/** What a deployment brought to production: the commits of `head` that `base` (what the app ran before) lacks. */
export interface DeployedRange {
  app: string;
  version: number;
  base: string | null;
  head: string;
}

export interface MetricsInput {
  pipeline: string;
  days: number;
  now: number;
  /**
   * Every release of the pipeline's production apps that ended in the window,
   * and each app's last good release before it (what it ran when the window opened).
   */
  releases: ProductionRelease[];
  /** Whether the pipeline has a staging stage: only then is a direct deploy to production a way around it (a fix forward). */
  hasStaging: boolean;
  /** For a deployment (app + version), the commit time (ms) of the oldest commit it brought to production; absent when unknown or none. */
  oldestCommitAt: Map<string, number>;
}

/** A fix forward is the app's next deployment going live within this long of the failed one. */
export const FIX_FORWARD_WITHIN_MS = DAY * 1000;

/**
 * The bands' edges (2023 Accelerate State of DevOps Report, dora.dev; where its
 * clusters overlap or leave a gap, a band reaches to where the better one starts).
 */
export const BANDS = {
  /** Successful production deployments per day, at least. */
  deploymentFrequency: { elite: 1, high: 1 / 7, medium: 1 / 30 },
  /** Median lead time in seconds: elite below, high and medium at most. */
  leadTime: { elite: DAY, high: 7 * DAY, medium: 30 * DAY },
  /** Change failure rate, at most. */
  changeFailureRate: { elite: 0.05, high: 0.1, medium: 0.15 },
  /** Median time to restore in seconds: elite and high below, medium at most. */
  timeToRestore: { elite: HOUR, high: DAY, medium: 7 * DAY },
} as const;

export function deploymentFrequencyBand(perDay: number): Band {
  const b = BANDS.deploymentFrequency;
  return perDay >= b.elite ? 'elite' : perDay >= b.high ? 'high' : perDay >= b.medium ? 'medium' : 'low';
}

export function leadTimeBand(medianSeconds: number): Band {
  const b = BANDS.leadTime;
  return medianSeconds < b.elite ? 'elite' : medianSeconds <= b.high ? 'high' : medianSeconds <= b.medium ? 'medium' : 'low';
}

export function changeFailureRateBand(rate: number): Band {
  const b = BANDS.changeFailureRate;
  return rate <= b.elite ? 'elite' : rate <= b.high ? 'high' : rate <= b.medium ? 'medium' : 'low';
}

export function timeToRestoreBand(medianSeconds: number): Band {
  const b = BANDS.timeToRestore;
  return medianSeconds < b.elite ? 'elite' : medianSeconds < b.high ? 'high' : medianSeconds <= b.medium ? 'medium' : 'low';
}

/** The q-quantile by linear interpolation between closest ranks (Postgres' percentile_cont, numpy's default). */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

const isDeployment = (r: ProductionRelease): r is ProductionRelease & { kind: 'deploy' | 'promote' } =>
  r.kind === 'deploy' || r.kind === 'promote';

export const deploymentKey = (app: string, version: number) => `${app} v${version}`;

/** Each app's releases, oldest version first. */
function byApp(releases: ProductionRelease[]): Map<string, ProductionRelease[]> {
  const apps = new Map<string, ProductionRelease[]>();
  for (const r of releases) apps.set(r.app, [...(apps.get(r.app) ?? []), r]);
  for (const list of apps.values()) list.sort((a, b) => a.version - b.version);
  return apps;
}

/**
 * The commit ranges whose oldest commit gives each successful deployment's lead
 * time: from what the app ran before it (its previous good release) to its commit.
 */
export function deployedRanges(releases: ProductionRelease[]): DeployedRange[] {
  const ranges: DeployedRange[] = [];
  for (const list of byApp(releases).values()) {
    let running: string | null = null;
    for (const r of list) {
      if (r.status !== 'succeeded') continue;
      if (isDeployment(r) && r.commit && r.commit !== running)
        ranges.push({ app: r.app, version: r.version, base: running, head: r.commit });
      running = r.commit;
    }
  }
  return ranges;
}

/** The start of the week (Monday 00:00 UTC) that holds `ms`. */
function weekStart(ms: number): number {
  const day = new Date(ms);
  const midnight = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate());
  return midnight - ((day.getUTCDay() + 6) % 7) * DAY * 1000;
}

/** Whole seconds: the unit the metrics are given in. */
const median = (values: number[]) => (values.length ? Math.round(quantile(values, 0.5)) : null);

/** The four DORA keys of a pipeline's production stage, from its releases. */
export function deliveryMetrics(input: MetricsInput): MetricsView {
  const since = input.now - input.days * DAY * 1000;
  const deployments: MetricsDeployment[] = [];

  for (const list of byApp(input.releases).values()) {
    list.forEach((d, i) => {
      if (!isDeployment(d) || d.at < since || d.at > input.now) return;
      const later = list.slice(i + 1);
      const failure = failureOf(d, later, input.hasStaging);
      const oldest = input.oldestCommitAt.get(deploymentKey(d.app, d.version));
      // Restored by the app's next good release: one that went live and is not itself a failure.
      const good = failure && later.find((r, j) => r.status === 'succeeded' && !failureOf(r, later.slice(j + 1), input.hasStaging));
      deployments.push({
        app: d.app,
        version: d.version,
        kind: d.kind,
        status: d.status,
        at: new Date(d.at).toISOString(),
        commit: d.commit,
        leadTimeSeconds: d.status === 'succeeded' && oldest !== undefined ? Math.max(0, Math.round((d.at - oldest) / 1000)) : null,
        failure,
        restoredSeconds: good ? Math.round((good.at - d.at) / 1000) : null,
      });
    });
  }
  deployments.sort((a, b) => Date.parse(a.at) - Date.parse(b.at) || a.app.localeCompare(b.app));

  const live = deployments.filter((d) => d.status === 'succeeded');
  const perDay = live.length / input.days;
  const leadTimes = live.map((d) => d.leadTimeSeconds).filter((s): s is number => s !== null);
  const failures = deployments.filter((d) => d.failure);
  const restores = failures.map((d) => d.restoredSeconds).filter((s): s is number => s !== null);
  const count = (kind: ChangeFailure) => failures.filter((d) => d.failure === kind).length;

  const weeks: MetricsView['weeks'] = [];
  for (let start = weekStart(since); start <= input.now; start += WEEK_MS) {
    const inWeek = live.filter((d) => Date.parse(d.at) >= start && Date.parse(d.at) < start + WEEK_MS);
    weeks.push({
      start: new Date(start).toISOString().slice(0, 10),
      deployments: inWeek.length,
      leadTimeMedianSeconds: median(inWeek.map((d) => d.leadTimeSeconds).filter((s): s is number => s !== null)),
    });
  }

  const leadMedian = median(leadTimes);
  const restoreMedian = median(restores);
  const rate = deployments.length ? failures.length / deployments.length : null;
  return {
    pipeline: input.pipeline,
    days: input.days,
    since: new Date(since).toISOString(),
    until: new Date(input.now).toISOString(),
    deploymentFrequency: { deployments: live.length, perDay, perWeek: perDay * 7, band: deploymentFrequencyBand(perDay) },
    leadTime:
      leadMedian === null
        ? null
        : {
            medianSeconds: leadMedian,
            p90Seconds: Math.round(quantile(leadTimes, 0.9)),
            measured: leadTimes.length,
            band: leadTimeBand(leadMedian),
          },
    changeFailureRate:
      rate === null
        ? null
        : {
            failures: failures.length,
            attempts: deployments.length,
            rate,
            band: changeFailureRateBand(rate),
            failedRelease: count('failed_release'),
            rolledBack: count('rolled_back'),
            fixedForward: count('fixed_forward'),
          },
    timeToRestore:
      restoreMedian === null
        ? null
        : {
            medianSeconds: restoreMedian,
            restored: restores.length,
            unrestored: failures.length - restores.length,
            band: timeToRestoreBand(restoreMedian),
          },
    weeks,
    deployments,
  };
}

/**
 * Why a release counts as a failed deployment, given the app's releases after it
 * (null: it does not). Only deploys and promotions can fail as changes.
 */
function failureOf(r: ProductionRelease, later: ProductionRelease[], hasStaging: boolean): ChangeFailure | null {
  if (!isDeployment(r)) return null;
  if (r.status === 'failed') return 'failed_release';
  // What came next in production: a rollback, or the next deployment that went live (config changes and failed tries skipped).
  const next = later.find((x) => x.kind === 'rollback' || (isDeployment(x) && x.status === 'succeeded'));
  if (next?.kind === 'rollback') return 'rolled_back';
  if (hasStaging && next?.kind === 'deploy' && next.at - r.at <= FIX_FORWARD_WITHIN_MS) return 'fixed_forward';
  return null;
}
