/*
 * The rows flowops keeps, as plain types (the schemas that map them to tables are in entities.ts).
 */

/** Permissions, weakest first: each includes the ones before it. */
export const PERMISSIONS = ['view', 'deploy', 'operate', 'manage'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const STAGES = ['development', 'review', 'staging', 'production', 'test'] as const;
export type Stage = (typeof STAGES)[number];

export type ReleaseStatus = 'pending' | 'succeeded' | 'failed';
export type OperationStatus = 'pending' | 'running' | 'succeeded' | 'failed';
export type OperationKind = 'deploy' | 'promote' | 'rollback' | 'config';

export interface User {
  id: number;
  name: string;
  admin: boolean;
  /** The account on a chat front, as `slack:<team>:<user>`; null for API-only users. */
  externalId: string | null;
  createdAt: Date;
}

/** A channel that is a pipeline's feed (Heroku ChatOps' `/h route`). */
export interface Subscription {
  pipelineId: number;
  channel: string;
  events: string[];
  createdAt: Date;
}

/** A chat message that shows one operation and is updated in place until it ends. */
export interface StatusMessage {
  id: number;
  operationId: number;
  channel: string;
  /** The message's id in the channel (Slack's `ts`); null until posted. */
  ts: string | null;
  /** Bumped by every event of the operation; the message is behind while `wanted > shown`. */
  wanted: string;
  shown: string;
  /** Releases (`app@version`) whose release phase output is already in the thread. */
  threaded: string[];
  createdAt: Date;
}

/** An API token; only its sha256 is stored. A user may hold several (one per process's admin token, say). */
export interface Token {
  hash: string;
  userId: number;
  createdAt: Date;
}

export interface Pipeline {
  id: number;
  name: string;
  repo: string;
  branch: string;
  ciEnabled: boolean;
  /** Deploy pushes to `branch` to `stage`; with `waitForCi`, only once the commit's test run is green. */
  autodeploy: { branch: string; stage: Stage; waitForCi: boolean } | null;
  lastTestRun: number;
  reviewApps: ReviewAppSettings | null;
  createdAt: Date;
}

export interface ReviewAppSettings {
  autodeploy: boolean;
  autodestroy: boolean;
  staleDays: number;
  waitForCi: boolean;
}

export type ReviewAppStatus = 'pending' | 'creating' | 'created' | 'deleting' | 'deleted' | 'errored';

/** A temporary app in stage review for one open pull request. */
export interface ReviewApp {
  id: number;
  pipelineId: number;
  pr: number;
  branch: string;
  headSha: string;
  fork: boolean;
  status: ReviewAppStatus;
  appName: string;
  error: string | null;
  lastPushAt: Date;
  createdAt: Date;
  updatedAt: Date;
}

export type TestRunStatus = 'pending' | 'building' | 'running' | 'succeeded' | 'failed' | 'errored' | 'cancelled';

/** A CI run: app.json's test-setup and test scripts on a commit's build. */
export interface TestRun {
  id: number;
  pipelineId: number;
  number: number;
  commit: string;
  branch: string | null;
  status: TestRunStatus;
  output: string;
  runnerId: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface Grant {
  pipelineId: number;
  userId: number;
  permission: Permission;
}

export interface App {
  id: number;
  name: string;
  pipelineId: number;
  stage: Stage;
  lastVersion: number;
  currentReleaseId: number | null;
  config: Record<string, string>;
  lockedBy: number | null;
  createdAt: Date;
}

/** Process types from a Procfile: `{ web: 'node index.js', release: '...' }`. */
export type Procfile = Record<string, string>;

export interface Slug {
  id: string;
  size: string;
  commit: string;
  procfile: Procfile;
  createdAt: Date;
}

export interface Build {
  id: number;
  pipelineId: number;
  commit: string;
  status: ReleaseStatus;
  output: string;
  slugId: string | null;
  operationId: number | null;
  createdAt: Date;
}

export interface Release {
  id: number;
  appId: number;
  version: number;
  slugId: string | null;
  commit: string | null;
  config: Record<string, string>;
  description: string;
  status: ReleaseStatus;
  output: string;
  operationId: number | null;
  createdAt: Date;
  updatedAt: Date;
}

/** One target of an operation: an app, the release it got, and how it went. */
export interface OperationTarget {
  app: string;
  version: number | null;
  status: ReleaseStatus;
  error?: string;
}

export interface Operation {
  id: number;
  kind: OperationKind;
  pipelineId: number | null;
  status: OperationStatus;
  actorId: number;
  description: string;
  targets: OperationTarget[];
  error: string | null;
  runnerId: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface FlowEvent {
  id: string;
  type: string;
  pipeline: string | null;
  app: string | null;
  operationId: number | null;
  actor: string | null;
  via: string;
  message: string;
  data: Record<string, unknown>;
  createdAt: Date;
}

export interface Runner {
  id: string;
  hostname: string;
  pid: number;
  heartbeatAt: Date;
}
