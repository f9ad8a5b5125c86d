import { PipelineEntity, type Pipeline } from '../db/entities.ts';
import { log } from '../log.ts';
import type { EngineContext } from './context.ts';
import type { FeedOptIn } from './feeds.ts';
import { NUDGE_KINDS, type DueNudge, type NudgeScan, type NudgeSettings } from './nudge-kinds.ts';
import type { NudgeKindName, NudgeReport } from './views.ts';

/** The day a nudge is filed under: its UTC date. */
export const nudgeDay = (at: Date) => at.toISOString().slice(0, 10);
/** The first key of the advisory lock that takes the nudges of one kind and subject one at a time. */
const NUDGES_NAMESPACE = 0x4e0d;

/**
 * Nudges: flowops tells people what they need to know before they ask (staging
 * waiting to be promoted, a lock about to expire, an approval waiting, a dyno
 * that keeps crashing). Each run asks every kind (src/engine/nudge-kinds.ts)
 * what is due, and records each due nudge with its event in one transaction,
 * at most once in 24 hours per kind and subject (a period's once, for a kind
 * that has one: the weekly digest), whichever process runs first, and
 * delivered once by the outbox like any other event.
 */
export class Nudges {
  private running: Promise<number> | null = null;

  constructor(
    private readonly ctx: EngineContext,
    private readonly settings: NudgeSettings,
    private readonly services: Pick<NudgeScan, 'pipelines' | 'commitLogs' | 'locks' | 'gate' | 'dynos' | 'metrics'>,
  ) {}

  /**
   * Sends what is due at `now` (tests pass a time) and was not sent within a day;
   * resolves with how many nudges went out. One run at a time in a process;
   * a kind that fails is logged and the others still run.
   */
  runNudges(now: Date = new Date()): Promise<number> {
    this.running ??= this.run(now).finally(() => (this.running = null));
    return this.running;
  }

  /** Resolves once the run under way (if any) has ended: stopping waits for it. */
  async settled(): Promise<void> {
    await this.running?.catch(() => undefined);
  }

  /** What a nudge's message shows, or null when there is no such nudge. */
  async nudgeReport(id: number): Promise<NudgeReport | null> {
    const rows: { id: number; kind: NudgeKindName; pipeline: string; data: unknown; created_at: Date; repo: string | null }[] =
      await this.ctx.db.query(
        'SELECT n.id, n.kind, n.pipeline, n.data, n.created_at, p.repo FROM nudges n LEFT JOIN pipelines p ON p.name = n.pipeline WHERE n.id = $1',
        [id],
      );
    const row = rows[0];
    if (!row || !(row.kind in NUDGE_KINDS)) return null;
    return {
      id: row.id,
      kind: row.kind,
      pipeline: row.pipeline,
      repo: row.repo,
      at: new Date(row.created_at).toISOString(),
      data: row.data,
    } as NudgeReport;
  }

  private async run(now: Date): Promise<number> {
    const scan: NudgeScan = { ctx: this.ctx, now, settings: this.settings, pipelinesWith: (o) => this.pipelinesWith(o), ...this.services };
    let sent = 0;
    for (const [kind, spec] of Object.entries(NUDGE_KINDS) as [NudgeKindName, (typeof NUDGE_KINDS)[NudgeKindName]][]) {
      try {
        for (const nudge of await spec.due(scan)) if (await this.send(kind, nudge, now, spec.period?.(now) ?? null)) sent++;
      } catch (err) {
        log.warn({ err, kind }, 'nudges of a kind not sent; trying again on the next run');
      }
    }
    return sent;
  }

  /**
   * Records the nudge and its event, unless one of its kind and subject went out
   * within 24 hours of `now` — or in that period, `period` being its first day —
   * here or in another process. A rolling day, not a calendar one: a lock
   * reminded at 23:50 is not reminded again at 00:05.
   */
  private send(kind: NudgeKindName, nudge: DueNudge, now: Date, period: string | null): Promise<boolean> {
    return this.ctx.transaction(async (m) => {
      if (period === null) {
        await m.query(`SELECT pg_advisory_xact_lock($1, hashtext($2 || ':' || $3))`, [NUDGES_NAMESPACE, kind, nudge.subject]);
        const recent: unknown[] = await m.query(
          `SELECT 1 FROM nudges WHERE kind = $1 AND subject = $2
              AND created_at > $3::timestamptz - interval '1 day' AND created_at < $3::timestamptz + interval '1 day' LIMIT 1`,
          [kind, nudge.subject, now],
        );
        if (recent.length) return false;
      }
      const day = period ?? nudgeDay(now);
      const inserted: { id: number }[] = await m.query(
        `INSERT INTO nudges (kind, subject, day, pipeline, data, created_at) VALUES ($1, $2, $3, $4, $5, $6)
          ON CONFLICT (kind, subject, day) DO NOTHING RETURNING id`,
        // Its time is the run's (now, but for a run a test makes for another time): what "waited 1h" is counted from.
        [kind, nudge.subject, day, nudge.pipeline, JSON.stringify(nudge.data), now],
      );
      if (!inserted.length) return false;
      await this.ctx.emit(m, {
        type: `nudge.${kind}`,
        pipeline: nudge.pipeline,
        via: 'system',
        message: nudge.message,
        data: { nudge: inserted[0]!.id, kind, subject: nudge.subject, to: nudge.to },
      });
      return true;
    });
  }

  /** The pipelines with a feed that asked for `optIn`. */
  private async pipelinesWith(optIn: FeedOptIn): Promise<Pipeline[]> {
    return this.ctx.db
      .getRepository(PipelineEntity)
      .createQueryBuilder('p')
      .where('EXISTS (SELECT 1 FROM subscriptions s WHERE s.pipeline_id = p.id AND :optIn = ANY(s.opt_ins))', { optIn })
      .orderBy('p.name', 'ASC')
      .getMany();
  }
}
