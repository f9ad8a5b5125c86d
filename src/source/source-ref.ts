import { InvalidInput } from '../errors.ts';

/**
 * Where a pipeline's code lives, parsed once from its repo string:
 * `github:owner/name`, a URL git can clone, or a path on this machine.
 */
export type SourceRef = GitHubRef | { kind: 'git'; url: string } | { kind: 'path'; path: string };
export type GitHubRef = { kind: 'github'; owner: string; name: string };

const GITHUB_NAME = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/;

/** True when `repo` is a URL git can clone (`scheme://…` or scp-like `user@host:path`) rather than a path. */
export function isGitUrl(repo: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || /^[^/\s]+@[^/\s]+:/.test(repo);
}

/** `owner/name` (a GitHub repository's full name) → its reference; null when it is not one. */
export function githubRef(fullName: string): GitHubRef | null {
  const match = GITHUB_NAME.exec(fullName);
  return match ? { kind: 'github', owner: match[1]!, name: match[2]! } : null;
}

/**
 * Parses a repo string. A `github:` string that does not name `owner/name` is
 * refused; any other string is a git URL or a path (kept as written: the
 * caller resolves a path against its working directory when it stores one).
 */
export function parseSourceRef(repo: string): SourceRef {
  if (repo.startsWith('github:')) {
    const ref = githubRef(repo.slice('github:'.length));
    if (!ref) throw new InvalidInput(`"${repo}" is not a GitHub repository: write github:owner/name`);
    return ref;
  }
  return isGitUrl(repo) ? { kind: 'git', url: repo } : { kind: 'path', path: repo };
}

/** The repo string of a reference, as pipelines store it; `parseSourceRef` reads it back. */
export function formatSourceRef(ref: SourceRef): string {
  switch (ref.kind) {
    case 'github':
      return `github:${ref.owner}/${ref.name}`;
    case 'git':
      return ref.url;
    case 'path':
      return ref.path;
  }
}
