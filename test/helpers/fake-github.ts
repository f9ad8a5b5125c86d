import { spawn as spawnProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createRequire } from 'node:module';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { run } from '../../src/exec.ts';
import type { GitRepo } from './git-repo.ts';

export interface GitHubCall {
  method: string;
  path: string;
  authorization?: string;
}

const SEP = '\x1f';

/**
 * A stand-in for GitHub's REST API on a local port, answering from a real git
 * repository: commits, tarballs (through a codeload redirect, as GitHub does),
 * compare and commit lists. It records every call and answers anything else
 * with 404, remembered in `unexpected`.
 */
export class FakeGitHub {
  readonly calls: GitHubCall[] = [];
  /** Commit statuses posted, in order: { sha, state, context, description }. */
  readonly statuses: { sha: string; state: string; context: string; description: string }[] = [];
  /** Deployments created, with the statuses posted to each. */
  readonly deployments: {
    id: number;
    ref: string;
    environment: string;
    transient: boolean;
    production: boolean;
    statuses: { state: string; environment_url?: string }[];
  }[] = [];
  /** Statuses other CI systems have set on commits, by sha. */
  readonly otherStatuses = new Map<string, { state: string; context: string }[]>();
  readonly unexpected: string[] = [];
  /** Status posts for a sha (or deployment creations, under "deployments") answered with this HTTP status instead of taken: 422 refuses, 500 is GitHub down. */
  readonly refuse = new Map<string, number>();
  /** Every commit status post, taken or not, in order, with what it was answered. */
  readonly statusAttempts: { sha: string; description: string; answered: number }[] = [];
  private server!: http.Server;
  url = '';
  /** What the repository's page says its default branch is. */
  defaultBranch = 'main';

  constructor(
    private readonly fullName: string,
    private readonly repo: GitRepo,
  ) {}

  static async start(fullName: string, repo: GitRepo): Promise<FakeGitHub> {
    const fake = new FakeGitHub(fullName, repo);
    fake.server = http.createServer((req, res) => {
      fake.handle(req, res).catch((err: unknown) => res.writeHead(500).end(String(err)));
    });
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async git(...args: string[]): Promise<{ code: number; output: string }> {
    return run('git', ['-C', this.repo.dir, ...args]);
  }

  private async commits(range: string[]): Promise<object[]> {
    const out = (await this.git('log', `--format=%H${SEP}%an${SEP}%aI${SEP}%s`, ...range)).output.trim();
    return out
      ? out.split('\n').map((line) => {
          const [sha, name, date, message] = line.split(SEP);
          return { sha, commit: { message, author: { name, date } } };
        })
      : [];
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    this.calls.push({ method: req.method ?? 'GET', path: url.pathname + url.search, authorization: req.headers.authorization });
    const json = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const prefix = `/repos/${this.fullName}`;
    const p = url.pathname;
    if (p.startsWith(`/codeload/${this.fullName}/legacy.tar.gz/`)) {
      const sha = p.split('/').pop()!;
      const archive = await new Promise<Buffer>((resolve) => {
        const chunks: Buffer[] = [];
        const child = spawnProcess('git', [
          '-C',
          this.repo.dir,
          'archive',
          '--format=tar.gz',
          `--prefix=${this.fullName.replace('/', '-')}-${sha.slice(0, 7)}/`,
          sha,
        ]);
        child.stdout!.on('data', (c: Buffer) => chunks.push(c));
        child.on('close', () => resolve(Buffer.concat(chunks)));
      });
      res.writeHead(200, { 'content-type': 'application/x-gzip' }).end(archive);
      return;
    }
    let match: RegExpExecArray | null;
    if (req.method === 'GET' && p === prefix) return json(200, { full_name: this.fullName, default_branch: this.defaultBranch });
    if (req.method === 'POST' && /^\/app\/installations\/\d+\/access_tokens$/.test(p)) {
      return json(201, {
        token: 'ghs_installation_token',
        expires_at: new Date(Date.now() + 3_600_000).toISOString(),
        permissions: {},
        repository_selection: 'all',
      });
    }
    if (req.method === 'POST' && (match = new RegExp(`^${prefix}/statuses/([0-9a-f]{40})$`).exec(p))) {
      let raw = '';
      for await (const chunk of req) raw += chunk;
      const body = JSON.parse(raw) as { state: string; context: string; description: string };
      const refused = this.refuse.get(match[1]!);
      this.statusAttempts.push({ sha: match[1]!, description: body.description, answered: refused ?? 201 });
      if (refused)
        return json(refused, {
          message: refused === 422 ? 'Validation Failed' : 'Server Error',
          documentation_url: 'https://docs.github.com/rest',
        });
      this.statuses.push({ sha: match[1]!, state: body.state, context: body.context, description: body.description });
      return json(201, { id: this.statuses.length, ...body });
    }
    if (req.method === 'POST' && p === `${prefix}/deployments`) {
      let raw = '';
      for await (const chunk of req) raw += chunk;
      const body = JSON.parse(raw) as { ref: string; environment: string; transient_environment: boolean; production_environment: boolean };
      const refused = this.refuse.get('deployments');
      if (refused)
        return json(refused, {
          message: refused === 422 ? 'Validation Failed' : 'Server Error',
          documentation_url: 'https://docs.github.com/rest',
        });
      const deployment = {
        id: this.deployments.length + 1,
        ref: body.ref,
        environment: body.environment,
        transient: body.transient_environment,
        production: body.production_environment,
        statuses: [],
      };
      this.deployments.push(deployment);
      return json(201, { id: deployment.id, ref: body.ref, environment: body.environment });
    }
    if (req.method === 'POST' && (match = new RegExp(`^${prefix}/deployments/(\\d+)/statuses$`).exec(p))) {
      let raw = '';
      for await (const chunk of req) raw += chunk;
      const deployment = this.deployments.find((d) => d.id === Number(match![1]));
      if (!deployment) return json(404, { message: 'Not Found' });
      deployment.statuses.push(JSON.parse(raw) as { state: string; environment_url?: string });
      return json(201, { id: deployment.statuses.length });
    }
    if ((match = new RegExp(`^${prefix}/commits/([0-9a-f]{40})/status$`).exec(p))) {
      const sha = match[1]!;
      const ours = this.statuses.filter((s) => s.sha === sha);
      const latest = new Map<string, { state: string; context: string }>();
      for (const status of [...(this.otherStatuses.get(sha) ?? []), ...ours]) latest.set(status.context, status);
      return json(200, { sha, state: 'pending', statuses: [...latest.values()] });
    }
    if ((match = new RegExp(`^${prefix}/commits/(.+)$`).exec(p))) {
      const found = await this.git('rev-parse', '--verify', '--quiet', `${decodeURIComponent(match[1]!)}^{commit}`);
      if (found.code !== 0) return json(422, { message: 'No commit found for SHA' });
      return json(200, (await this.commits(['-1', found.output.trim()]))[0]);
    }
    if ((match = new RegExp(`^${prefix}/contents/(.+)$`).exec(p))) {
      const shown = await this.git('show', `${url.searchParams.get('ref') ?? 'HEAD'}:${decodeURIComponent(match[1]!)}`);
      if (shown.code !== 0) return json(404, { message: 'Not Found' });
      return json(200, { type: 'file', encoding: 'base64', content: Buffer.from(shown.output).toString('base64') });
    }
    if ((match = new RegExp(`^${prefix}/tarball/(.+)$`).exec(p))) {
      res.writeHead(302, { location: `${this.url}/codeload/${this.fullName}/legacy.tar.gz/${match[1]}` }).end();
      return;
    }
    if ((match = new RegExp(`^${prefix}/compare/([0-9a-f]+)\\.\\.\\.([0-9a-f]+)$`).exec(p))) {
      const commits = (await this.commits([`${match[1]}..${match[2]}`])).reverse();
      return json(200, {
        status: commits.length ? 'ahead' : 'identical',
        ahead_by: commits.length,
        behind_by: 0,
        total_commits: commits.length,
        commits,
      });
    }
    if (p === `${prefix}/commits`) {
      const perPage = Number(url.searchParams.get('per_page') ?? 30);
      return json(200, await this.commits([`--max-count=${perPage}`, url.searchParams.get('sha') ?? 'HEAD']));
    }
    this.unexpected.push(`${req.method} ${p}`);
    json(404, { message: 'Not Found' });
  }
}

/** Signs a body as GitHub signs webhook deliveries: `sha256=` HMAC-SHA256 with the webhook secret. */
export function githubSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** POSTs a delivery to flowops' webhook endpoint, as GitHub does. */
export function deliver(url: string, event: string, id: string, body: string, signature: string): Promise<Response> {
  return fetch(`${url}/github/webhooks`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-github-event': event,
      'x-github-delivery': id,
      'x-hub-signature-256': signature,
      'user-agent': 'GitHub-Hookshot/test',
    },
    body,
  });
}

const examples = createRequire(import.meta.url)('@octokit/webhooks-examples/api.github.com/index.json') as {
  name: string;
  examples: Record<string, unknown>[];
}[];

/** A fresh copy of one of GitHub's real payloads for `event` (from @octokit/webhooks-examples): the first that `pick` accepts. */
export function webhookExample(event: string, pick: (payload: Record<string, unknown>) => boolean = () => true): Record<string, unknown> {
  const found = examples.find((e) => e.name === event)?.examples.find(pick);
  if (!found) throw new Error(`@octokit/webhooks-examples has no ${event} payload like that`);
  return structuredClone(found);
}
