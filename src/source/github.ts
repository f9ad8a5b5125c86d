import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createAppAuth } from '@octokit/auth-app';
import { Octokit, RequestError } from 'octokit';
import { ExternalServiceError, NotFound } from '../engine/errors.ts';
import { runOrThrow } from '../exec.ts';
import { assertRef, type Commit, type CommitState, type CommitStatuses, type DeploymentState, type Deployments, type Source } from './source.ts';

export interface GitHubSettings {
  token: string | undefined;
  apiUrl: string;
  /** A GitHub App installation, the alternative to a token. */
  app?: { appId: string; privateKey: string; installationId: string };
}

/** `github:owner/name` → `{ owner, name }`; null for any other repo string. */
export function parseGitHubRepo(repo: string): { owner: string; name: string } | null {
  const match = /^github:([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(repo);
  return match ? { owner: match[1]!, name: match[2]! } : null;
}

/**
 * A GitHub repository read through its REST API: commits are fetched as
 * tarballs, history and diff come from the compare API. `GITHUB_API_URL`
 * points it at GitHub Enterprise (or the tests' stand-in).
 */
export class GitHubSource implements Source, CommitStatuses, Deployments {
  private readonly octokit: Octokit;

  constructor(
    private readonly repo: { owner: string; name: string },
    settings: GitHubSettings,
  ) {
    const common = { baseUrl: settings.apiUrl.replace(/\/$/, ''), log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} } };
    this.octokit = settings.app
      ? // As the app's installation: octokit exchanges a JWT for an installation token, and renews it.
        new Octokit({ ...common, authStrategy: createAppAuth, auth: { appId: settings.app.appId, privateKey: settings.app.privateKey, installationId: settings.app.installationId } })
      : new Octokit({ ...common, auth: settings.token });
  }

  private get slug(): string {
    return `${this.repo.owner}/${this.repo.name}`;
  }

  /** Turns GitHub's answers into messages that say what to fix. */
  private failure(err: unknown, what: string): Error {
    if (err instanceof RequestError) {
      if (err.status === 401) return new ExternalServiceError(`GitHub refused the credentials while ${what}: check GITHUB_TOKEN (or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY, GITHUB_APP_INSTALLATION_ID)`);
      if (err.status === 404) return new NotFound(`GitHub has no ${what.replace(/^reading /, '')} (or GITHUB_TOKEN cannot see ${this.slug})`);
      return new ExternalServiceError(`GitHub answered ${err.status} while ${what}`);
    }
    return new ExternalServiceError(`GitHub could not be reached while ${what}: ${err instanceof Error ? err.message : String(err)}`);
  }

  async resolve(ref: string): Promise<string> {
    assertRef(ref);
    try {
      const { data } = await this.octokit.rest.repos.getCommit({ owner: this.repo.owner, repo: this.repo.name, ref });
      return data.sha;
    } catch (err) {
      if (err instanceof RequestError && (err.status === 404 || err.status === 422)) throw new NotFound(`no branch, tag or commit "${ref}" in ${this.slug}`);
      throw this.failure(err, `reading ${ref} of ${this.slug}`);
    }
  }

  async extract(sha: string, dir: string): Promise<void> {
    let data: ArrayBuffer;
    try {
      ({ data } = (await this.octokit.rest.repos.downloadTarballArchive({ owner: this.repo.owner, repo: this.repo.name, ref: sha })) as { data: ArrayBuffer });
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
        const { data } = await this.octokit.rest.repos.listCommits({ owner: this.repo.owner, repo: this.repo.name, sha: head, per_page: limit });
        return { ahead: data.length, commits: data.map(toCommit) };
      }
      const { data } = await this.octokit.rest.repos.compareCommitsWithBasehead({ owner: this.repo.owner, repo: this.repo.name, basehead: `${base}...${head}` });
      // Compare lists oldest first; diff shows newest first.
      return { ahead: data.ahead_by, commits: data.commits.slice(-limit).reverse().map(toCommit) };
    } catch (err) {
      throw this.failure(err, `comparing ${base?.slice(0, 7) ?? 'the start'}...${head.slice(0, 7)} of ${this.slug}`);
    }
  }

  async setCommitStatus(sha: string, status: { state: CommitState; context: string; description: string; targetUrl?: string }): Promise<void> {
    try {
      await this.octokit.rest.repos.createCommitStatus({
        owner: this.repo.owner,
        repo: this.repo.name,
        sha,
        state: status.state,
        context: status.context,
        description: status.description.slice(0, 140),
        target_url: status.targetUrl,
      });
    } catch (err) {
      throw this.failure(err, `setting the ${status.context} status of ${sha.slice(0, 7)}`);
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

  async createDeployment(sha: string, environment: string, options: { transient: boolean; production: boolean; description: string }): Promise<string> {
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
      });
      if (!('id' in data)) throw new ExternalServiceError(`GitHub did not create a deployment of ${sha.slice(0, 7)}: ${data.message ?? ''}`);
      return String(data.id);
    } catch (err) {
      throw err instanceof ExternalServiceError ? err : this.failure(err, `creating a deployment of ${sha.slice(0, 7)} to ${environment}`);
    }
  }

  async setDeploymentStatus(id: string, state: DeploymentState, environmentUrl: string | null): Promise<void> {
    try {
      await this.octokit.rest.repos.createDeploymentStatus({ owner: this.repo.owner, repo: this.repo.name, deployment_id: Number(id), state, ...(environmentUrl ? { environment_url: environmentUrl } : {}) });
    } catch (err) {
      throw this.failure(err, `setting deployment ${id} to ${state}`);
    }
  }
}
