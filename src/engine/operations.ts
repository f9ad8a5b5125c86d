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
/** Operations: created with their first event, run as jobs, ended with their outcome. */
export class Operations {
  private readonly finished = new Map<number, Promise<void>>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly authz: Access,
  ) {}

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
        return op;
      })
      .catch(this.ctx.lockRefusal(actor, pipeline.name, action, apps.join(', ')));
  }

  /**
   * Runs an operation's work as a job; its outcome (and each target's) is
   * recorded with an event. The job's writes wait out a database outage, so an
   * operation ends with its real outcome once the database is back, and the
   * job never rejects (nobody awaits it but tests).
   */
  launch(op: Operation, work: (progress: Progress) => Promise<void>): void {
    const progress: Progress = async (message, app) => {
      await untilDatabaseAnswers({ operation: op.id, step: 'progress' }, () =>
        this.ctx.transaction((m) =>
          this.ctx.emit(m, { type: 'operation.progress', operationId: op.id, app: app ?? null, via: 'system', message }),
        ),
      );
    };
    const job = this.ctx.jobs
      .add(async () => {
        let error: string | null = null;
        let phase: FailedPhase | undefined;
        try {
          await untilDatabaseAnswers({ operation: op.id, step: 'start' }, () =>
            transition(this.ctx.db.manager, 'operation', op.id, 'running'),
          );
          await work(progress);
        } catch (err) {
          error = err instanceof Error ? err.message : String(err);
          if (err instanceof PhaseFailed) phase = err.phase;
          log.warn({ operation: op.id, err }, 'operation failed');
        }
        await untilDatabaseAnswers({ operation: op.id, step: 'outcome' }, () =>
          this.ctx.transaction(async (m) => {
            const fresh = await m.findOneByOrFail(OperationEntity, { id: op.id });
            const targets = fresh.targets.map((t) =>
              t.status === 'pending' ? { ...t, status: 'failed' as const, error: error ?? 'not released', ...(phase ? { phase } : {}) } : t,
            );
            const ok = !error && targets.every((t) => t.status === 'succeeded');
            await transition(m, 'operation', op.id, ok ? 'succeeded' : 'failed', { targets, error });
            const pipeline = op.pipelineId ? await m.findOneBy(PipelineEntity, { id: op.pipelineId }) : null;
            await this.ctx.emit(m, {
              type: `${op.kind}.${ok ? 'succeeded' : 'failed'}`,
              pipeline: pipeline?.name ?? null,
              operationId: op.id,
              via: 'system',
              message: `${op.description}: ${ok ? 'done' : 'failed'}${error ? ` (${error.split('\n')[0]})` : ''}`,
              data: { targets },
            });
          }),
        );
      })
      .catch((err: unknown) => log.error({ operation: op.id, err }, 'operation outcome not recorded'));
    this.finished.set(
      op.id,
      job.then(() => undefined),
    );
    void job.finally(() => setTimeout(() => this.finished.delete(op.id), 60_000).unref());
  }

  /** Waits for an operation this process runs, and returns how it ended. */
  async outcome(operationId: number): Promise<Operation> {
    await this.finished.get(operationId);
    return this.ctx.db.getRepository(OperationEntity).findOneByOrFail({ id: operationId });
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

  /** Waits for running jobs (tests, shutdown). */
  async idle(): Promise<void> {
    await this.ctx.jobs.onIdle();
  }
}
