import type { PlatformKind } from '../db/entities.ts';
import { log } from '../log.ts';
import type { Source } from '../source/source.ts';
import type {
  AppProcesses,
  BuildProgress,
  BuiltSlug,
  CrashReport,
  Formation,
  LogPage,
  LogQuery,
  LogSource,
  OutputSink,
  Platform,
  ReleaseSpec,
} from './platform.ts';

/** Where one app runs, as the database says. */
export interface Placement {
  platform: PlatformKind;
  namespace: string | null;
}

/** Crash reports of Kubernetes apps carry this prefix, so `takeCrash` goes back to the platform that made them. */
const KUBERNETES_CRASH = 'k8s:';

/**
 * Each app on its own platform: the local one (this machine) or Kubernetes.
 * Builds and test runs always happen here (the slug then lives in the slug
 * store, where a Kubernetes pod fetches it); an app's release phase, dynos and
 * logs go to the platform the app was created on (`apps:create --platform`).
 * Asks the database where an app runs on each call, so replicas agree; only
 * `url` (which must answer at once) reads what was last seen.
 */
export class PlacedPlatform implements Platform {
  private readonly seen = new Map<string, PlatformKind>();

  constructor(
    readonly local: Platform,
    readonly kubernetes: Platform | null,
    private readonly placementOf: (app: string) => Promise<Placement | null>,
  ) {}

  get isolation(): Platform['isolation'] {
    return this.local.isolation;
  }

  private of(kind: PlatformKind): Platform {
    if (kind === 'local') return this.local;
    if (!this.kubernetes)
      throw new Error('this app runs on Kubernetes, which is not set up on this flowops: set KUBECONFIG (or run flowops in the cluster)');
    return this.kubernetes;
  }

  private async platformOf(app: string): Promise<Platform> {
    const placement = await this.placementOf(app);
    const kind = placement?.platform ?? 'local';
    this.seen.set(app, kind);
    return this.of(kind);
  }

  private specPlatform(spec: ReleaseSpec): Platform {
    const kind = spec.platform ?? 'local';
    this.seen.set(spec.app, kind);
    return this.of(kind);
  }

  build(source: Source, sha: string, progress: BuildProgress, scope: string): Promise<BuiltSlug> {
    return this.local.build(source, sha, progress, scope);
  }

  runTests(slugId: string, onOutput: OutputSink, signal: AbortSignal): Promise<{ code: number | null; output: string }> {
    return this.local.runTests(slugId, onOutput, signal);
  }

  /** A one-off command of an app runs where the app runs; one of no app, here. */
  async runCommand(
    slugId: string,
    command: string,
    config: Record<string, string>,
    onOutput: OutputSink,
    app?: string,
  ): Promise<{ code: number; output: string }> {
    const platform = app ? await this.platformOf(app) : this.local;
    return platform.runCommand(slugId, command, config, onOutput, app);
  }

  releasePhase(spec: ReleaseSpec, onOutput: OutputSink): Promise<{ code: number; output: string }> {
    return this.specPlatform(spec).releasePhase(spec, onOutput);
  }

  start(spec: ReleaseSpec, onOutput: OutputSink): Promise<void> {
    return this.specPlatform(spec).start(spec, onOutput);
  }

  async ps(app: string): Promise<AppProcesses> {
    return (await this.platformOf(app)).ps(app);
  }

  async scale(app: string, formation: Formation): Promise<AppProcesses> {
    return (await this.platformOf(app)).scale(app, formation);
  }

  async restart(app: string, target?: string): Promise<string[]> {
    return (await this.platformOf(app)).restart(app, target);
  }

  async stop(app: string, target: string): Promise<string[]> {
    return (await this.platformOf(app)).stop(app, target);
  }

  async logs(app: string, query: LogQuery): Promise<LogPage> {
    return (await this.platformOf(app)).logs(app, query);
  }

  async note(app: string, dyno: string, text: string, source?: LogSource): Promise<void> {
    return (await this.platformOf(app)).note(app, dyno, text, source);
  }

  async crashed(): Promise<Record<string, string[]>> {
    const local = await this.local.crashed();
    const remote = await this.kubernetes?.crashed().catch((err: unknown) => {
      log.warn({ err }, 'Kubernetes did not say which pods crashed');
      return {};
    });
    return { ...local, ...remote };
  }

  async crashes(): Promise<CrashReport[]> {
    const remote = this.kubernetes ? await this.kubernetes.crashes().catch(() => []) : [];
    return [...(await this.local.crashes()), ...remote];
  }

  takeCrash(id: string): Promise<void> {
    return id.startsWith(KUBERNETES_CRASH) && this.kubernetes ? this.kubernetes.takeCrash(id) : this.local.takeCrash(id);
  }

  async destroy(app: string): Promise<void> {
    const platform = await this.platformOf(app);
    await platform.destroy(app);
    this.seen.delete(app);
  }

  whenRestarted(listener: () => void): void {
    this.local.whenRestarted(listener);
    this.kubernetes?.whenRestarted(listener);
  }

  /** Each platform gets its own apps; an app that runs nothing is told to its platform too. */
  async recover(current: ReleaseSpec[], appsWithoutRelease: string[], asOf?: number): Promise<void> {
    const idle = await Promise.all(
      appsWithoutRelease.map(async (app) => ({ app, kind: (await this.placementOf(app))?.platform ?? 'local' })),
    );
    for (const { app, kind } of idle) this.seen.set(app, kind);
    for (const spec of current) this.seen.set(spec.app, spec.platform ?? 'local');
    await this.local.recover(
      current.filter((s) => (s.platform ?? 'local') === 'local'),
      idle.filter((i) => i.kind === 'local').map((i) => i.app),
      asOf,
    );
    if (this.kubernetes)
      await this.kubernetes.recover(
        current.filter((s) => s.platform === 'kubernetes'),
        idle.filter((i) => i.kind === 'kubernetes').map((i) => i.app),
      );
  }

  /** `platform`: where the caller knows the app runs (another replica may have created it since this one looked). */
  url(app: string, platform?: PlatformKind): string | null {
    const kind = platform ?? this.seen.get(app) ?? 'local';
    return kind === 'kubernetes' ? (this.kubernetes?.url(app) ?? null) : this.local.url(app);
  }

  async close(): Promise<void> {
    await this.local.close();
    await this.kubernetes?.close();
  }
}
