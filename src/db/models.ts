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
  /** What the feed asked for beyond its events (`nudges`). */
  optIns: string[];
  createdAt: Date;
}

/** A chat message that follows one subject (an operation, a pull request, a push) and is updated in place. */
export interface StatusMessage {
  id: number;
  /** `op:<id>`, `pr:<pipeline id>:<number>` or `push:<pipeline id>:<sha>` (src/engine/subjects.ts). */
  subject: string;
  /** The pipeline the subject belongs to (null once destroyed). */
  pipeline: string | null;
  channel: string;
  /** The message's id in the channel (Slack's `ts`); null until posted. */
  ts: string | null;
  /** Bumped by every event of the operation; the message is behind while `wanted > shown`. */
  wanted: string;
  shown: string;
  /** Thread replies already posted (a failure's, by key), so none is posted twice. */
  threaded: string[];
  /** The message shows buttons: it is redrawn when something newer happens in its pipeline. */
  live: boolean;
  /** A hash of what the message shows, so a redraw that changes nothing is not sent. */
  shownHash: string | null;
  /** Failed deliveries in a row, and when to try again (null: at once). */
  attempts: number;
  retryAt: Date | null;
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
  /** What every member of the Slack workspace holds here at least (`access:default`); null: nothing. */
  defaultAccess: 'view' | 'deploy' | null;
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

/** A pull request as GitHub last described it, for the one message that follows it. */
export interface PullRequest {
  pipelineId: number;
  number: number;
  title: string;
  author: string | null;
  branch: string;
  headSha: string;
  state: 'open' | 'merged' | 'closed';
  /** Pushes to its branch since it was opened. */
  pushes: number;
  updatedAt: Date;
}

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
  /** Dynos per process type, as `ps:scale` set them; a type missing runs one. */
  formation: Record<string, number>;
  lockedBy: number | null;
  /** Where it runs: the embedded platform on the flowops machine, or Kubernetes (`apps:create --platform`). */
  platform: PlatformKind;
  /** Its Kubernetes namespace (kubernetes only). */
  namespace: string | null;
  createdAt: Date;
}

export type PlatformKind = 'local' | 'kubernetes';
export const PLATFORM_KINDS: readonly PlatformKind[] = ['local', 'kubernetes'];

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

/** Where a release failed: its build, its release phase, or starting its processes. */
export type FailedPhase = 'build' | 'release' | 'start';

/** One target of an operation: an app, the release it got, and how it went. */
export interface OperationTarget {
  app: string;
  version: number | null;
  status: ReleaseStatus;
  error?: string;
  phase?: FailedPhase;
}

export interface Operation {
  id: number;
  kind: OperationKind;
  /** What started it when no person did directly: a push (`push:<pipeline id>:<sha>`) or a pull request (`pr:<pipeline id>:<n>`). */
  cause: string | null;
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
