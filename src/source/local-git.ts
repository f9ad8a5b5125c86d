import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { InvalidInput, NotFound } from '../engine/errors.ts';
import { run, runOrThrow } from '../exec.ts';
import type { Commit, Source } from './source.ts';

const SEP = '\x1f';

/** True when `repo` is a URL git can clone rather than a path on this machine. */
export function isGitUrl(repo: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/\s]+@[^/\s]+:/.test(repo);
}

/**
 * A git repository on this machine, or a URL mirrored into the data dir and fetched
 * before every read, so deploys and diffs see the newest commits.
 */
export class LocalGitSource implements Source {
  private constructor(private readonly gitDir: string, private readonly url: string | null) {}

  static async open(repo: string, cacheDir: string): Promise<LocalGitSource> {
    if (!isGitUrl(repo)) {
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
      const cloned = await run('git', ['clone', '--quiet', '--mirror', repo, mirror]);
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
    // A ref is never an option: "-" first would reach git as a flag.
    if (!/^[A-Za-z0-9_][A-Za-z0-9_./-]*$/.test(ref)) throw new InvalidInput(`"${ref}" is not a branch, tag or commit name`);
    await this.fetch();
    const result = await run('git', ['-C', this.gitDir, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
    if (result.code !== 0) throw new NotFound(`no branch, tag or commit "${ref}" in the pipeline's repository`);
    return result.output.trim();
  }

  async extract(sha: string, dir: string): Promise<void> {
    const archive = await run('sh', ['-c', 'git -C "$1" archive --format=tar "$2" | tar -x -C "$3"', 'sh', this.gitDir, sha, dir]);
    if (archive.code !== 0) throw new Error(`git archive ${sha} failed: ${archive.output.trim()}`);
  }

  async readFile(sha: string, file: string): Promise<string | null> {
    const shown = await run('git', ['-C', this.gitDir, 'show', `${sha}:${file}`]);
    return shown.code === 0 ? shown.output : null;
  }

  async log(base: string | null, head: string, limit: number): Promise<{ ahead: number; commits: Commit[] }> {
    await this.fetch();
    const range = base ? [`${base}..${head}`] : [head];
    const ahead = Number((await this.git(['rev-list', '--count', ...range])).trim());
    const raw = await this.git(['log', `--max-count=${limit}`, `--format=%H${SEP}%aI${SEP}%an${SEP}%s`, ...range]);
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
