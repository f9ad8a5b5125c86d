import type { Release, Stage, TestRun } from '../db/entities.ts';
import type { AppView, DiffView, OperationView, ReleaseView, ReviewAppView, TestRunView } from '../api/types.ts';

export type { AppView, DiffView, OperationView, ReleaseView, ReviewAppView, TestRunView };

/*
 * What the engine answers: plain data for the fronts (CLI, Slack, the API),
 * never database rows.
 */

export function testRunView(run: TestRun): TestRunView {
  return {
    number: run.number,
    commit: run.commit,
    branch: run.branch,
    status: run.status,
    createdAt: run.createdAt.toISOString(),
    updatedAt: run.updatedAt.toISOString(),
  };
}

export interface ReportTarget {
  app: string;
  stage: Stage | 'destroyed';
  version: number | null;
  commit: string | null;
  status: Release['status'];
  releasing: boolean;
  error?: string;
  /** The release's release phase output (and boot errors). */
  output: string;
  /** Whether this release is still the app's current one. */
  current: boolean;
}

export interface OperationReport {
  operation: OperationView;
  actor: string | null;
  via: string;
  targets: ReportTarget[];
}

export function releaseView(r: Release, currentReleaseId: number | null): ReleaseView {
  return {
    version: r.version,
    status: r.status,
    description: r.description,
    slug: r.slugId,
    commit: r.commit,
    createdAt: r.createdAt.toISOString(),
    current: r.id === currentReleaseId,
  };
}

/** An event as the fronts see it: the audit trail and an operation's progress. */
export type { FlowEvent as EventView } from '../db/entities.ts';
