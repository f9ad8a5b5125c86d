import { Logger, run, runMigrations, type LogLevel, type Runner } from 'graphile-worker';
import type { EntityManager } from 'typeorm';
import { log } from '../log.ts';

/** graphile-worker's log lines, through flowops' log: its warnings and errors; its per-job info lines are noise here. */
const logger = new Logger((scope) => (level: LogLevel, message: string) => {
  if (level === 'error') log.error({ queue: scope }, message);
  else if (level === 'warning') log.warn({ queue: scope }, message);
});

/** Installs graphile-worker's schema (`graphile_worker`), or brings it up to date: it runs its own migrations. */
export async function migrateJobQueue(connectionString: string): Promise<void> {
  await runMigrations({ connectionString, logger });
}

/** A job of the queue as the queue holds it: whether a process has claimed it, and for how long. */
export interface QueuedJob {
  key: string;
  /** Claimed by a worker (graphile-worker's lock). */
  claimed: boolean;
  /** Claimed longer ago than the `staleSeconds` asked about. */
  claimedLongAgo: boolean;
  /** Tried and failed (its task threw: a payload this process cannot read): the queue keeps it and never tries it again. */
  failed: boolean;
}

/**
 * Jobs in Postgres, claimed by exactly one process among all that run a worker
 * on the database: graphile-worker (SKIP LOCKED, LISTEN/NOTIFY). Jobs are added
 * in the caller's transaction, so a job exists exactly when what it works on
 * was committed. Each job is tried once (`max_attempts` 1): work that a dead
 * process left half done is never run again by another.
 */
export class PostgresJobQueue {
  private runner: Runner | null = null;
  private starting: Promise<void> | null = null;
  private stopped = false;
  private readonly tasks: Record<string, (payload: unknown) => Promise<void>> = {};

  constructor(
    private readonly connectionString: string,
    /** How many jobs this process runs at once (FLOW_WORKER_CONCURRENCY). */
    private readonly concurrency: number,
  ) {}

  /** Runs jobs of `task` with `work` (before `start`); what it throws is logged by the queue, and the job stays failed. */
  handle(task: string, work: (payload: unknown) => Promise<void>): void {
    this.tasks[task] = work;
  }

  /** Adds a job in the transaction `m`; `key` names it (one job per key), for `drop`. */
  async add(m: EntityManager, task: string, payload: unknown, key: string): Promise<void> {
    await m.query('SELECT graphile_worker.add_job($1::text, $2::json, job_key := $3::text, max_attempts := 1)', [
      task,
      JSON.stringify(payload),
      key,
    ]);
  }

  /**
   * Removes the job named `key` whatever its state, in the transaction `m`: a
   * job claimed by a process that died is unlocked first (with every other job
   * that process held; none of them is tried again), so nothing runs it later.
   */
  async drop(m: EntityManager, key: string): Promise<void> {
    await m.query(
      `SELECT graphile_worker.force_unlock_workers(ARRAY(SELECT DISTINCT locked_by FROM graphile_worker.jobs WHERE key = $1 AND locked_by IS NOT NULL))`,
      [key],
    );
    await m.query('SELECT graphile_worker.remove_job($1::text)', [key]);
  }

  /** The jobs of `task` still in the queue (waiting, or claimed and running). */
  async jobs(m: EntityManager, task: string, staleSeconds: number): Promise<Map<string, QueuedJob>> {
    const rows: { key: string; claimed: boolean; claimed_long_ago: boolean; failed: boolean }[] = await m.query(
      `SELECT key, locked_at IS NOT NULL AS claimed, coalesce(locked_at < now() - make_interval(secs => $2), false) AS claimed_long_ago,
              locked_at IS NULL AND attempts >= max_attempts AS failed
         FROM graphile_worker.jobs WHERE task_identifier = $1 AND key IS NOT NULL`,
      [task, staleSeconds],
    );
    return new Map(rows.map((r) => [r.key, { key: r.key, claimed: r.claimed, claimedLongAgo: r.claimed_long_ago, failed: r.failed }]));
  }

  /** Starts claiming jobs (again after a worker failure), unless stopped. Idempotent. */
  start(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.starting ??= this.run().catch((err: unknown) => {
      this.starting = null;
      throw err;
    });
    return this.starting;
  }

  private async run(): Promise<void> {
    const runner = await run({
      connectionString: this.connectionString,
      concurrency: this.concurrency,
      noHandleSignals: true,
      pollInterval: 2_000,
      logger,
      taskList: Object.fromEntries(Object.entries(this.tasks).map(([name, task]) => [name, (payload: unknown) => task(payload)])),
    });
    this.runner = runner;
    // A worker that cannot record a job's end (the database went away) stops its pool: claim again once it is back.
    runner.promise
      .catch((err: unknown) => log.warn({ err }, 'job queue worker stopped'))
      .finally(() => {
        if (this.runner !== runner || this.stopped) return;
        this.runner = null;
        this.starting = null;
        setTimeout(() => {
          this.start().catch((err: unknown) => log.warn({ err }, 'job queue worker not restarted'));
        }, 1_000).unref();
      });
  }

  /** Stops claiming jobs; waits for the jobs this process runs to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.starting?.catch(() => undefined);
    const runner = this.runner;
    this.runner = null;
    await runner?.stop();
  }
}
