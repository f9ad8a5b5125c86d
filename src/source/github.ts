import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createAppAuth } from '@octokit/auth-app';
import { Octokit, RequestError } from 'octokit';
import { ExternalServiceError, NotFound } from '../errors.ts';
import { runOrThrow } from '../exec.ts';
import type { GitHubRef } from './source-ref.ts';
import {
  assertRef,
  HostWriteFailed,
  type Commit,
  type CommitState,
  type CommitStatuses,
  type DeploymentState,
  type Deployments,
  type Source,
} from './source.ts';

/** Statuses and deployments are retried by their outbox, with back-off, not inside the call (where a retry would hold up every status behind it). */
const WRITE = { request: { retries: 0 } };
/** A rate limit GitHub asks us to wait out for longer than this is handed back to the caller rather than waited for in the call. */
const MAX_IN_CALL_WAIT_S = 10;

export interface GitHubSettings {
  token: string | undefined;
  apiUrl: string;
  /** A GitHub App installation, the alternative to a token. */
  app?: { appId: string; privateKey: string; installationId: string };
}

/**
 * A GitHub repository read through its REST API: commits are fetched as
 * tarballs, history and diff come from the compare API. `GITHUB_API_URL`
 * points it at GitHub Enterprise (or the tests' stand-in).
 */
export class GitHubSource implements Source, CommitStatuses, Deployments {
  private readonly octokit: Octokit;

  constructor(
    private readonly repo: GitHubRef,
    settings: GitHubSettings,
  ) {
    const shortWaitOnce = (retryAfter: number, _options: unknown, _octokit: unknown, retryCount: number) =>
      retryCount === 0 && retryAfter <= MAX_IN_CALL_WAIT_S;
    const common = {
      baseUrl: settings.apiUrl.replace(/\/$/, ''),
      log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
      throttle: { onRateLimit: shortWaitOnce, onSecondaryRateLimit: shortWaitOnce },
    };
    this.octokit = settings.app
      ? // As the app's installation: octokit exchanges a JWT for an installation token, and renews it.
        new Octokit({
          ...common,
          authStrategy: createAppAuth,
          auth: { appId: settings.app.appId, privateKey: settings.app.privateKey, installationId: settings.app.installationId },
        })
      : new Octokit({ ...common, auth: settings.token });
  }

  private get slug(): string {
    return `${this.repo.owner}/${this.repo.name}`;
  }

  /** Turns GitHub's answers into messages that say what to fix. */
  private failure(err: unknown, what: string): Error {
    if (err instanceof RequestError) {
      if (err.status === 401)
        return new ExternalServiceError(
          `GitHub refused the credentials while ${what}: check GITHUB_TOKEN (or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_APP_INSTALLATION_ID)`,
        );
      if (err.status === 404)
        return new NotFound(`GitHub has no ${what.replace(/^reading /, '')} (or GITHUB_TOKEN cannot see ${this.slug})`);
      return new ExternalServiceError(`GitHub answered ${err.status} while ${what}`);
    }
    return new ExternalServiceError(`GitHub could not be reached while ${what}: ${err instanceof Error ? err.message : String(err)}`);
  }

  /**
   * A failed write, sorted for the outbox: GitHub's validation (422), a
   * repository gone (404, 410) or a token without permission (403) will fail
   * the same way every time; a rate limit (429, or 403 with the limit spent),
   * a server error or no answer may pass later. Bad credentials (401) are
   * retried too: they are fixed in flowops' settings, not in the status.
   */
  private writeFailure(err: unknown, what: string): HostWriteFailed {
    if (!(err instanceof RequestError))
      return new HostWriteFailed(
        `GitHub could not be reached while ${what}: ${err instanceof Error ? err.message : String(err)}`,
        null,
        false,
        null,
      );
    const headers = err.response?.headers ?? {};
    const retryAfter = Number(headers['retry-after']);
    const reset = Number(headers['x-ratelimit-reset']);
    const rateLimited =
      err.status === 429 ||
      (err.status === 403 && (headers['x-ratelimit-remaining'] === '0' || retryAfter > 0 || /rate limit/i.test(err.message)));
    const retryAfterMs = retryAfter > 0 ? retryAfter * 1000 : rateLimited && reset > 0 ? Math.max(0, reset * 1000 - Date.now()) : null;
    const permanent = err.status >= 400 && err.status < 500 && !rateLimited && err.status !== 401 && err.status !== 408;
    const message =
      err.status === 401
        ? `GitHub refused the credentials while ${what}: check GITHUB_TOKEN (or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_APP_INSTALLATION_ID)`
        : `GitHub answered ${err.status} while ${what}${permanent ? `: ${err.message.split(' - ')[0]}` : ''}`;
    return new HostWriteFailed(message, err.status, permanent, retryAfterMs);
  }

  async resolve(ref: string): Promise<string> {
    assertRef(ref);
    try {
      const { data } = await this.octokit.rest.repos.getCommit({ owner: this.repo.owner, repo: this.repo.name, ref });
      return data.sha;
    } catch (err) {
      if (err instanceof RequestError && (err.status === 404 || err.status === 422))
        throw new NotFound(`no branch, tag or commit "${ref}" in ${this.slug}`);
      throw this.failure(err, `reading ${ref} of ${this.slug}`);
    }
  }

  async defaultBranch(): Promise<string | null> {
    try {
      const { data } = await this.octokit.rest.repos.get({ owner: this.repo.owner, repo: this.repo.name });
      return data.default_branch || null;
    } catch (err) {
      throw this.failure(err, `reading ${this.slug}`);
    }
  }

  async extract(sha: string, dir: string): Promise<void> {
    let data: ArrayBuffer;
    try {
      ({ data } = (await this.octokit.rest.repos.downloadTarballArchive({ owner: this.repo.owner, repo: this.repo.name, ref: sha })) as {
        data: ArrayBuffer;
      });
    } catch (err) {
      throw this.failure(err, `reading the archive of ${sha.slice(0, 7)} of ${this.slug}`);
    }
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'flowops-archive-'));
    try {
      const file = path.join(tmp, 'archive.tar.gz');
      await writeFile(file, Buffer.from(data));
      // GitHub's tarballs hold one top folder (owner-repo-sha); the slug is what is inside it.
      await runOrThrow('tar', ['-xzf', file, '-C', dir, '--strip-components=1']);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  async readFile(sha: string, file: string): Promise<string | null> {
    try {
      const { data } = await this.octokit.rest.repos.getContent({ owner: this.repo.owner, repo: this.repo.name, path: file, ref: sha });
      return 'content' in data && typeof data.content === 'string' ? Buffer.from(data.content, 'base64').toString('utf8') : null;
    } catch (err) {
      if (err instanceof RequestError && err.status === 404) return null;
      throw this.failure(err, `reading ${file} of ${sha.slice(0, 7)}`);
    }
  }

  async log(base: string | null, head: string, limit: number): Promise<{ ahead: number; commits: Commit[] }> {
    const toCommit = (c: { sha: string; commit: { message: string; author: { name?: string; date?: string } | null } }): Commit => ({
      sha: c.sha,
      date: c.commit.author?.date ?? '',
      author: c.commit.author?.name ?? '',
      message: c.commit.message.split('\n')[0]!,
    });
    try {
      if (!base) {
        const { data } = await this.octokit.rest.repos.listCommits({
          owner: this.repo.owner,
          repo: this.repo.name,
          sha: head,
          per_page: limit,
        });
        return { ahead: data.length, commits: data.map(toCommit) };
      }
      const { data } = await this.octokit.rest.repos.compareCommitsWithBasehead({
        owner: this.repo.owner,
        repo: this.repo.name,
        basehead: `${base}...${head}`,
      });
      // Compare lists oldest first; diff shows newest first.
      return { ahead: data.ahead_by, commits: data.commits.slice(-limit).reverse().map(toCommit) };
    } catch (err) {
      throw this.failure(err, `comparing ${base?.slice(0, 7) ?? 'the start'}...${head.slice(0, 7)} of ${this.slug}`);
    }
  }

  async setCommitStatus(
    sha: string,
    status: { state: CommitState; context: string; description: string; targetUrl?: string },
  ): Promise<void> {
    try {
      await this.octokit.rest.repos.createCommitStatus({
        owner: this.repo.owner,
        repo: this.repo.name,
        sha,
        state: status.state,
        context: status.context,
        description: status.description.slice(0, 140),
        target_url: status.targetUrl,
        ...WRITE,
      });
    } catch (err) {
      throw this.writeFailure(err, `setting the ${status.context} status of ${sha.slice(0, 7)}`);
    }
  }

  async otherStatuses(sha: string, exceptContext: string): Promise<CommitState> {
    try {
      const { data } = await this.octokit.rest.repos.getCombinedStatusForRef({ owner: this.repo.owner, repo: this.repo.name, ref: sha });
      const others = data.statuses.filter((s) => s.context !== exceptContext).map((s) => s.state);
      if (others.some((s) => s === 'failure' || s === 'error')) return 'failure';
      if (others.some((s) => s === 'pending')) return 'pending';
      return 'success';
    } catch (err) {
      throw this.failure(err, `reading the statuses of ${sha.slice(0, 7)}`);
    }
  }

  async createDeployment(
    sha: string,
    environment: string,
    options: { transient: boolean; production: boolean; description: string },
  ): Promise<string> {
    try {
      const { data } = await this.octokit.rest.repos.createDeployment({
        owner: this.repo.owner,
        repo: this.repo.name,
        ref: sha,
        environment,
        description: options.description.slice(0, 140),
        auto_merge: false,
        required_contexts: [],
        transient_environment: options.transient,
        production_environment: options.production,
        ...WRITE,
      });
      // 202: GitHub would merge the default branch first; flowops asked it not to, so this does not pass on a second try either.
      if (!('id' in data))
        throw new HostWriteFailed(`GitHub did not create a deployment of ${sha.slice(0, 7)}: ${data.message ?? ''}`, 202, true, null);
      return String(data.id);
    } catch (err) {
      throw err instanceof HostWriteFailed ? err : this.writeFailure(err, `creating a deployment of ${sha.slice(0, 7)} to ${environment}`);
    }
  }

  async setDeploymentStatus(id: string, state: DeploymentState, environmentUrl: string | null): Promise<void> {
    try {
      await this.octokit.rest.repos.createDeploymentStatus({
        owner: this.repo.owner,
        repo: this.repo.name,
        deployment_id: Number(id),
        state,
        ...(environmentUrl ? { environment_url: environmentUrl } : {}),
        ...WRITE,
      });
    } catch (err) {
      throw this.writeFailure(err, `setting deployment ${id} to ${state}`);
    }
  }
}
