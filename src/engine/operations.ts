import { setTimeout as sleep } from 'node:timers/promises';
import { type EntityManager } from 'typeorm';
import {
  EventEntity,
  OperationEntity,
  PipelineEntity,
  type App,
  type FailedPhase,
  type FlowEvent,
  type Operation,
  type OperationKind,
  type Pipeline,
} from '../db/entities.ts';
import { untilDatabaseAnswers } from '../db/outage.ts';
import { log } from '../log.ts';
import { type OperationDetails, type OperationView } from './views.ts';
import { permits, type Actor } from './access.ts';
import { InvalidInput, NotFound } from '../errors.ts';
import { isCount } from './input.ts';
import type { EngineContext } from './context.ts';
import type { Access } from './access-control.ts';
import { transition } from './transitions.ts';
import { configAction } from './audit-records.ts';
import { operationJobKey, parseOperationJob, type OperationJob, type OperationWork } from './operation-work.ts';

/** An operation's work failed in a known phase (its build): the targets it never reached record that phase. */
export class PhaseFailed extends Error {
  constructor(
    message: string,
    readonly phase: FailedPhase,
  ) {
    super(message);
  }
}

/** A progress line for an operation; the CLI and Slack show these as they arrive. */
export type Progress = (message: string, app?: string) => Promise<void>;
/** Carries out an operation's work; throws when it failed. */
export type Perform = (op: Operation, work: OperationWork, progress: Progress) => Promise<void>;

/** The job queue's task that runs operations. */
export const OPERATION_TASK = 'flowops_operation';
/** How often `outcome` looks at an operation another process runs. */
const OUTCOME_POLL_MS = 200;
/** Operations: created with their first event, run as jobs, ended with their outcome. */
export class Operations {
  /** Operations running in this process, until they end. */
  private readonly running = new Map<number, Promise<void>>();
  /** Operations this process queued (Postgres) and has not seen end: what `idle` waits for. */
  private readonly launched = new Set<number>();
  private perform: Perform | null = null;

  constructor(
    private readonly ctx: EngineContext,
    private readonly authz: Access,
  ) {
    ctx.queue?.handle(OPERATION_TASK, (payload) => this.runQueued(payload));
  }

  /** Wires the one dispatcher that carries out an operation's work (the releases service's). */
  performWith(perform: Perform): void {
    this.perform = perform;
  }

  async operation(actor: Actor, id: number, afterEvent = '0'): Promise<{ operation: OperationView; events: FlowEvent[] }> {
    // Ids are Postgres integers, event ids bigints: a larger number names nothing (and would fail the query).
    if (!isCount(id)) throw new NotFound(`no operation ${String(id).slice(0, 30)}`);
    if (!/^\d{1,18}$/.test(afterEvent)) throw new InvalidInput('`after` is an event id: a whole number of at most 18 digits');
    const op = await this.ctx.db.getRepository(OperationEntity).findOneBy({ id });
    if (!op) throw new NotFound(`no operation ${id}`);
    const pipeline = op.pipelineId ? await this.ctx.db.getRepository(PipelineEntity).findOneBy({ id: op.pipelineId }) : null;
    if (!actor.admin && op.actorId !== actor.id) {
      if (!pipeline || !permits(await this.authz.permissionOf(actor, pipeline), 'view')) throw new NotFound(`no operation ${id}`);
    }
    const events = await this.ctx.db
      .getRepository(EventEntity)
      .createQueryBuilder('e')
      .where('e.operation_id = :id AND e.id > :after', { id, after: afterEvent })
      .orderBy('e.id', 'ASC')
      .getMany();
    return { operation: this.operationView(op, pipeline), events };
  }

  /**
   * Records a new operation and its `<kind>.started` event, which carries its
   * details (the commit, what a promotion ships, what a rollback goes back to)
   * for the audit trail and the fronts' messages. `cause` names the push or pull
   * request that started it, when a person did not.
   */
  async createOperation(
    actor: Actor,
    pipeline: Pipeline,
    kind: OperationKind,
    description: string,
    targets: App[],
    options: {
      details?: OperationDetails;
      cause?: string | null;
      /** Checks and writes before the operation is recorded (a lock refuses here). */
      alsoInTransaction?: (m: EntityManager) => Promise<unknown>;
      /** Writes that name the operation (an approval request it ships). */
      andThen?: (m: EntityManager, op: Operation) => Promise<unknown>;
      /** What the operation does: queued with it (in its transaction on Postgres), run by whichever process claims it. */
      work?: OperationWork;
    } = {},
  ): Promise<Operation> {
    const apps = targets.map((t) => t.name);
    const action = kind === 'config' ? configAction(options.details) : kind;
    return this.ctx
      .transaction(async (m) => {
        await options.alsoInTransaction?.(m);
        const op = await m.save(
          OperationEntity,
          m.create(OperationEntity, {
            kind,
            cause: options.cause ?? null,
            pipelineId: pipeline.id,
            status: 'pending',
            actorId: actor.id,
            description,
            targets: targets.map((t) => ({ app: t.name, version: null, status: 'pending' as const })),
            runnerId: this.ctx.runnerId,
          }),
        );
        await this.ctx.emit(m, {
          type: `${kind}.started`,
          pipeline: pipeline.name,
          operationId: op.id,
          actor: actor.name,
          via: actor.via,
          message: `${actor.name}: ${description}`,
          data: { ...options.details, apps },
        });
        await options.andThen?.(m, op);
        if (options.work && this.ctx.queue)
          await this.ctx.queue.add(m, OPERATION_TASK, { operationId: op.id, work: options.work }, operationJobKey(op.id));
        return op;
      })
      .catch(this.ctx.lockRefusal(actor, pipeline.name, action, apps.join(', ')))
      .then((op) => {
        if (options.work) this.launch(op.id, options.work);
        return op;
      });
  }

  /** After the operation was recorded: on Postgres a worker claims its job (this process's is started if need be); here, it runs in process. */
  private launch(operationId: number, work: OperationWork): void {
    if (this.ctx.queue) {
      this.launched.add(operationId);
      this.ctx.queue.start().catch((err: unknown) => log.error({ err }, 'job queue worker did not start'));
      return;
    }
    void this.track(
      operationId,
      this.ctx.jobs.add(() => this.run({ operationId, work })),
    );
  }

  /**
   * Runs an operation's work (its job): the operation turns `running` with
   * this process as its runner, then its outcome (and each target's) is
   * recorded with an event. The job's writes wait out a database outage, so an
   * operation ends with its real outcome once the database is back, and the
   * job never rejects. An operation that is no longer pending (interrupted while
   * it waited) is not run.
   */
  private async run(job: OperationJob): Promise<void> {
    const id = job.operationId;
    const op = await untilDatabaseAnswers({ operation: id, step: 'start' }, () =>
      this.ctx.db.getRepository(OperationEntity).findOneBy({ id }),
    );
    if (!op) return;
    const progress: Progress = async (message, app) => {
      await untilDatabaseAnswers({ operation: id, step: 'progress' }, () =>
        this.ctx.transaction((m) =>
          this.ctx.emit(m, { type: 'operation.progress', operationId: id, app: app ?? null, via: 'system', message }),
        ),
      );
    };
    try {
      await untilDatabaseAnswers({ operation: id, step: 'start' }, () =>
        transition(this.ctx.db.manager, 'operation', id, 'running', { runnerId: this.ctx.runnerId }),
      );
    } catch (err) {
      log.warn({ operation: id, err }, 'operation not run: it is no longer pending');
      return;
    }
    let error: string | null = null;
    let phase: FailedPhase | undefined;
    try {
      if (!this.perform) throw new Error('no operation performer wired');
      await this.perform(op, job.work, progress);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      if (err instanceof PhaseFailed) phase = err.phase;
      log.warn({ operation: id, err }, 'operation failed');
    }
    await untilDatabaseAnswers({ operation: id, step: 'outcome' }, () =>
      this.ctx.transaction(async (m) => {
        const fresh = await m.findOneByOrFail(OperationEntity, { id });
        const targets = fresh.targets.map((t) =>
          t.status === 'pending' ? { ...t, status: 'failed' as const, error: error ?? 'not released', ...(phase ? { phase } : {}) } : t,
        );
        const ok = !error && targets.every((t) => t.status === 'succeeded');
        await transition(m, 'operation', id, ok ? 'succeeded' : 'failed', { targets, error });
        const pipeline = op.pipelineId ? await m.findOneBy(PipelineEntity, { id: op.pipelineId }) : null;
        await this.ctx.emit(m, {
          type: `${op.kind}.${ok ? 'succeeded' : 'failed'}`,
          pipeline: pipeline?.name ?? null,
          operationId: id,
          via: 'system',
          message: `${op.description}: ${ok ? 'done' : 'failed'}${error ? ` (${error.split('\n')[0]})` : ''}`,
          data: { targets },
        });
      }),
    ).catch((err: unknown) => log.error({ operation: id, err }, 'operation outcome not recorded'));
  }

  /** Runs a job in this process, tracked so `outcome` and `idle` can wait for it. */
  private track(operationId: number, running: Promise<void>): Promise<void> {
    const done = running.catch((err: unknown) => log.error({ operation: operationId, err }, 'operation outcome not recorded'));
    this.running.set(operationId, done);
    void done.finally(() => this.running.delete(operationId));
    return done;
  }

  /** A job the queue gave this process (graphile-worker): its payload checked, then run here. */
  private async runQueued(payload: unknown): Promise<void> {
    const job = parseOperationJob(payload);
    await this.track(job.operationId, this.run(job));
  }

  /** Waits for an operation to end, wherever it runs (this process, or another sharing the database), and returns how it ended. */
  async outcome(operationId: number): Promise<Operation> {
    for (;;) {
      await this.running.get(operationId);
      const op = await this.ctx.db.getRepository(OperationEntity).findOneByOrFail({ id: operationId });
      if (op.status !== 'pending' && op.status !== 'running') return op;
      await sleep(OUTCOME_POLL_MS);
    }
  }

  operationView(op: Operation, pipeline: Pipeline | null): OperationView {
    return {
      id: op.id,
      kind: op.kind,
      pipeline: pipeline?.name ?? null,
      status: op.status,
      description: op.description,
      targets: op.targets,
      error: op.error,
      createdAt: op.createdAt.toISOString(),
    };
  }

  /** Waits until the operations this process started or runs have ended, wherever they ran (tests, shutdown). */
  async idle(): Promise<void> {
    for (;;) {
      await this.ctx.jobs.onIdle();
      const waiting = [...this.running.values(), ...[...this.launched].map((id) => this.outcome(id).then(() => this.launched.delete(id)))];
      if (!waiting.length && !this.ctx.jobs.size && !this.ctx.jobs.pending) return;
      await Promise.all(waiting);
    }
  }

  /** Stops claiming operations from the job queue; waits for the ones this process runs. */
  async stopWorker(): Promise<void> {
    await this.ctx.queue?.stop();
    await Promise.all(this.running.values());
  }
}
