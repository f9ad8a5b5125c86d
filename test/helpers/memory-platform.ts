import { createHash } from 'node:crypto';
import type { Procfile } from '../../src/db/entities.ts';
import type {
  AppProcesses,
  BuildProgress,
  BuiltSlug,
  CrashReport,
  Formation,
  LogPage,
  LogQuery,
  OutputSink,
  Platform,
  ReleaseSpec,
} from '../../src/platform/platform.ts';
import { parseProcfile, processTypes } from '../../src/platform/local/procfile.ts';
import type { Source } from '../../src/source/source.ts';

/** A scripted step: returns its result, or a promise of it to hold the step open; throws to fail it. */
type Script<A extends unknown[], R> = (...args: A) => R | Promise<R>;

const SUCCEEDING: MemoryPlatform['script'] = {
  build: () => undefined,
  releasePhase: () => 0,
  start: () => undefined,
  tests: () => 0,
  command: () => 0,
};

/**
 * A platform in memory behind the `Platform` interface: nothing runs. A build
 * reads the commit's Procfile and returns a slug addressed by the sha256 of
 * the commit's content; release phases, starts and test runs succeed unless
 * the test scripts them otherwise. It records what it was asked to do.
 */
export class MemoryPlatform implements Platform {
  readonly isolation = 'none' as const;
  /** Commits built, in order. */
  readonly builds: { sha: string; scope: string; slug: string }[] = [];
  /** Release phases run, in order. */
  readonly releasePhases: ReleaseSpec[] = [];
  /** What each app runs now (its last started release). */
  readonly running = new Map<string, ReleaseSpec>();
  readonly commands: { slugId: string; command: string }[] = [];
  readonly destroyed: string[] = [];

  /** How each step goes; a test replaces an entry to make it fail, or hold it open until it resolves a promise. */
  readonly script: {
    /** A build: throw to fail it. */
    build: Script<[string], void>;
    /** The release phase's exit code. */
    releasePhase: Script<[ReleaseSpec], number>;
    /** Starting a release's processes: throw to say they did not come up. */
    start: Script<[ReleaseSpec], void>;
    /** A test run's exit code (null: no test script). */
    tests: Script<[string, AbortSignal], number | null>;
    /** A one-off command's exit code. */
    command: Script<[string, string], number>;
  } = { ...SUCCEEDING };

  /** Every step succeeds again. */
  resetScript(): void {
    Object.assign(this.script, SUCCEEDING);
  }

  async build(source: Source, sha: string, progress: BuildProgress, scope: string): Promise<BuiltSlug> {
    progress.output(`-----> Building ${sha.slice(0, 7)}\n`);
    progress.step?.(`Building ${sha.slice(0, 7)}`, false);
    await this.script.build(sha);
    const procfileText = (await source.readFile(sha, 'Procfile')) ?? '';
    const procfile: Procfile = parseProcfile(procfileText);
    // Content-addressed: the same commit (same content) is the same slug.
    const id = createHash('sha256').update(`${sha}\n${procfileText}`).digest('hex');
    this.builds.push({ sha, scope, slug: id });
    progress.output('-----> Compressing\n       Done\n');
    return { id, size: procfileText.length + 1024, procfile };
  }

  async releasePhase(spec: ReleaseSpec, onOutput: OutputSink): Promise<{ code: number; output: string }> {
    if (!spec.procfile.release) return { code: 0, output: '' };
    this.releasePhases.push(spec);
    const code = await this.script.releasePhase(spec);
    const output = `release phase of ${spec.app} v${spec.version} exited with ${code}\n`;
    onOutput(output);
    return { code, output };
  }

  async start(spec: ReleaseSpec, onOutput: OutputSink): Promise<void> {
    await this.script.start(spec);
    this.running.set(spec.app, spec);
    onOutput(`${spec.app} v${spec.version} up\n`);
  }

  async runTests(slugId: string, onOutput: OutputSink, signal: AbortSignal): Promise<{ code: number | null; output: string }> {
    const code = await this.script.tests(slugId, signal);
    const output = `tests exited with ${code}\n`;
    onOutput(output);
    return { code, output };
  }

  async runCommand(
    slugId: string,
    command: string,
    _config: Record<string, string>,
    onOutput: OutputSink,
  ): Promise<{ code: number; output: string }> {
    this.commands.push({ slugId, command });
    const code = await this.script.command(slugId, command);
    onOutput(`${command}: ${code}\n`);
    return { code, output: `${command}: ${code}\n` };
  }

  async destroy(app: string): Promise<void> {
    this.running.delete(app);
    this.destroyed.push(app);
  }

  async recover(current: ReleaseSpec[], appsWithoutRelease: string[]): Promise<void> {
    for (const app of appsWithoutRelease) this.running.delete(app);
    for (const spec of current) this.running.set(spec.app, spec);
  }

  /** Lines of each app's log, as flowops wrote them. */
  readonly notes = new Map<string, string[]>();

  async ps(app: string): Promise<AppProcesses> {
    const spec = this.running.get(app);
    if (!spec) return { app, version: null, formation: {}, commands: {}, dynos: [] };
    const types = processTypes(spec.procfile);
    const formation = Object.fromEntries(types.map((t) => [t, spec.formation[t] ?? 1]));
    const dynos = types.flatMap((type) =>
      Array.from({ length: formation[type]! }, (_, i) => ({
        name: `${type}.${i + 1}`,
        type,
        state: 'up' as const,
        since: new Date(0).toISOString(),
        command: spec.procfile[type]!,
        version: spec.version,
        exitCode: null,
      })),
    );
    const commands = Object.fromEntries(types.map((t) => [t, spec.procfile[t]!]));
    return { app, version: spec.version, formation, commands, dynos };
  }

  async scale(app: string, formation: Formation): Promise<AppProcesses> {
    const spec = this.running.get(app);
    if (spec) this.running.set(app, { ...spec, formation: { ...spec.formation, ...formation } });
    return this.ps(app);
  }

  async restart(app: string, target?: string): Promise<string[]> {
    return (await this.ps(app)).dynos.map((d) => d.name).filter((n) => !target || n === target || n.startsWith(`${target}.`));
  }

  async stop(app: string, target: string): Promise<string[]> {
    return this.restart(app, target);
  }

  async logs(app: string, query: LogQuery): Promise<LogPage> {
    const lines = this.notes.get(app) ?? [];
    return { lines: lines.slice(query.after ?? -(query.num ?? 100)), next: lines.length };
  }

  async note(app: string, dyno: string, text: string): Promise<void> {
    this.notes.set(app, [...(this.notes.get(app) ?? []), `flowops[${dyno}]: ${text}`]);
  }

  whenRestarted(): void {}

  async crashed(): Promise<Record<string, string[]>> {
    return {};
  }

  async crashes(): Promise<CrashReport[]> {
    return [];
  }

  async takeCrash(): Promise<void> {}

  url(app: string): string | null {
    return this.running.get(app)?.procfile.web ? `http://${app}.flowops.test` : null;
  }

  async close(): Promise<void> {}
}
