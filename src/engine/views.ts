import type { Operation, OperationKind, OperationTarget, Release, ReviewApp, Stage, TestRun } from '../db/entities.ts';
import type { Commit } from '../source/source.ts';

/*
 * What the engine answers: plain data for the fronts (CLI, Slack, the API),
 * never database rows.
 */

export interface AppView {
  name: string;
  pipeline: string;
  stage: Stage;
  url: string | null;
  release: ReleaseView | null;
}

export interface ReleaseView {
  version: number;
  status: Release['status'];
  description: string;
  slug: string | null;
  commit: string | null;
  createdAt: string;
  current: boolean;
}

export interface OperationView {
  id: number;
  kind: OperationKind;
  pipeline: string | null;
  status: Operation['status'];
  description: string;
  targets: OperationTarget[];
  error: string | null;
  createdAt: string;
}

export interface ReviewAppView {
  pr: number;
  app: string;
  branch: string;
  commit: string;
  status: ReviewApp['status'];
  url: string | null;
  error: string | null;
}

export interface TestRunView {
  number: number;
  commit: string;
  branch: string | null;
  status: TestRun['status'];
  createdAt: string;
  updatedAt: string;
}

export function testRunView(run: TestRun): TestRunView {
  return { number: run.number, commit: run.commit, branch: run.branch, status: run.status, createdAt: run.createdAt.toISOString(), updatedAt: run.updatedAt.toISOString() };
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

export interface DiffView {
  upstream: string;
  downstream: string;
  ahead: number;
  commits: Commit[];
}

export function releaseView(r: Release, currentReleaseId: number | null): ReleaseView {
  return { version: r.version, status: r.status, description: r.description, slug: r.slugId, commit: r.commit, createdAt: r.createdAt.toISOString(), current: r.id === currentReleaseId };
}

/** An event as the fronts see it: the audit trail and an operation's progress. */
export type { FlowEvent as EventView } from '../db/entities.ts';
