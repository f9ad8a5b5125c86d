/*
 * The JSON that `/api` answers, as the CLI reads it: a leaf module that imports
 * nothing. The engine's views (src/engine/views.ts) must be assignable to these
 * shapes; src/commands/execute.ts is where the compiler checks that they are.
 * Dates are ISO 8601 strings here, as JSON carries them.
 */

export type Stage = 'development' | 'review' | 'staging' | 'production' | 'test';
export type Permission = 'view' | 'deploy' | 'operate' | 'manage';
export type ReleaseStatus = 'pending' | 'succeeded' | 'failed';
export type OperationStatus = 'pending' | 'running' | 'succeeded' | 'failed';
export type OperationKind = 'deploy' | 'promote' | 'rollback' | 'config';
export type ReviewAppStatus = 'pending' | 'creating' | 'created' | 'deleting' | 'deleted' | 'errored';
export type TestRunStatus = 'pending' | 'building' | 'running' | 'succeeded' | 'failed' | 'errored' | 'cancelled';
/** How the server runs repository code: `none` means unsandboxed, which `pipelines:info` warns about. */
export type Isolation = 'bubblewrap' | 'none';

export interface ReleaseView {
  version: number;
  status: ReleaseStatus;
  description: string;
  slug: string | null;
  commit: string | null;
  createdAt: string;
  current: boolean;
}

export interface AppView {
  name: string;
  pipeline: string;
  stage: Stage;
  /** Where it runs: `local` (the flowops machine) or `kubernetes`. */
  platform: 'local' | 'kubernetes';
  /** Its namespace, on Kubernetes. */
  namespace?: string;
  url: string | null;
  release: ReleaseView | null;
  /** The deploy lock on the app (its own, or its stage's), when there is one. */
  lock?: LockView | null;
  /** Its dynos that crashed and wait to be restarted (`web.1`), where flowops looked (pipelines:info, apps:info). */
  crashed?: string[];
}

export type DynoState = 'starting' | 'up' | 'crashed' | 'idle';

/** One dyno of an app, as `ps` shows it. */
export interface DynoView {
  /** `web.1` */
  name: string;
  type: string;
  state: DynoState;
  /** When it entered its state. */
  since: string;
  command: string;
  /** The release it runs. */
  version: number;
  /** The exit status of a crashed dyno. */
  exitCode: number | null;
}

/** `ps`: an app's formation and dynos. */
export interface ProcessesView {
  app: string;
  version: number | null;
  /** Dynos per process type. */
  formation: Record<string, number>;
  /** Each process type's command, from the Procfile. */
  commands: Record<string, string>;
  dynos: DynoView[];
  url: string | null;
}

/** `logs`: lines in Heroku's format, oldest first, and the cursor to ask for what comes after. */
export interface LogsView {
  app: string;
  lines: string[];
  next: number;
}

/** A user as `users` lists them: their Slack account and CLI token, and the Slack user a link merged into them. */
export interface UserSummary {
  name: string;
  admin: boolean;
  /** The chat account this user is (`slack:<team>:<user>`), if any. */
  slack: string | null;
  /** Whether the user has a CLI token. */
  cli: boolean;
  /** The Slack user that was merged into this one by `login`, if any. */
  linkedFrom: string | null;
}

/** A deploy lock: an app or a pipeline's stage that only its holder may ship to until it ends. */
export interface LockView {
  id: number;
  /** What it locks, as typed: an app (`shop-staging`) or a stage (`shop:staging`). */
  target: string;
  pipeline: string;
  app: string | null;
  stage: Stage | null;
  holder: string;
  reason: string | null;
  since: string;
  until: string;
}

/** One target of an operation: an app, the release it got, and how it went. */
export interface OperationTargetView {
  app: string;
  version: number | null;
  status: ReleaseStatus;
  error?: string;
}

export interface OperationView {
  id: number;
  kind: OperationKind;
  pipeline: string | null;
  status: OperationStatus;
  description: string;
  targets: OperationTargetView[];
  error: string | null;
  createdAt: string;
}

export type ApprovalStatus = 'pending' | 'approved' | 'shipped' | 'rejected' | 'withdrawn' | 'expired' | 'failed';

/**
 * A deploy, promotion or rollback into a stage that needs approvals, as asked
 * for: pinned to what it ships, until enough people approve it (it then runs
 * as `operation`), or it is rejected, withdrawn, expires or fails to start.
 */
export interface ApprovalView {
  kind: 'approval';
  id: number;
  pipeline: string;
  stage: Stage;
  /** What it runs once approved. */
  action: 'deploy' | 'promote' | 'rollback';
  description: string;
  targets: string[];
  requester: string;
  status: ApprovalStatus;
  /** How many distinct approvals it needs. */
  needed: number;
  approvals: { user: string; at: string }[];
  /** Who rejected or withdrew it (or `flowops` when it expired or could not start). */
  decidedBy: string | null;
  /** The rejection's reason, or why it could not start. */
  reason: string | null;
  /** The operation it became once approved. */
  operation: number | null;
  createdAt: string;
  expiresAt: string;
}

/** A stage of a pipeline where deploys, promotions and rollbacks need approvals. */
export interface ApprovalRuleView {
  pipeline: string;
  stage: Stage;
  /** 0: the stage no longer needs approvals. */
  approvers: number;
}

export interface ReviewAppView {
  pr: number;
  app: string;
  branch: string;
  commit: string;
  status: ReviewAppStatus;
  url: string | null;
  error: string | null;
}

export interface TestRunView {
  number: number;
  commit: string;
  branch: string | null;
  status: TestRunStatus;
  createdAt: string;
  updatedAt: string;
}

export interface CommitView {
  sha: string;
  date: string;
  author: string;
  message: string;
}

export interface DiffView {
  upstream: string;
  downstream: string;
  ahead: number;
  commits: CommitView[];
}

/** One event of an operation's progress (`release.started`, `operation.progress`, ...). */
export interface EventView {
  /** A Postgres bigint, so a string: the `after` of the next poll. */
  id: string;
  type: string;
  pipeline: string | null;
  app: string | null;
  operationId: number | null;
  actor: string | null;
  via: string;
  message: string;
  data: Record<string, unknown>;
  createdAt: string;
}

/** One record of a pipeline's audit trail: who did what, when, from which front, and how it ended. */
export interface AuditRecordView {
  /** A Postgres bigint, so a string; records are listed in this order. */
  id: string;
  at: string;
  pipeline: string;
  /** A flowops user, a GitHub pusher, or `flowops` itself (expiries, sweeps). */
  actor: string;
  /** The front it came through: `cli`, `slack`, `github`, `system`. */
  via: string;
  /** The command it was (`deploy`, `config:set`, `access:add`, `lock:expire`…). */
  action: string;
  /** What it acted on: apps, a user, a channel, `request 3`… */
  target: string;
  outcome: 'done' | 'running' | 'failed' | 'refused' | 'pending approval' | 'approved' | 'rejected' | 'withdrawn' | 'expired';
  /** A reason, a permission, config var names (never values), why it failed or was refused. */
  detail: string | null;
  /**
   * How many times it happened: more than 1 only for a refusal tried again within the hour
   * (or past 10 refusals of one person in an hour, any refusal); `lastAt` is the latest.
   */
  repeats: number;
  lastAt: string | null;
  /** The operation it started, or the approval request it filed. */
  operation: number | null;
  request: number | null;
}

/** `audit`: a pipeline's records since a time (oldest first), at most the newest 500; `omitted` earlier ones matched too. */
export interface AuditView {
  pipeline: string;
  since: string;
  user: string | null;
  records: AuditRecordView[];
  omitted: number;
}

export interface PipelineSummary {
  name: string;
  repo: string;
  branch: string;
  /** How many apps the pipeline has. */
  apps: number;
}

export interface PipelineRef {
  name: string;
  repo: string;
  branch: string;
}

export interface PipelineInfo extends PipelineRef {
  /** By stage, development first, then by name. */
  apps: AppView[];
  sandbox: Isolation;
}

export interface ReleaseOutput {
  version: number;
  status: ReleaseStatus;
  description: string;
  output: string;
}

export interface Grant {
  user: string;
  permission: Permission;
}

export interface AutodeploySetting {
  branch: string;
  stage: Stage;
  waitForCi: boolean;
}

export interface ReviewAppSettings {
  autodeploy: boolean;
  autodestroy: boolean;
  staleDays: number;
  waitForCi: boolean;
}

export interface Subscription {
  pipeline: string;
  channel: string;
  events: string[];
  /** What the feed asked for beyond its events: `nudges`. */
  optIns: string[];
}

/**
 * What each command answers, by name. A command listed in
 * OperationCommandName answers with an operation under way; every other one
 * with data to show.
 */
export interface CommandResults {
  pipelines: PipelineSummary[];
  'pipelines:create': PipelineRef;
  'pipelines:info': PipelineInfo;
  'pipelines:connect': PipelineRef;
  'pipelines:destroy': { name: string; apps: string[] };
  'apps:create': AppView;
  'apps:move': AppView;
  'apps:destroy': { name: string };
  deploy: OperationView;
  promote: OperationView;
  releases: ReleaseView[];
  'releases:output': ReleaseOutput;
  rollback: OperationView;
  /** Config vars by name. */
  config: Record<string, string>;
  'config:set': OperationView;
  'config:unset': OperationView;
  diff: DiffView[];
  logs: LogsView;
  ps: ProcessesView;
  'ps:scale': ProcessesView;
  'ps:restart': { app: string; dynos: string[] };
  'ps:stop': { app: string; dynos: string[] };
  apps: AppView[];
  'apps:info': AppView;
  'config:get': { app: string; key: string; value: string | null };
  open: { app: string; url: string | null };
  access: Grant[];
  'access:add': Grant;
  /** `floor`: what the user still holds through `access:default` (a Slack user). */
  'access:remove': { user: string; floor?: 'view' | 'deploy' | null };
  'access:default': { pipeline: string; permission: 'none' | 'view' | 'deploy' };
  /** The token is shown once, to whoever created the user. */
  'users:create': { name: string; token: string };
  ci: TestRunView[];
  'ci:info': TestRunView & { output: string };
  'ci:rerun': TestRunView;
  'ci:cancel': TestRunView;
  'ci:enable': { pipeline: string; ci: boolean };
  'ci:disable': { pipeline: string; ci: boolean };
  'autodeploy:enable': { pipeline: string; autodeploy: AutodeploySetting | null };
  'autodeploy:disable': { pipeline: string; autodeploy: AutodeploySetting | null };
  reviewapps: ReviewAppView[];
  'reviewapps:enable': { pipeline: string; reviewApps: ReviewAppSettings | null };
  'reviewapps:disable': { pipeline: string; reviewApps: ReviewAppSettings | null };
  'reviewapps:create': ReviewAppView;
  'reviewapps:destroy': ReviewAppView;
  /** In Slack, the code to type in the CLI; in the CLI, the link made. */
  login: { code: string; expires: string } | { user: string; slack: string };
  users: UserSummary[];
  'users:unlink': { user: string; slack: string };
  lock: LockView;
  unlock: LockView;
  'approvals:require': ApprovalRuleView;
  'approvals:disable': ApprovalRuleView;
  approvals: { rules: ApprovalRuleView[]; requests: ApprovalView[] };
  approve: ApprovalView;
  reject: ApprovalView;
  locks: LockView[];
  subscribe: Subscription;
  /** With `stopped` when only those opt-ins were stopped (the feed stays). */
  unsubscribe: Omit<Subscription, 'events' | 'optIns'> & { stopped?: string[] };
  subscriptions: Omit<Subscription, 'channel'>[];
  audit: AuditView;
  metrics: MetricsView;
  /** The help text. */
  help: string;
}

export type CommandName = keyof CommandResults;

/** The commands that start a long operation: they answer at once, and progress arrives as events. */
export type OperationCommandName = 'deploy' | 'promote' | 'rollback' | 'config:set' | 'config:unset';

/** The operation commands that a stage's approval rule turns into an approval request instead. */
export type ApprovableCommandName = 'deploy' | 'promote' | 'rollback';

/** What a command answered: an operation under way, or data to show (with a note the text fronts print below it). */
export type Result<N extends CommandName = CommandName> = {
  [K in N]: K extends OperationCommandName
    ? | { kind: 'operation'; command: K; operation: CommandResults[K] }
      | (K extends ApprovableCommandName ? { kind: 'approval'; command: K; approval: ApprovalView } : never)
    : { kind: 'data'; command: K; data: CommandResults[K]; note?: string };
}[N];

/** `POST /api/commands`: a command's words, as typed after `flowops`. Answers a Result. */
export interface CommandRequest {
  argv: string[];
}

/** `GET /api/operations/:id?after=<event id>`: the operation and its events after `after`. */
export interface OperationProgress {
  operation: OperationView;
  events: EventView[];
}

/** `GET /api/approvals/:id`: an approval request, as `approve` answers it (the CLI polls it while it waits). */
export type ApprovalProgress = ApprovalView;

/** Any 4xx or 5xx of `/api`. */
export interface ApiError {
  error: { code: string; message: string };
}

/** A DORA performance band (2023 Accelerate State of DevOps Report's clusters; README "Delivery metrics"). */
export type Band = 'elite' | 'high' | 'medium' | 'low';

/** Why a production deployment counts as a change failure (README "Delivery metrics" defines each). */
export type ChangeFailure = 'failed_release' | 'rolled_back' | 'fixed_forward';

/** One production deployment (a deploy or promotion release of a production app) in the window. */
export interface MetricsDeployment {
  app: string;
  version: number;
  kind: 'deploy' | 'promote';
  status: 'succeeded' | 'failed';
  /** When it went live (succeeded) or its release failed. */
  at: string;
  commit: string | null;
  /** From the oldest commit it brought to production to going live; null when it brought none or flowops cannot tell. */
  leadTimeSeconds: number | null;
  failure: ChangeFailure | null;
  /** A failure's time to the app's next good release; null while there is none. */
  restoredSeconds: number | null;
}

/** `metrics`: the four DORA keys of a pipeline's production stage over the last `days`. */
export interface MetricsView {
  pipeline: string;
  days: number;
  since: string;
  until: string;
  deploymentFrequency: { deployments: number; perDay: number; perWeek: number; band: Band };
  /** Null when no deployment in the window has a known lead time. */
  leadTime: { medianSeconds: number; p90Seconds: number; measured: number; band: Band } | null;
  /** Null when nothing was deployed (or tried) in the window. */
  changeFailureRate: {
    failures: number;
    attempts: number;
    rate: number;
    band: Band;
    failedRelease: number;
    rolledBack: number;
    fixedForward: number;
  } | null;
  /** Null when no failure in the window was restored. */
  timeToRestore: { medianSeconds: number; restored: number; unrestored: number; band: Band } | null;
  /** Weeks from Monday 00:00 UTC, oldest first: deployments that went live, and their median lead time. */
  weeks: { start: string; deployments: number; leadTimeMedianSeconds: number | null }[];
  deployments: MetricsDeployment[];
}
