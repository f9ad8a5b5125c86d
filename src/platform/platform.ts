import type { PlatformKind, Procfile } from '../db/entities.ts';
import type { AppProcesses, CrashReport, Formation, LogPage, LogQuery, LogSource } from '../runtime/protocol.ts';
import type { Source } from '../source/source.ts';

export type { AppProcesses, CrashReport, DynoView, Formation, LogPage, LogQuery, LogSource } from '../runtime/protocol.ts';

export interface BuiltSlug {
  /** sha256 of the slug archive: the slug's address. */
  id: string;
  size: number;
  procfile: Procfile;
}

/** What the platform needs to run one release of an app. */
export interface ReleaseSpec {
  app: string;
  releaseId: number;
  version: number;
  slugId: string;
  procfile: Procfile;
  config: Record<string, string>;
  /** Dynos per process type (`ps:scale`); a type missing from it runs one. */
  formation: Formation;
  /** Where the app runs (absent: the local platform). */
  platform?: PlatformKind;
  /** Its Kubernetes namespace. */
  namespace?: string | null;
}

export type OutputSink = (chunk: string) => void;

/**
 * How a build reports: its whole log as it comes, and its steps ("Building
 * dependencies", with indented details) as structured progress, so nobody has
 * to parse the log to follow it.
 */
export interface BuildProgress {
  output: OutputSink;
  step?: (step: string, detail: boolean) => void;
}

/**
 * Where apps run. The local platform (child processes on this machine) is the
 * default; a Heroku or Kubernetes platform plugs in behind the same interface.
 */
export interface Platform {
  /**
   * Where repository code runs: `bubblewrap` (sandboxed: it sees nothing of this
   * machine but its own files), or `none` (plain processes; only the environment
   * allowlist keeps flowops' settings from it).
   */
  readonly isolation: 'bubblewrap' | 'none';
  /**
   * Builds a commit of `source` into a slug, reporting its log and steps to `progress`.
   * `scope` (the pipeline's repository) keeps build caches of different repositories apart.
   */
  build(source: Source, sha: string, progress: BuildProgress, scope: string): Promise<BuiltSlug>;
  /** Runs the Procfile's `release` command with the new slug and config; returns its exit code and output. */
  releasePhase(spec: ReleaseSpec, onOutput: OutputSink): Promise<{ code: number; output: string }>;
  /** Starts the release's processes, waits until `web` answers, then stops the previous release's. Throws when they do not come up; the previous release keeps running. */
  start(spec: ReleaseSpec, onOutput: OutputSink): Promise<void>;
  /**
   * Runs a commit's tests on its slug, as Heroku CI does: app.json's
   * `environments.test.scripts["test-setup"]`, then `scripts.test` (a Node app
   * without one: `npm test`), with `environments.test.env` and `CI=true`, in a
   * copy of the slug. Resolves with the exit code (null: no test script) and output.
   */
  runTests(slugId: string, onOutput: OutputSink, signal: AbortSignal): Promise<{ code: number | null; output: string }>;
  /**
   * Runs a one-off command (app.json's postdeploy, pr-predestroy) in a slug with the app's config vars.
   * `app`: the app it is for (the Kubernetes platform runs it in the app's namespace and needs it).
   */
  runCommand(
    slugId: string,
    command: string,
    config: Record<string, string>,
    onOutput: OutputSink,
    app?: string,
  ): Promise<{ code: number; output: string }>;
  /** The app's dynos and their states. */
  ps(app: string): Promise<AppProcesses>;
  /** Sets the number of dynos of process types; the dynos start or stop now. */
  scale(app: string, formation: Formation): Promise<AppProcesses>;
  /** Restarts the app's dynos, a type's (`web`) or one (`web.1`); the names of those restarted. */
  restart(app: string, target?: string): Promise<string[]>;
  /** Stops a dyno or a type's until the next restart, scale or release; the names of those stopped. */
  stop(app: string, target: string): Promise<string[]>;
  /** Lines of the app's log: its dynos', its router's and flowops' own. */
  logs(app: string, query: LogQuery): Promise<LogPage>;
  /** Adds a line of flowops' own to the app's log (`flowops[api]: Release v5 created by alice`). */
  note(app: string, dyno: string, text: string, source?: LogSource): Promise<void>;
  /** The crashed dynos of every app that has some (`{ shop: ['web.1'] }`); none when nothing runs. */
  crashed(): Promise<Record<string, string[]>>;
  /** Dynos that crashed after running fine, one report per crash episode, until taken. */
  crashes(): Promise<CrashReport[]>;
  takeCrash(id: string): Promise<void>;
  /** Stops every process of the app and frees its port. */
  destroy(app: string): Promise<void>;
  /**
   * Calls `listener` when the platform lost what it ran and must be told again (`recover`):
   * the local platform's runtime died and was started anew.
   */
  whenRestarted(listener: () => void): void;
  /**
   * After a restart: make each app run its current release (or nothing), and nothing else.
   * `asOf` (epoch ms): when the caller began reading that picture; a release that went live
   * since is newer than the picture and is kept.
   */
  recover(current: ReleaseSpec[], appsWithoutRelease: string[], asOf?: number): Promise<void>;
  /** The app's URL, when it has a web process. */
  url(app: string, platform?: PlatformKind): string | null;
  close(): Promise<void>;
}
