import { In } from 'typeorm';
import { AppEntity, ReleaseEntity, type Pipeline } from '../db/entities.ts';
import type { ApprovalGate } from './approvals.ts';
import { promoteOfferOf } from './cards.ts';
import type { CommitLog, CommitLogs } from './commit-logs.ts';
import type { EngineContext } from './context.ts';
import type { DeployLocks } from './deploy-locks.ts';
import type { Dynos } from './dynos.ts';
import type { FeedOptIn } from './feeds.ts';
import type { Metrics } from './metrics.ts';
import type { Pipelines } from './pipelines.ts';
import type { NudgeData, NudgeKindName } from './views.ts';

/** FLOW_NUDGE_INTERVAL and FLOW_NUDGE_STAGING_DAYS. */
export interface NudgeSettings {
  intervalMs: number;
  stagingDays: number;
}

export const DEFAULT_NUDGE_SETTINGS: NudgeSettings = { intervalMs: 60_000, stagingDays: 2 };

/** A lock's holder hears of it this long before it expires. */
export const LOCK_WARNING_MS = 15 * 60_000;
/** An approval request waiting this long reminds the people who may approve it. */
export const APPROVAL_WAIT_MS = 3_600_000;
/**
 * A dyno crashed now, in a crash episode that began at least this long ago (or,
 * one that never ran fine, under a release that went live this long ago), is in
 * a crash loop: a dyno that stays up a minute starts a new episode, and the dyno
 * manager's back-off (at once, 10 s, 20 s, 40 s…) means it has crashed five
 * times or more in a row by then.
 */
export const CRASH_LOOP_MS = 5 * 60_000;

/** Who hears a nudge: the pipeline's feeds that asked for an opt-in, or these people (their chat accounts, `slack:<team>:<user>`). */
export type NudgeAudience = { optIn: FeedOptIn } | { people: string[] };

/** A nudge that is due: what it is about (one a day per kind and subject), who hears it, what it shows. */
export interface DueNudge<K extends NudgeKindName = NudgeKindName> {
  subject: string;
  pipeline: string;
  to: NudgeAudience;
  data: NudgeData[K];
  /** The line the audit trail keeps. */
  message: string;
}

/** What a kind looks at to find what is due: the engine's records and services, and the time it runs for. */
export interface NudgeScan {
  ctx: EngineContext;
  now: Date;
  settings: NudgeSettings;
  /** The pipelines with a feed that asked for `optIn` (only they are looked at for feed nudges). */
  pipelinesWith(optIn: FeedOptIn): Promise<Pipeline[]>;
  pipelines: Pipelines;
  commitLogs: CommitLogs;
  locks: DeployLocks;
  gate: ApprovalGate;
  dynos: Dynos;
  metrics: Metrics;
}

/**
 * One kind of nudge: which feeds opt in to it (none: it goes to people), and
 * what is due at the scan's time. A later kind (a weekly digest, subject
 * `digest:<pipeline>:<ISO week>`, opt-in `digest`) is one more row.
 */
export interface NudgeKind<K extends NudgeKindName> {
  optIn: FeedOptIn | null;
  due(scan: NudgeScan): Promise<DueNudge<K>[]>;
  /** The first day of the period a subject is told once in (`YYYY-MM-DD`); without it, a day. */
  period?: (now: Date) => string;
}

const DAY_MS = 86_400_000;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Staging runs commits production does not, for more than FLOW_NUDGE_STAGING_DAYS: the feeds, with Promote. */
async function stagingAhead(scan: NudgeScan): Promise<DueNudge<'staging_ahead'>[]> {
  const due: DueNudge<'staging_ahead'>[] = [];
  const db = scan.ctx.db;
  for (const pipeline of await scan.pipelinesWith('nudges')) {
    const apps = await db.getRepository(AppEntity).findBy({ pipelineId: pipeline.id, stage: In(['staging', 'production']) });
    const production = apps.filter((a) => a.stage === 'production').sort((a, b) => a.name.localeCompare(b.name));
    if (!production.length) continue;
    const running = await scan.pipelines.currentReleases(apps);
    const prodReleases = production.map((a) => running.get(a.id) ?? null);
    // The production app furthest behind: the oldest current release (none at all: production runs nothing yet).
    const behind = prodReleases.some((r) => r === null)
      ? null
      : prodReleases.reduce((a, b) => (a!.createdAt <= b!.createdAt ? a : b), prodReleases[0]!);
    for (const app of apps.filter((a) => a.stage === 'staging').sort((a, b) => a.name.localeCompare(b.name))) {
      const release = running.get(app.id);
      if (!release || release.status !== 'succeeded' || !release.commit) continue;
      const bases = prodReleases.map((r) => r?.commit ?? null);
      const logs = new Map<string | null, CommitLog | null>();
      for (const base of new Set(bases))
        if (base !== release.commit) logs.set(base, await scan.commitLogs.get(pipeline, base, release.commit));
      const offer = promoteOfferOf(
        { downstream: 'production', apps: production.map((a) => a.name), bases, head: release.commit },
        (base) => logs.get(base) ?? null,
      );
      if (!offer) continue;
      // Ahead since its first good release after what production runs (or since production went back to it).
      const first = await db
        .getRepository(ReleaseEntity)
        .createQueryBuilder('r')
        .where('r.app_id = :app AND r.status = :ok AND r.commit IS NOT NULL', { app: app.id, ok: 'succeeded' })
        .andWhere(behind ? 'r.created_at > :after AND r.commit IS DISTINCT FROM :base' : 'TRUE', {
          after: behind?.createdAt,
          base: behind?.commit,
        })
        .orderBy('r.created_at', 'ASC')
        .getOne();
      const since = first?.createdAt ?? behind?.createdAt ?? release.createdAt;
      const days = Math.floor((scan.now.getTime() - since.getTime()) / DAY_MS);
      if (scan.now.getTime() - since.getTime() <= scan.settings.stagingDays * DAY_MS) continue;
      const what = offer.unlisted ? 'commits' : plural(offer.ahead, 'commit');
      due.push({
        subject: `app:${app.name}`,
        pipeline: pipeline.name,
        to: { optIn: 'nudges' },
        data: { app: app.name, version: release.version, commit: release.commit, offer, since: since.toISOString(), days },
        message: `${app.name} v${release.version} has been ahead of production for ${plural(days, 'day')}: ${what} waiting to be promoted`,
      });
    }
  }
  return due;
}

/** A deploy lock about to expire: its holder, by direct message, with Extend 1h and Unlock. */
async function lockExpiring(scan: NudgeScan): Promise<DueNudge<'lock_expiring'>[]> {
  const ending = await scan.locks.endingBetween(scan.now, new Date(scan.now.getTime() + LOCK_WARNING_MS));
  return ending
    .filter((e) => e.holderAccount)
    .map(({ lock, holderAccount }) => ({
      subject: `lock:${lock.id}`,
      pipeline: lock.pipeline,
      to: { people: [holderAccount!] },
      data: { lock },
      message: `${lock.holder}'s lock on ${lock.target} expires at ${lock.until}`,
    }));
}

/** An approval request waiting for more than an hour: the people who may approve it, by direct message. */
async function approvalWaiting(scan: NudgeScan): Promise<DueNudge<'approval_waiting'>[]> {
  const waiting = await scan.gate.waitingSince(new Date(scan.now.getTime() - APPROVAL_WAIT_MS), scan.now);
  return waiting
    .filter((w) => w.approverAccounts.length)
    .map(({ request, approverAccounts }) => ({
      subject: `approval:${request.id}`,
      pipeline: request.pipeline,
      to: { people: approverAccounts },
      data: { request },
      message: `Request ${request.id} (${request.requester}: ${request.description}) has waited for approval since ${request.createdAt}`,
    }));
}

/** A dyno in a crash loop (CRASH_LOOP_MS): the feeds, with Restart. */
async function crashLoop(scan: NudgeScan): Promise<DueNudge<'crash_loop'>[]> {
  const pipelines = await scan.pipelinesWith('nudges');
  if (!pipelines.length) return [];
  // Episodes the platform reported but flowops has not recorded yet: a fresh crash after a healthy run is a new episode, not a loop.
  await scan.dynos.collectCrashes();
  const crashed = await scan.ctx.platform.crashed();
  const apps = await scan.ctx.db
    .getRepository(AppEntity)
    .findBy({ pipelineId: In(pipelines.map((p) => p.id)), name: In(Object.keys(crashed)) });
  if (!apps.length) return [];
  const episodes: { app: string; dyno: string; created_at: Date }[] = await scan.ctx.db.query(
    `SELECT DISTINCT ON (e.app, e.data->>'dyno') e.app, e.data->>'dyno' AS dyno, e.created_at FROM events e
      WHERE e.type = 'dyno.crashed' AND e.app = ANY($1) ORDER BY e.app, e.data->>'dyno', e.id DESC`,
    [apps.map((a) => a.name)],
  );
  const running = await scan.pipelines.currentReleases(apps);
  const due: DueNudge<'crash_loop'>[] = [];
  for (const app of apps) {
    const release = running.get(app.id);
    if (!release) continue;
    const pipeline = pipelines.find((p) => p.id === app.pipelineId)!;
    for (const dyno of crashed[app.name] ?? []) {
      // Crashing since its last episode began, or, a dyno that never ran fine under this release, since the release.
      const episode = episodes.find((e) => e.app === app.name && e.dyno === dyno);
      const since = Math.max(release.createdAt.getTime(), episode ? new Date(episode.created_at).getTime() : 0);
      if (scan.now.getTime() - since < CRASH_LOOP_MS) continue;
      const ps = await scan.ctx.platform.ps(app.name);
      const lines = await scan.ctx.platform
        .logs(app.name, { dyno, num: 10, source: 'app' })
        .then((page) => page.lines)
        .catch(() => []);
      const at = new Date(since).toISOString();
      due.push({
        subject: `dyno:${app.name}/${dyno}`,
        pipeline: pipeline.name,
        to: { optIn: 'nudges' },
        data: { app: app.name, dyno, since: at, exitCode: ps.dynos.find((d) => d.name === dyno)?.exitCode ?? null, lines },
        message: `${app.name} ${dyno} keeps crashing: crashed again and again since ${at}`,
      });
    }
  }
  return due;
}

/** The weekly digest goes out on Mondays from this hour (UTC), or at the first run after it that week. */
export const DIGEST_HOUR_UTC = 9;

/** The ISO 8601 week of a moment: its name (`2026-W48`) and its Monday, 00:00 UTC. */
export function isoWeek(at: Date): { week: string; monday: Date } {
  const midnight = Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate());
  const monday = new Date(midnight - ((at.getUTCDay() + 6) % 7) * DAY_MS);
  // The week belongs to the year of its Thursday, and week 1 is the one with that year's first Thursday.
  const thursday = new Date(monday.getTime() + 3 * DAY_MS);
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * DAY_MS)) + 1;
  return { week: `${year}-W${String(week).padStart(2, '0')}`, monday };
}

/**
 * The weekly digest of each pipeline with a feed that asked for it (`--digest`):
 * its delivery metrics over the last 7 days, once per ISO week, from Monday
 * DIGEST_HOUR_UTC on (a flowops that was down then sends it at its first run
 * that week; a feed that asks mid-week gets that week's at once).
 */
async function digest(scan: NudgeScan): Promise<DueNudge<'digest'>[]> {
  const { week, monday } = isoWeek(scan.now);
  if (scan.now.getTime() < monday.getTime() + DIGEST_HOUR_UTC * 3_600_000) return [];
  // Computed only for the pipelines whose digest has not gone out this week (the runs after it, all week, look it up here).
  const sent: { subject: string }[] = await scan.ctx.db.query(`SELECT subject FROM nudges WHERE kind = 'digest' AND day = $1`, [
    monday.toISOString().slice(0, 10),
  ]);
  const done = new Set(sent.map((r) => r.subject));
  const due: DueNudge<'digest'>[] = [];
  for (const pipeline of await scan.pipelinesWith('digest')) {
    if (done.has(`digest:${pipeline.name}:${week}`)) continue;
    const metrics = await scan.metrics.metricsOf(pipeline, 7, scan.now.getTime());
    due.push({
      subject: `digest:${pipeline.name}:${week}`,
      pipeline: pipeline.name,
      to: { optIn: 'digest' },
      data: { week, metrics },
      message: `the weekly digest of ${pipeline.name} for ${week}: ${plural(metrics.deploymentFrequency.deployments, 'production deployment')} in the last 7 days`,
    });
  }
  return due;
}

/** Every kind of nudge: what is due, and who hears it. */
export const NUDGE_KINDS: { [K in NudgeKindName]: NudgeKind<K> } = {
  staging_ahead: { optIn: 'nudges', due: stagingAhead },
  lock_expiring: { optIn: null, due: lockExpiring },
  approval_waiting: { optIn: null, due: approvalWaiting },
  crash_loop: { optIn: 'nudges', due: crashLoop },
  digest: { optIn: 'digest', due: digest, period: (now) => isoWeek(now).monday.toISOString().slice(0, 10) },
};
