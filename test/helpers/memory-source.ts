import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { NotFound } from '../../src/errors.ts';
import type { Commit, Source } from '../../src/source/source.ts';

interface StoredCommit extends Commit {
  parent: string | null;
  files: Record<string, string>;
}

/**
 * A repository in memory behind the `Source` interface (the boundary to git
 * and GitHub): commits are files plus a message, named by a sha1 of both.
 */
export class MemorySource implements Source {
  private readonly commits = new Map<string, StoredCommit>();
  private readonly branches = new Map<string, string>();

  /** Commits `files` (on top of the branch's files) to `branch`; returns the commit's sha. */
  commit(files: Record<string, string>, message = 'Change', branch = 'main'): string {
    const parent = this.branches.get(branch) ?? null;
    const tree = { ...(parent ? this.commits.get(parent)!.files : {}), ...files };
    const sha = createHash('sha1')
      .update(JSON.stringify({ parent, tree, message, n: this.commits.size }))
      .digest('hex');
    this.commits.set(sha, { sha, parent, files: tree, message, author: 'Dana Dev', date: new Date().toISOString() });
    this.branches.set(branch, sha);
    return sha;
  }

  async resolve(ref: string): Promise<string> {
    const sha =
      this.branches.get(ref) ?? (this.commits.has(ref) ? ref : [...this.commits.keys()].find((s) => ref.length >= 7 && s.startsWith(ref)));
    if (!sha) throw new NotFound(`no branch, tag or commit "${ref}" in the repository`);
    return sha;
  }

  async defaultBranch(): Promise<string | null> {
    return this.branches.has('main') ? 'main' : ([...this.branches.keys()][0] ?? null);
  }

  async extract(sha: string, dir: string): Promise<void> {
    for (const [name, content] of Object.entries(this.at(sha).files)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), content);
    }
  }

  async readFile(sha: string, file: string): Promise<string | null> {
    return this.at(sha).files[file] ?? null;
  }

  /** How many times `log` was asked (a board must not ask on open). */
  logCalls = 0;

  async log(base: string | null, head: string, limit: number): Promise<{ ahead: number; commits: Commit[] }> {
    this.logCalls++;
    const commits: Commit[] = [];
    for (let sha: string | null = head; sha && sha !== base; sha = this.at(sha).parent) {
      const { author, date, message } = this.at(sha);
      commits.push({ sha, author, date, message });
    }
    return { ahead: commits.length, commits: commits.slice(0, limit) };
  }

  private at(sha: string): StoredCommit {
    const commit = this.commits.get(sha);
    if (!commit) throw new NotFound(`no commit ${sha} in the repository`);
    return commit;
  }
}
