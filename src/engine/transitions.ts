import type { EntityManager, EntityTarget, ObjectLiteral } from 'typeorm';
import {
  BuildEntity,
  OperationEntity,
  ReleaseEntity,
  ReviewAppEntity,
  TestRunEntity,
  type OperationStatus,
  type ReleaseStatus,
  type ReviewAppStatus,
  type TestRunStatus,
} from '../db/entities.ts';
import { Conflict } from '../errors.ts';

/** What each kind of record may be, and so what a move names. */
interface Statuses {
  operation: OperationStatus;
  release: ReleaseStatus;
  build: ReleaseStatus;
  testRun: TestRunStatus;
  reviewApp: ReviewAppStatus;
}
export type TransitionKind = keyof Statuses;

/**
 * Every status change the engine makes, per kind (Shipit's `Task`): from a
 * status, the statuses it may move to. A move not listed is a bug or a race
 * lost, and is refused. A move to itself is listed where flowops re-announces
 * a status on purpose (a review app redeployed by a push is `created` again).
 */
export const TRANSITIONS: { [K in TransitionKind]: Record<Statuses[K], readonly Statuses[K][]> } = {
  operation: {
    // pending → failed: the job could not start, or its runner died before it did (interrupted).
    pending: ['running', 'failed'],
    running: ['succeeded', 'failed'],
    succeeded: [],
    failed: [],
  },
  release: {
    pending: ['succeeded', 'failed'],
    succeeded: [],
    failed: [],
  },
  build: {
    pending: ['succeeded', 'failed'],
    succeeded: [],
    failed: [],
  },
  testRun: {
    pending: ['building', 'errored', 'cancelled'],
    building: ['running', 'errored', 'cancelled'],
    running: ['succeeded', 'failed', 'errored', 'cancelled'],
    succeeded: [],
    failed: [],
    errored: [],
    cancelled: [],
  },
  reviewApp: {
    pending: ['creating', 'errored', 'deleting'],
    // creating → creating: GitHub redelivered the `opened` event while the first one was at work.
    creating: ['creating', 'created', 'errored', 'deleting'],
    // created → creating: the app was destroyed by hand (`apps:destroy`) and the next push makes it again.
    created: ['created', 'creating', 'errored', 'deleting'],
    errored: ['errored', 'creating', 'created', 'deleting'],
    deleting: ['deleting', 'deleted'],
    // deleted → pending: the pull request was reopened; deleted → creating/errored: `reviewapps:create` on a closed one.
    deleted: ['pending', 'creating', 'errored'],
  },
};

const ENTITIES: Record<TransitionKind, EntityTarget<ObjectLiteral>> = {
  operation: OperationEntity,
  release: ReleaseEntity,
  build: BuildEntity,
  testRun: TestRunEntity,
  reviewApp: ReviewAppEntity,
};

/** A status change the table does not declare: nothing was written. */
export class IllegalTransition extends Conflict {
  constructor(
    readonly kind: TransitionKind,
    readonly from: string | null,
    readonly to: string,
    id?: number,
  ) {
    super(
      from === null
        ? `${kind} ${id ?? ''} does not exist, so it cannot become ${to}`
        : `a ${kind}${id === undefined ? '' : ` (${id})`} cannot go from ${from} to ${to}`,
    );
  }
}

export function canTransition<K extends TransitionKind>(kind: K, from: Statuses[K], to: Statuses[K]): boolean {
  return (TRANSITIONS[kind][from] as readonly string[]).includes(to);
}

/** Throws IllegalTransition unless the table declares `from → to` for `kind`. */
export function assertTransition<K extends TransitionKind>(kind: K, from: Statuses[K], to: Statuses[K]): void {
  if (!canTransition(kind, from, to)) throw new IllegalTransition(kind, from, to);
}

/** The statuses from which `to` may be reached. */
export function sourcesOf<K extends TransitionKind>(kind: K, to: Statuses[K]): Statuses[K][] {
  return (Object.keys(TRANSITIONS[kind]) as Statuses[K][]).filter((from) => canTransition(kind, from, to));
}

type Patch = Record<string, unknown>;

/**
 * The one way a record's status changes: moves record `id` of `kind` to `to`,
 * with the other columns of `patch`, in one conditional UPDATE (so a concurrent
 * move cannot slip in between a check and the write). Throws IllegalTransition,
 * and writes nothing, when the record's status has no declared move to `to`.
 * `patch` values may be SQL expressions (`() => "output || 'x'"`), as in TypeORM.
 */
export async function transition<K extends TransitionKind>(
  m: EntityManager,
  kind: K,
  id: number,
  to: Statuses[K],
  patch: Patch = {},
): Promise<void> {
  const from = sourcesOf(kind, to);
  const result = from.length
    ? await m
        .createQueryBuilder()
        .update(ENTITIES[kind])
        .set({ ...patch, status: to })
        .where('id = :id AND status IN (:...from)', { id, from })
        .execute()
    : { affected: 0 };
  if (result.affected) return;
  const row = await m.findOne(ENTITIES[kind], { where: { id }, select: { status: true } });
  throw new IllegalTransition(kind, (row?.status as string | undefined) ?? null, to, id);
}

/**
 * Moves every record of `kind` matching `where` (SQL with named parameters) that is
 * `from` now to `to`: a sweep, such as failing an interrupted operation's pending
 * releases. The move itself must be declared. Returns how many records moved.
 */
export async function transitionAll<K extends TransitionKind>(
  m: EntityManager,
  kind: K,
  where: string,
  parameters: Patch,
  from: Statuses[K],
  to: Statuses[K],
  patch: Patch = {},
): Promise<number> {
  assertTransition(kind, from, to);
  const result = await m
    .createQueryBuilder()
    .update(ENTITIES[kind])
    .set({ ...patch, status: to })
    .where(`(${where}) AND status = :transitionFrom`, { ...parameters, transitionFrom: from })
    .execute();
  return result.affected ?? 0;
}
