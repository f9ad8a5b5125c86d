import { parseSourceRef } from '../source/source-ref.ts';

/** Where a pipeline's commits, comparisons and pull requests are on the web: GitHub's pages when it is connected, else nowhere. */
export interface SourceLinks {
  commit(sha: string): string | null;
  compare(base: string, head: string): string | null;
  pull(number: number): string | null;
}

const NONE: SourceLinks = { commit: () => null, compare: () => null, pull: () => null };

/**
 * Links for a pipeline's repository (`github:owner/name`) on `githubWebUrl`
 * (https://github.com, or a GitHub Enterprise host). Any other repository (a
 * path, a git URL) has no web pages flowops knows of: its commits show unlinked.
 */
export function sourceLinks(repo: string | null, githubWebUrl: string | null): SourceLinks {
  if (!repo || !githubWebUrl) return NONE;
  let ref;
  try {
    ref = parseSourceRef(repo);
  } catch {
    return NONE;
  }
  if (ref.kind !== 'github') return NONE;
  const base = `${githubWebUrl.replace(/\/+$/, '')}/${encodeURIComponent(ref.owner)}/${encodeURIComponent(ref.name)}`;
  const sha = (s: string) => (/^[0-9a-f]{7,64}$/.test(s) ? s : null);
  return {
    commit: (s) => (sha(s) ? `${base}/commit/${s}` : null),
    compare: (b, h) => (sha(b) && sha(h) ? `${base}/compare/${b}...${h}` : null),
    pull: (n) => (Number.isInteger(n) && n > 0 ? `${base}/pull/${n}` : null),
  };
}
