import { InvalidInput } from '../errors.ts';
import { GitHubSource, parseGitHubRepo, type GitHubSettings } from './github.ts';
import { LocalGitSource } from './local-git.ts';
import type { Source } from './source.ts';

/** Opens a pipeline's source from its repo string: `github:owner/name`, or a git path or URL. */
export type OpenSource = (repo: string) => Promise<Source>;

/**
 * The sources this server can read, one per kind of repo string (Renovate's
 * registry shape): GitHub when it is configured, local git always.
 */
export function sourceOpener(options: { cacheDir: string; github: GitHubSettings | null }): OpenSource {
  return async (repo) => {
    const github = parseGitHubRepo(repo);
    if (github) {
      if (!options.github) throw new InvalidInput('a github: repository needs GitHub settings: set GITHUB_TOKEN (and GITHUB_API_URL for GitHub Enterprise)');
      return new GitHubSource(github, options.github);
    }
    if (repo.startsWith('github:')) throw new InvalidInput(`"${repo}" is not a GitHub repository: write github:owner/name`);
    return LocalGitSource.open(repo, options.cacheDir);
  };
}
