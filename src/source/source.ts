import { ExternalServiceError, InvalidInput } from '../errors.ts';

/**
 * Refuses a ref (branch, tag, sha) that git could read as an option (a leading
 * "-") or that holds anything but the characters branch names use in practice.
 */
export function assertRef(ref: string): void {
  if (ref.startsWith('-'))
    throw new InvalidInput(`"${ref.slice(0, 60)}" is not a branch, tag or commit name: a name cannot start with "-"`);
  if (!/^[A-Za-z0-9_][A-Za-z0-9_./-]{0,254}$/.test(ref)) {
    throw new InvalidInput(
      `"${ref.slice(0, 60)}" is not a branch, tag or commit name: use letters, digits, "_", ".", "/" and "-" (at most 255)`,
    );
  }
}

/** Refuses anything but a full commit sha (SHA-1 or SHA-256) where one is expected. */
export function assertSha(sha: string): void {
  if (!/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(sha)) throw new InvalidInput(`"${sha.slice(0, 70)}" is not a commit sha`);
}

/** A commit in a pipeline's source, as `diff` shows it. */
export interface Commit {
  sha: string;
  date: string;
  author: string;
  message: string;
}

/**
 * Where a pipeline's code comes from. Local git today; GitHub (archives and compare
 * through its API) plugs in behind the same interface.
 */
export interface Source {
  /** The full sha a ref (branch, tag, sha) names; throws NotFound for an unknown ref. */
  resolve(ref: string): Promise<string>;
  /** The branch the repository's HEAD names (its default branch: `main`, `master`…); null when HEAD names none. */
  defaultBranch(): Promise<string | null>;
  /** Writes the tree of a commit into `dir` (which exists and is empty). */
  extract(sha: string, dir: string): Promise<void>;
  /** A file of a commit (app.json), or null when the commit has none. */
  readFile(sha: string, file: string): Promise<string | null>;
  /** Commits reachable from `head` and not from `base` (all of head's when base is null), newest first. */
  log(base: string | null, head: string, limit: number): Promise<{ ahead: number; commits: Commit[] }>;
}

export type CommitState = 'pending' | 'success' | 'failure' | 'error';

/**
 * A write to the source host (a commit status, a deployment) that did not
 * happen. `permanent`: sending it again cannot help (the host validated and
 * refused it, the repository is gone, the token may not write there).
 * Otherwise it may work later: `retryAfterMs` when the host said when.
 */
export class HostWriteFailed extends ExternalServiceError {
  constructor(
    message: string,
    readonly status: number | null,
    readonly permanent: boolean,
    readonly retryAfterMs: number | null,
  ) {
    super(message);
  }
}

/** What a source host (GitHub) can show on a commit. Local git has none of it. */
export interface CommitStatuses {
  setCommitStatus(sha: string, status: { state: CommitState; context: string; description: string; targetUrl?: string }): Promise<void>;
  /** The combined state of every status on the commit but `exceptContext` (success when there are none). */
  otherStatuses(sha: string, exceptContext: string): Promise<CommitState>;
}

export function hasCommitStatuses(source: Source): source is Source & CommitStatuses {
  return typeof (source as Partial<CommitStatuses>).setCommitStatus === 'function';
}

export type DeploymentState = 'in_progress' | 'success' | 'failure';

/** Deployments on the source host (GitHub): one per release, with its environment and URL. */
export interface Deployments {
  createDeployment(
    sha: string,
    environment: string,
    options: { transient: boolean; production: boolean; description: string },
  ): Promise<string>;
  setDeploymentStatus(id: string, state: DeploymentState, environmentUrl: string | null): Promise<void>;
}

export function hasDeployments(source: Source): source is Source & Deployments {
  return typeof (source as Partial<Deployments>).createDeployment === 'function';
}
