import type { FailedPhase, PullRequest, Release, ReviewAppStatus, Stage, TestRun } from '../db/entities.ts';
import type { Commit } from '../source/source.ts';
import type {
  AppView,
  ApprovalRuleView,
  ApprovalView,
  AuditRecordView,
  AuditView,
  DiffView,
  LockView,
  MetricsView,
  OperationView,
  ReleaseView,
  ReviewAppView,
  TestRunView,
  UserSummary,
} from '../api/types.ts';

export type {
  AppView,
  ApprovalRuleView,
  ApprovalView,
  AuditRecordView,
  AuditView,
  DiffView,
  LockView,
  OperationView,
  ReleaseView,
  ReviewAppView,
  TestRunView,
  UserSummary,
};

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

/** Who started something, as a message names them: a Slack user by their Slack id (for a mention), anyone else by name. */
export interface Person {
  name: string;
  /** The Slack user id (`U…`) when the person came through Slack; null otherwise. */
  slackUser: string | null;
  via: string;
}

/** One release of one app. */
export interface ReleaseRef {
  app: string;
  version: number;
  commit: string | null;
}

/** What became of a release a message showed: its buttons no longer apply, and the message says why. */
export type ReleaseFate =
  | { kind: 'promoted'; by: Person; to: ReleaseRef[] }
  | { kind: 'superseded'; by: Person | null; now: ReleaseRef }
  | { kind: 'rolled_back'; by: Person | null; now: ReleaseRef; to: number | null };

/** What promoting a live release would ship to the stage downstream. */
export interface PromoteOffer {
  downstream: Stage;
  /** The downstream apps. */
  apps: string[];
  /** Commits the release runs that the downstream apps do not (0 with `first` false: nothing to promote). */
  ahead: number;
  commits: Commit[];
  /** The downstream stage runs nothing yet: this would be its first release. */
  first: boolean;
  base: string | null;
  /** The source could not list the commits just now: `ahead` and `commits` are unknown. */
  unlisted?: boolean;
}

/** An app on a board: what promoting its release would ship, what rolling it back would do (absent: nothing). */
export interface BoardApp extends AppView {
  promote?: PromoteOffer | null;
  rollback?: RollbackOffer | null;
}

/** A pipeline as a board shows it to one person: its apps, and which buttons that person may use. */
export interface BoardPipeline {
  name: string;
  apps: BoardApp[];
  /** Whether the viewer may deploy (and so sees Promote, Rollback and Restart). */
  canDeploy: boolean;
  /** Whether the viewer may operate (and so sees Unlock). */
  canOperate?: boolean;
  /** True when this server runs repository code without a sandbox (bubblewrap missing, or FLOW_SANDBOX=none). */
  unsandboxed?: boolean;
}

/** What the promote dialog shows before anyone promotes: the release, what it ships where, and what stands in the way. */
export interface PromotePreview {
  pipeline: string;
  from: ReleaseRef;
  offer: PromoteOffer;
  /** Approvals the downstream stage needs (0: none): submitting files a request. */
  approvals: number;
  /** Deploy locks on the downstream apps. */
  locks: LockView[];
}

/** What rolling back a live release would do: go back to `to`, taking away `ahead` commits. */
export interface RollbackOffer {
  from: ReleaseRef;
  to: ReleaseRef;
  ahead: number;
  commits: Commit[];
}

export interface ReportTarget {
  app: string;
  stage: Stage | 'destroyed';
  version: number | null;
  commit: string | null;
  status: Release['status'];
  releasing: boolean;
  error?: string;
  phase?: FailedPhase;
  /** The release's release phase output (and boot errors). */
  output: string;
  /** Whether this release is still the app's current one. */
  current: boolean;
  url: string | null;
  /** What the app serves now when it is not this release (a failure leaves the previous one serving). */
  serving: ReleaseRef | null;
  /** Why this release's buttons no longer apply (promoted on, superseded, rolled back). */
  fate: ReleaseFate | null;
  /** Offered on a live release upstream of another stage with something to ship. */
  promote: PromoteOffer | null;
  /** Offered on a live production release that has an earlier good release. */
  rollback: RollbackOffer | null;
  /** Offered on a live release a rollback made: the release it went back from, to release again. */
  rerelease: ReleaseRef | null;
  /** The deploy lock on the app now, if any. */
  lock: LockView | null;
}

/** Recorded on an operation's `<kind>.started` event: what it ships, for the audit trail and the messages. */
export interface OperationDetails {
  /** The commit a deploy builds. */
  commit?: { sha: string; subject: string | null; author: string | null };
  /** The release a promotion copies, and what it adds over the stage it goes to (`base` is what runs there). */
  promotion?: { from: ReleaseRef; base: string | null; ahead: number; commits: Commit[] };
  /** The release a rollback goes back from and the one it goes back to; `again` when it releases a later one again (Re-release). */
  rollback?: { from: ReleaseRef; to: ReleaseRef; again?: boolean };
  /** A deploy waiting for approval: the commits it adds over what its stage runs (`base`). */
  adds?: { base: string | null; ahead: number; commits: Commit[] };
  /** A person's note (the promote dialog's). */
  note?: string;
  /** The config vars a config change sets or removes: their names only, never a value. */
  config?: { keys: string[]; unset: boolean };
}

export interface OperationReport {
  operation: OperationView;
  /** The pipeline's repository (`github:owner/name`, a path), for links. */
  repo: string | null;
  actor: Person;
  details: OperationDetails;
  /** What it is doing now (its last progress line) while it runs. */
  step: string | null;
  startedAt: string;
  endedAt: string | null;
  /** The output of a build that failed (its end). */
  buildOutput: string | null;
  targets: ReportTarget[];
}

/** Everything the message of an approval request shows. */
export interface ApprovalReport {
  request: ApprovalView;
  /** The pipeline's repository, for links. */
  repo: string | null;
  requester: Person;
  approvers: Person[];
  /** Who rejected or withdrew it; flowops when it expired or could not start. */
  decidedBy: Person | null;
  /** What it ships: the commit, the promotion, the rollback; `adds` for a deploy. */
  details: OperationDetails;
  /** A promotion's source app now runs another release than the one approved (which is what ships). */
  sourceNow: ReleaseRef | null;
  /** The operation it became once approved. */
  operation: OperationReport | null;
}

/** A test run as a message shows it. */
export interface TestRunBrief {
  number: number;
  status: TestRun['status'];
  commit: string;
  branch: string | null;
  /** The end of its output (where a failure says why). */
  output: string;
  /** No newer run exists on its branch: Re-run still applies. */
  latest: boolean;
}

/** Everything the one message about a pull request shows. */
export interface PullRequestReport extends Pick<PullRequest, 'number' | 'title' | 'author' | 'branch' | 'headSha' | 'state' | 'pushes'> {
  pipeline: string;
  repo: string;
  tests: TestRunBrief | null;
  reviewApp: { app: string; status: ReviewAppStatus; url: string | null; error: string | null; deploying: boolean } | null;
}

/** Everything the one message about a push to the deploy branch shows: its test run and the deploy it caused. */
export interface PushReport {
  pipeline: string;
  repo: string;
  sha: string;
  branch: string;
  subject: string | null;
  pusher: string;
  tests: TestRunBrief | null;
  /** The pipeline auto-deploys this branch (and whether it waits for CI). */
  autodeploy: { stage: Stage; waitForCi: boolean } | null;
  /** Why the auto-deploy did not happen, when it did not. */
  autodeployNote: string | null;
  operation: OperationReport | null;
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

/** Staging runs commits production does not, and has for more than FLOW_NUDGE_STAGING_DAYS. */
export interface StagingAheadNudge {
  /** The staging app, the release it runs, and what promoting it would ship. */
  app: string;
  version: number;
  commit: string | null;
  offer: PromoteOffer;
  /** Since when staging has been ahead, and for how many whole days. */
  since: string;
  days: number;
}

/** A deploy lock about to expire, told to its holder. */
export interface LockExpiringNudge {
  lock: LockView;
}

/** An approval request waiting for more than an hour, told to the people who may approve it. */
export interface ApprovalWaitingNudge {
  request: ApprovalView;
}

/** A dyno that keeps crashing: crashed now, and crashing for at least 5 minutes (CRASH_LOOP_MS). */
export interface CrashLoopNudge {
  app: string;
  dyno: string;
  /** Since when it has been crashing: its crash episode began, or (never up) its release went live. */
  since: string;
  exitCode: number | null;
  /** Its last log lines. */
  lines: string[];
}

/** The weekly digest of a pipeline: its delivery metrics over the 7 days before it was sent, and the ISO week it is for. */
export interface DigestNudge {
  /** `2026-W48`. */
  week: string;
  metrics: MetricsView;
}

/** What each kind of nudge shows, by kind (src/engine/nudge-kinds.ts). */
export interface NudgeData {
  staging_ahead: StagingAheadNudge;
  lock_expiring: LockExpiringNudge;
  approval_waiting: ApprovalWaitingNudge;
  crash_loop: CrashLoopNudge;
  digest: DigestNudge;
}

export type NudgeKindName = keyof NudgeData;

/** A nudge flowops sent, as its message shows it: what was due, as it was then (its buttons check again on a click). */
export type NudgeReport = {
  [K in NudgeKindName]: { id: number; kind: K; pipeline: string; repo: string | null; at: string; data: NudgeData[K] };
}[NudgeKindName];
