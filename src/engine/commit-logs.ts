import type { Pipeline } from '../db/entities.ts';
import type { Commit } from '../source/source.ts';
import type { EngineContext } from './context.ts';

/** How many commits of a range are listed (the count covers them all). */
export const LOGGED_COMMITS = 10;

export interface CommitLog {
  ahead: number;
  commits: Commit[];
}

/** A range of a pipeline's commits: what `head` has that `base` (null: nothing) has not. */
export interface CommitRange {
  pipelineId: number;
  base: string | null;
  head: string;
}

export const rangeKey = (r: CommitRange) => `${r.pipelineId} ${r.base ?? ''} ${r.head}`;

/**
 * What lies between two commits of a pipeline, asked of its source once and
 * kept: commits never change, so neither does the answer. Boards read many
 * ranges in one query and never wait for git or GitHub; what is not known yet
 * is filled in the background (`fill`) and shown on the next publish.
 */
export class CommitLogs {
  constructor(private readonly ctx: EngineContext) {}

  /** The range's log: kept, or asked of the source and kept; null when the source cannot answer just now. */
  async get(pipeline: Pipeline, base: string | null, head: string): Promise<CommitLog | null> {
    const range = { pipelineId: pipeline.id, base, head };
    const kept = (await this.lookup([range])).get(rangeKey(range));
    if (kept) return kept;
    let log: CommitLog;
    try {
      log = await (await this.ctx.source(pipeline)).log(base, head, LOGGED_COMMITS);
    } catch {
      return null;
    }
    await this.ctx.db.query(
      `INSERT INTO commit_logs (pipeline_id, base, head, ahead, commits) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (pipeline_id, base, head) DO NOTHING`,
      [pipeline.id, base ?? '', head, log.ahead, JSON.stringify(log.commits)],
    );
    return log;
  }

  /** The kept logs of these ranges, in one query; a range not kept yet is absent. */
  async lookup(ranges: CommitRange[]): Promise<Map<string, CommitLog>> {
    const found = new Map<string, CommitLog>();
    if (!ranges.length) return found;
    const rows: { pipeline_id: number; base: string; head: string; ahead: number; commits: Commit[] }[] = await this.ctx.db.query(
      `SELECT c.pipeline_id, c.base, c.head, c.ahead, c.commits
         FROM commit_logs c
         JOIN unnest($1::int[], $2::text[], $3::text[]) AS r(pipeline_id, base, head)
           ON c.pipeline_id = r.pipeline_id AND c.base = r.base AND c.head = r.head`,
      [ranges.map((r) => r.pipelineId), ranges.map((r) => r.base ?? ''), ranges.map((r) => r.head)],
    );
    for (const row of rows)
      found.set(rangeKey({ pipelineId: row.pipeline_id, base: row.base || null, head: row.head }), {
        ahead: row.ahead,
        commits: row.commits,
      });
    return found;
  }
}
