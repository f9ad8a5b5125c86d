import { describe, expect, it } from 'vitest';
import {
  IllegalTransition,
  TRANSITIONS,
  assertTransition,
  canTransition,
  sourcesOf,
  type TransitionKind,
} from '../src/engine/transitions.ts';

type Move = [TransitionKind, string, string];
const move = (kind: TransitionKind, from: string, to: string): Move => [kind, from, to];
const check = (kind: TransitionKind, from: string, to: string) => assertTransition(kind, from as never, to as never);

describe('status transitions', () => {
  it.each<Move>([
    move('operation', 'pending', 'running'),
    move('operation', 'running', 'succeeded'),
    move('operation', 'running', 'failed'),
    move('operation', 'pending', 'failed'),
    move('release', 'pending', 'succeeded'),
    move('release', 'pending', 'failed'),
    move('build', 'pending', 'succeeded'),
    move('build', 'pending', 'failed'),
    move('testRun', 'pending', 'building'),
    move('testRun', 'building', 'running'),
    move('testRun', 'running', 'succeeded'),
    move('testRun', 'running', 'failed'),
    move('testRun', 'running', 'errored'),
    move('testRun', 'pending', 'errored'),
    move('testRun', 'building', 'errored'),
    move('testRun', 'pending', 'cancelled'),
    move('testRun', 'building', 'cancelled'),
    move('testRun', 'running', 'cancelled'),
    move('reviewApp', 'pending', 'creating'),
    move('reviewApp', 'creating', 'created'),
    move('reviewApp', 'creating', 'errored'),
    move('reviewApp', 'created', 'created'),
    move('reviewApp', 'errored', 'created'),
    move('reviewApp', 'created', 'deleting'),
    move('reviewApp', 'errored', 'deleting'),
    move('reviewApp', 'deleting', 'deleted'),
    move('reviewApp', 'deleted', 'pending'),
  ])('lets a %s go from %s to %s', (kind, from, to) => {
    expect(() => check(kind, from, to)).not.toThrow();
  });

  it.each<Move>([
    move('operation', 'pending', 'succeeded'),
    move('operation', 'succeeded', 'failed'),
    move('operation', 'failed', 'succeeded'),
    move('operation', 'failed', 'running'),
    move('operation', 'running', 'pending'),
    move('release', 'succeeded', 'failed'),
    move('release', 'failed', 'succeeded'),
    move('release', 'failed', 'pending'),
    move('build', 'failed', 'succeeded'),
    move('testRun', 'pending', 'running'),
    move('testRun', 'pending', 'succeeded'),
    move('testRun', 'cancelled', 'errored'),
    move('testRun', 'cancelled', 'succeeded'),
    move('testRun', 'succeeded', 'errored'),
    move('testRun', 'failed', 'cancelled'),
    move('testRun', 'running', 'building'),
    move('reviewApp', 'deleted', 'created'),
    move('reviewApp', 'deleted', 'deleting'),
    move('reviewApp', 'deleting', 'created'),
    move('reviewApp', 'deleting', 'errored'),
    move('reviewApp', 'pending', 'deleted'),
    move('reviewApp', 'created', 'deleted'),
    move('reviewApp', 'pending', 'created'),
  ])('refuses to let a %s go from %s to %s', (kind, from, to) => {
    expect(() => check(kind, from, to)).toThrow(IllegalTransition);
    expect(() => check(kind, from, to)).toThrow(`cannot go from ${from} to ${to}`);
  });

  it('ends every kind in statuses nothing leaves, but a deleted review app (a reopened pull request)', () => {
    const terminal = Object.entries(TRANSITIONS).flatMap(([kind, moves]) =>
      Object.entries(moves)
        .filter(([, to]) => !to.length)
        .map(([from]) => `${kind}.${from}`),
    );

    expect(terminal.sort()).toEqual(
      [
        'build.failed',
        'build.succeeded',
        'operation.failed',
        'operation.succeeded',
        'release.failed',
        'release.succeeded',
        'testRun.cancelled',
        'testRun.errored',
        'testRun.failed',
        'testRun.succeeded',
      ].sort(),
    );
  });

  it('names only statuses the kind has, and reaches each from another, but where a record starts (pending)', () => {
    for (const [kind, moves] of Object.entries(TRANSITIONS) as [TransitionKind, Record<string, readonly string[]>][]) {
      const statuses = Object.keys(moves);
      for (const to of Object.values(moves).flat()) expect(statuses).toContain(to);
      const unreachable = statuses.filter((s) => !sourcesOf(kind, s as never).length);
      expect(unreachable).toEqual(kind === 'reviewApp' ? [] : ['pending']);
      expect(canTransition(kind, 'pending' as never, 'pending' as never)).toBe(false);
    }
  });
});
