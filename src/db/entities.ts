import { EntitySchema, type ValueTransformer } from 'typeorm';

export * from './models.ts';
import type {
  User,
  Subscription,
  StatusMessage,
  Token,
  Pipeline,
  ReviewApp,
  PullRequest,
  TestRun,
  Grant,
  App,
  Slug,
  Build,
  Release,
  Operation,
  FlowEvent,
  Runner,
} from './models.ts';

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
    if (value && typeof value === 'object' && !(value instanceof Date))
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clean(v)]));
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
    optIns: { type: 'text', name: 'opt_ins', array: true, default: () => "'{}'" },
    createdAt,
  },
});

export const StatusMessageEntity = new EntitySchema<StatusMessage>({
  name: 'StatusMessage',
  tableName: 'status_messages',
  columns: {
    id,
    subject: { type: 'text' },
    pipeline: { type: 'text', nullable: true },
    channel: { type: 'text' },
    ts: { type: 'text', nullable: true },
    wanted: { type: 'bigint', default: 1 },
    shown: { type: 'bigint', default: 0 },
    threaded: { type: 'text', array: true, default: () => "'{}'" },
    live: { type: 'boolean', default: false },
    shownHash: { type: 'text', name: 'shown_hash', nullable: true },
    attempts: { type: Number, default: 0 },
    retryAt: { type: 'timestamptz', name: 'retry_at', nullable: true },
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
    defaultAccess: { type: 'text', name: 'default_access', nullable: true },
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

export const PullRequestEntity = new EntitySchema<PullRequest>({
  name: 'PullRequest',
  tableName: 'pull_requests',
  columns: {
    pipelineId: { type: Number, name: 'pipeline_id', primary: true },
    number: { type: Number, primary: true },
    title: { type: 'text', default: '', transformer: outsideText },
    author: { type: 'text', nullable: true, transformer: outsideText },
    branch: { type: 'text', transformer: outsideText },
    headSha: { type: 'text', name: 'head_sha' },
    state: { type: 'text' },
    pushes: { type: Number, default: 0 },
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
    formation: { type: 'jsonb', default: {} },
    lockedBy: { type: Number, name: 'locked_by', nullable: true },
    platform: { type: 'text', default: 'local' },
    namespace: { type: 'text', nullable: true },
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
    cause: { type: 'text', nullable: true },
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
  PullRequestEntity,
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
