import { EntitySchema, type ValueTransformer } from 'typeorm';

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


const id = { type: Number, primary: true, generated: 'increment' } as const;
const createdAt = { type: 'timestamptz', name: 'created_at', createDate: true } as const;

/**
 * For text flowops stores but did not write: build, release phase and test
 * output, errors, event messages quoting PR titles. Postgres cannot hold NUL in
 * text, and a repository's code can print one; it is stored as U+FFFD instead
 * of failing the write (which left a release pending for ever).
 */
const outsideText: ValueTransformer = {
  to: (value: unknown) => (typeof value === 'string' && value.includes('\0') ? value.replaceAll('\0', '\uFFFD') : value),
  from: (value: unknown) => value,
};

/** The same for JSON that quotes outside text (an operation's per-target errors, event data). */
const outsideJson: ValueTransformer = {
  to: function clean(value: unknown): unknown {
    if (typeof value === 'string') return outsideText.to(value);
    if (Array.isArray(value)) return value.map(clean);
    if (value && typeof value === 'object' && !(value instanceof Date)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clean(v)]));
    return value;
  },
  from: (value: unknown) => value,
};

export const UserEntity = new EntitySchema<User>({
  name: 'User',
  tableName: 'users',
  columns: {
    id,
    name: { type: 'text', unique: true },
    admin: { type: 'boolean', default: false },
    externalId: { type: 'text', name: 'external_id', nullable: true },
    createdAt,
  },
});

export const SubscriptionEntity = new EntitySchema<Subscription>({
  name: 'Subscription',
  tableName: 'subscriptions',
  columns: {
    pipelineId: { type: Number, name: 'pipeline_id', primary: true },
    channel: { type: 'text', primary: true },
    events: { type: 'text', array: true },
    createdAt,
  },
});

export const StatusMessageEntity = new EntitySchema<StatusMessage>({
  name: 'StatusMessage',
  tableName: 'status_messages',
  columns: {
    id,
    operationId: { type: Number, name: 'operation_id' },
    channel: { type: 'text' },
    ts: { type: 'text', nullable: true },
    wanted: { type: 'bigint', default: 1 },
    shown: { type: 'bigint', default: 0 },
    threaded: { type: 'text', array: true, default: () => "'{}'" },
    createdAt,
  },
});

export const TokenEntity = new EntitySchema<Token>({
  name: 'Token',
  tableName: 'tokens',
  columns: {
    hash: { type: 'text', primary: true },
    userId: { type: Number, name: 'user_id' },
    createdAt,
  },
});

export const PipelineEntity = new EntitySchema<Pipeline>({
  name: 'Pipeline',
  tableName: 'pipelines',
  columns: {
    id,
    name: { type: 'text', unique: true },
    repo: { type: 'text' },
    branch: { type: 'text' },
    ciEnabled: { type: 'boolean', name: 'ci_enabled', default: false },
    autodeploy: { type: 'jsonb', nullable: true },
    lastTestRun: { type: Number, name: 'last_test_run', default: 0 },
    reviewApps: { type: 'jsonb', name: 'review_apps', nullable: true },
    createdAt,
  },
});

export const ReviewAppEntity = new EntitySchema<ReviewApp>({
  name: 'ReviewApp',
  tableName: 'review_apps',
  columns: {
    id,
    pipelineId: { type: Number, name: 'pipeline_id' },
    pr: { type: Number },
    branch: { type: 'text' },
    headSha: { type: 'text', name: 'head_sha' },
    fork: { type: 'boolean', default: false },
    status: { type: 'text' },
    appName: { type: 'text', name: 'app_name' },
    error: { type: 'text', nullable: true, transformer: outsideText },
    lastPushAt: { type: 'timestamptz', name: 'last_push_at' },
    createdAt,
    updatedAt: { type: 'timestamptz', name: 'updated_at', updateDate: true },
  },
});

export const TestRunEntity = new EntitySchema<TestRun>({
  name: 'TestRun',
  tableName: 'test_runs',
  columns: {
    id,
    pipelineId: { type: Number, name: 'pipeline_id' },
    number: { type: Number },
    commit: { type: 'text' },
    branch: { type: 'text', nullable: true },
    status: { type: 'text' },
    output: { type: 'text', default: '', transformer: outsideText },
    runnerId: { type: 'text', name: 'runner_id', nullable: true },
    createdAt,
    updatedAt: { type: 'timestamptz', name: 'updated_at', updateDate: true },
  },
});

export const GrantEntity = new EntitySchema<Grant>({
  name: 'Grant',
  tableName: 'grants',
  columns: {
    pipelineId: { type: Number, name: 'pipeline_id', primary: true },
    userId: { type: Number, name: 'user_id', primary: true },
    permission: { type: 'text' },
  },
});

export const AppEntity = new EntitySchema<App>({
  name: 'App',
  tableName: 'apps',
  columns: {
    id,
    name: { type: 'text', unique: true },
    pipelineId: { type: Number, name: 'pipeline_id' },
    stage: { type: 'text' },
    lastVersion: { type: Number, name: 'last_version', default: 0 },
    currentReleaseId: { type: Number, name: 'current_release_id', nullable: true },
    config: { type: 'jsonb', default: {} },
    lockedBy: { type: Number, name: 'locked_by', nullable: true },
    createdAt,
  },
});

export const SlugEntity = new EntitySchema<Slug>({
  name: 'Slug',
  tableName: 'slugs',
  columns: {
    id: { type: 'text', primary: true },
    size: { type: 'bigint' },
    commit: { type: 'text' },
    procfile: { type: 'jsonb' },
    createdAt,
  },
});

export const BuildEntity = new EntitySchema<Build>({
  name: 'Build',
  tableName: 'builds',
  columns: {
    id,
    pipelineId: { type: Number, name: 'pipeline_id' },
    commit: { type: 'text' },
    status: { type: 'text' },
    output: { type: 'text', default: '', transformer: outsideText },
    slugId: { type: 'text', name: 'slug_id', nullable: true },
    operationId: { type: Number, name: 'operation_id', nullable: true },
    createdAt,
  },
});

export const ReleaseEntity = new EntitySchema<Release>({
  name: 'Release',
  tableName: 'releases',
  columns: {
    id,
    appId: { type: Number, name: 'app_id' },
    version: { type: Number },
    slugId: { type: 'text', name: 'slug_id', nullable: true },
    commit: { type: 'text', nullable: true },
    config: { type: 'jsonb' },
    description: { type: 'text', transformer: outsideText },
    status: { type: 'text' },
    output: { type: 'text', default: '', transformer: outsideText },
    operationId: { type: Number, name: 'operation_id', nullable: true },
    createdAt,
    updatedAt: { type: 'timestamptz', name: 'updated_at', updateDate: true },
  },
});

export const OperationEntity = new EntitySchema<Operation>({
  name: 'Operation',
  tableName: 'operations',
  columns: {
    id,
    kind: { type: 'text' },
    pipelineId: { type: Number, name: 'pipeline_id', nullable: true },
    status: { type: 'text' },
    actorId: { type: Number, name: 'actor_id' },
    description: { type: 'text', transformer: outsideText },
    targets: { type: 'jsonb', default: [], transformer: outsideJson },
    error: { type: 'text', nullable: true, transformer: outsideText },
    runnerId: { type: 'text', name: 'runner_id' },
    createdAt,
    updatedAt: { type: 'timestamptz', name: 'updated_at', updateDate: true },
  },
});

export const EventEntity = new EntitySchema<FlowEvent>({
  name: 'Event',
  tableName: 'events',
  columns: {
    id: { type: 'bigint', primary: true, generated: 'increment' },
    type: { type: 'text' },
    pipeline: { type: 'text', nullable: true },
    app: { type: 'text', nullable: true },
    operationId: { type: Number, name: 'operation_id', nullable: true },
    actor: { type: 'text', nullable: true },
    via: { type: 'text' },
    message: { type: 'text', transformer: outsideText },
    data: { type: 'jsonb', default: {}, transformer: outsideJson },
    createdAt,
  },
});

export const RunnerEntity = new EntitySchema<Runner>({
  name: 'Runner',
  tableName: 'runners',
  columns: {
    id: { type: 'text', primary: true },
    hostname: { type: 'text' },
    pid: { type: Number },
    heartbeatAt: { type: 'timestamptz', name: 'heartbeat_at' },
  },
});


export const entities = [
  UserEntity,
  ReviewAppEntity,
  TestRunEntity,
  SubscriptionEntity,
  StatusMessageEntity,
  TokenEntity,
  PipelineEntity,
  GrantEntity,
  AppEntity,
  SlugEntity,
  BuildEntity,
  ReleaseEntity,
  OperationEntity,
  EventEntity,
  RunnerEntity,
];
