import { InvalidInput } from '../errors.ts';
import { GitHubSource, type GitHubSettings } from './github.ts';
import { LocalGitSource } from './local-git.ts';
import { parseSourceRef } from './source-ref.ts';
import type { Source } from './source.ts';

/** Opens a pipeline's source from its repo string: `github:owner/name`, or a git path or URL. */
export type OpenSource = (repo: string) => Promise<Source>;

/**
 * The sources this server can read, one per kind of source reference
 * (Renovate's registry shape): GitHub when it is configured, local git always.
 */
export function sourceOpener(options: { cacheDir: string; github: GitHubSettings | null }): OpenSource {
  return async (repo) => {
    const ref = parseSourceRef(repo);
    if (ref.kind === 'github') {
      if (!options.github)
        throw new InvalidInput('a github: repository needs GitHub settings: set GITHUB_TOKEN (and GITHUB_API_URL for GitHub Enterprise)');
      return new GitHubSource(ref, options.github);
    }
    return LocalGitSource.open(ref, options.cacheDir);
  };
}
