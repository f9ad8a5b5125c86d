import PQueue from 'p-queue';
import type { DataSource, EntityManager } from 'typeorm';
import { LockHeld } from '../errors.ts';
import { log } from '../log.ts';
import { EventEntity, type FlowEvent, type Pipeline } from '../db/entities.ts';
import type { PostgresJobQueue } from '../db/job-queue.ts';
import type { Platform } from '../platform/platform.ts';
import type { OpenSource } from '../source/open-source.ts';
import type { Source } from '../source/source.ts';
import type { Actor } from './access.ts';
import { firstLine, recordAudit, recordRefusal } from './audit-records.ts';
import type { Outbox } from './outbox.ts';
import { DEFAULT_PLACEMENT, type PlacementSettings } from './placement.ts';

/**
 * What every engine service works with: the database, the platform, the
 * pipelines' sources, the job queues, and the one way to write state with its
 * events. Services get this, never the Engine facade.
 */
export class EngineContext {
  /** Operations' work run in this process (the embedded database), and test runs: long jobs, many at once. */
  readonly jobs = new PQueue({ concurrency: 64 });
  /** Builds: CPU-heavy, two at a time. */
  readonly builds = new PQueue({ concurrency: 2 });
  private readonly sources = new Map<string, Promise<Source>>();
  private readonly eventListeners = new Set<() => void>();

  constructor(
    readonly db: DataSource,
    readonly platform: Platform,
    readonly openSource: OpenSource,
    /** The events outbox; its consumers (the fronts' notifiers) get it from start-up, not from the engine. */
    readonly outbox: Outbox,
    /** Where new apps run (FLOW_PLATFORM, and whether Kubernetes is set up). */
    readonly placement: PlacementSettings = DEFAULT_PLACEMENT,
    /** On Postgres: the job queue every flowops process on the database claims operations from; null runs them in process. */
    readonly queue: PostgresJobQueue | null = null,
  ) {}

  /** This process among the flowops processes sharing the database (the outbox leases by it). */
  get runnerId(): string {
    return this.outbox.runnerId;
  }

  /** Calls `listener` after each transaction that wrote events, so a front can deliver them. */
  onEvents(listener: () => void): void {
    this.eventListeners.add(listener);
  }

  notify(): void {
    for (const listener of this.eventListeners) listener();
  }

  /** Runs `work` in one transaction (state and its events together), then tells the listeners. */
  transaction<T>(work: (m: EntityManager) => Promise<T>): Promise<T> {
    return this.db.transaction(work).then((result) => {
      this.notify();
      return result;
    });
  }

  /** Writes an event in the transaction `m`: the outbox, and what it adds to the audit trail. */
  async emit(m: EntityManager, event: Partial<FlowEvent> & Pick<FlowEvent, 'type' | 'via' | 'message'>): Promise<void> {
    await m.insert(EventEntity, { pipeline: null, app: null, operationId: null, actor: null, ...event, data: (event.data ?? {}) as never });
    await recordAudit(m, event);
  }

  /**
   * Records in the audit trail that `actor` was refused `action` on a pipeline
   * (no permission, a lock held by someone else): the only write a refusal
   * makes, outside any transaction (the refused one has rolled back). A trail
   * that cannot be written does not change the answer the person gets.
   */
  async refused(actor: Actor, pipeline: string, action: string, target: string, why: string): Promise<void> {
    await this.db
      .transaction((m) => recordRefusal(m, { pipeline, actor: actor.name, via: actor.via, action, target, detail: firstLine(why) }))
      .catch((err: unknown) => log.warn({ err, pipeline, action }, 'refusal not recorded in the audit trail'));
  }

  /** A catch handler for a change's transaction: a refusal by someone else's lock is recorded (refused), then passed on. */
  lockRefusal(actor: Actor, pipeline: string, action: string, target: string): (err: unknown) => Promise<never> {
    return async (err) => {
      if (err instanceof LockHeld)
        await this.refused(actor, pipeline, action, target, `${err.lock.target} is locked by ${err.lock.holder}`);
      throw err;
    };
  }

  /** The pipeline's source, opened once per repository and kept. */
  async source(pipeline: Pipeline): Promise<Source> {
    let source = this.sources.get(pipeline.repo);
    if (!source) {
      source = this.openSource(pipeline.repo);
      source.catch(() => this.sources.delete(pipeline.repo));
      this.sources.set(pipeline.repo, source);
    }
    return source;
  }

  /** Forgets an opened source (a pipeline now takes its code from elsewhere). */
  forgetSource(repo: string): void {
    this.sources.delete(repo);
  }
}
