import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { InvalidInput, NotFound } from '../errors.ts';
import { run, runOrThrow } from '../exec.ts';
import { assertRef, assertSha, type Commit, type Source } from './source.ts';
import type { SourceRef } from './source-ref.ts';

const SEP = '\x1f';

/**
 * A git repository on this machine, or a URL mirrored into the data dir and fetched
 * before every read, so deploys and diffs see the newest commits.
 *
 * No operand reaches git where it could be read as an option: repositories and
 * refs starting with "-" are refused, shas must be shas, and every operand
 * follows `--` (clone) or `--end-of-options` (commands that take revisions).
 */
export class LocalGitSource implements Source {
  private constructor(
    private readonly gitDir: string,
    private readonly url: string | null,
  ) {}

  static async open(ref: Extract<SourceRef, { kind: 'git' | 'path' }>, cacheDir: string): Promise<LocalGitSource> {
    const repo = ref.kind === 'git' ? ref.url : ref.path;
    if (repo.startsWith('-'))
      throw new InvalidInput(
        `"${repo.slice(0, 60)}" cannot be a repository: git would read a leading "-" as an option; write ./${repo.slice(0, 60)} for a path`,
      );
    if (ref.kind === 'path') {
      const dir = path.resolve(repo);
      const probe = await run('git', ['-C', dir, 'rev-parse', '--git-dir']);
      if (!existsSync(dir) || probe.code !== 0) {
        throw new InvalidInput(`${repo} is not a git repository; give --repo a path to a git checkout or a git URL`);
      }
      return new LocalGitSource(dir, null);
    }
    const mirror = path.join(cacheDir, createHash('sha256').update(repo).digest('hex').slice(0, 16) + '.git');
    if (!existsSync(mirror)) {
      await mkdir(cacheDir, { recursive: true });
      const cloned = await run('git', ['clone', '--quiet', '--mirror', '--', repo, mirror]);
      if (cloned.code !== 0) throw new InvalidInput(`could not clone ${repo}: ${cloned.output.trim()}`);
    }
    return new LocalGitSource(mirror, repo);
  }

  private git(args: string[]) {
    return runOrThrow('git', ['-C', this.gitDir, ...args]);
  }

  private async fetch(): Promise<void> {
    if (this.url) await this.git(['fetch', '--quiet', '--prune', 'origin', '+refs/*:refs/*']);
  }

  async resolve(ref: string): Promise<string> {
    assertRef(ref);
    await this.fetch();
    const result = await run('git', ['-C', this.gitDir, 'rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`]);
    if (result.code !== 0) throw new NotFound(`no branch, tag or commit "${ref}" in the pipeline's repository`);
    return result.output.trim();
  }

  async defaultBranch(): Promise<string | null> {
    const head = await run('git', ['-C', this.gitDir, 'symbolic-ref', '--quiet', '--short', 'HEAD']);
    return head.code === 0 && head.output.trim() ? head.output.trim() : null;
  }

  async extract(sha: string, dir: string): Promise<void> {
    assertSha(sha);
    const archive = await run('sh', [
      '-c',
      'git -C "$1" archive --format=tar --end-of-options "$2" | tar -x -C "$3"',
      'sh',
      this.gitDir,
      sha,
      dir,
    ]);
    if (archive.code !== 0) throw new Error(`git archive ${sha} failed: ${archive.output.trim()}`);
  }

  async readFile(sha: string, file: string): Promise<string | null> {
    assertSha(sha);
    const shown = await run('git', ['-C', this.gitDir, 'show', '--end-of-options', `${sha}:${file}`]);
    return shown.code === 0 ? shown.output : null;
  }

  async log(base: string | null, head: string, limit: number): Promise<{ ahead: number; commits: Commit[] }> {
    if (base !== null) assertSha(base);
    assertSha(head);
    await this.fetch();
    const range = base ? [`${base}..${head}`] : [head];
    const ahead = Number((await this.git(['rev-list', '--count', '--end-of-options', ...range])).trim());
    const raw = await this.git(['log', `--max-count=${limit}`, `--format=%H${SEP}%aI${SEP}%an${SEP}%s`, '--end-of-options', ...range]);
    const commits = raw
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [sha = '', date = '', author = '', message = ''] = line.split(SEP);
        return { sha, date, author, message };
      });
    return { ahead, commits };
  }
}
