import { PipelineEntity, TestRunEntity, ReviewAppEntity, type TestRun, type Pipeline } from '../db/entities.ts';
import { untilDatabaseAnswers } from '../db/outage.ts';
import { log } from '../log.ts';
import { assertRef, hasCommitStatuses } from '../source/source.ts';
import { formatSourceRef, type SourceRef } from '../source/source-ref.ts';
import { short } from '../format.ts';
import { parseStage } from './stages.ts';
import { testRunView, type TestRunView } from './views.ts';
import { REQUIRED, type Actor } from './access.ts';
import { Conflict, InvalidInput, NotFound } from '../errors.ts';
import type { EngineContext } from './context.ts';
import { SYSTEM } from './access.ts';
import type { Access } from './access-control.ts';
import type { ReleaseExecution } from './release-execution.ts';
import type { Releases } from './releases.ts';
import type { ReviewApps } from './review-apps.ts';
import { subjectKey } from './subjects.ts';
import { transition } from './transitions.ts';

/** How often a test run under way looks for its cancellation (`ci:cancel` through another replica). */
const CANCEL_POLL_MS = 1000;

/** A push to a branch, as the source host reports it. */
export interface Push {
  repo: SourceRef;
  branch: string;
  sha: string;
  /** Who pushed, as the source host names them. */
  pusher: string;
  /** The first line of the head commit's message, when the host sent it. */
  subject?: string | null;
}

/** The commit status context flowops' test runs report under. */
export const CI_CONTEXT = 'flowops/ci';
/** CI test runs on every push, and auto-deploy of green commits. */
export class Ci {
  private readonly testAborts = new Map<number, AbortController>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly authz: Access,
    private readonly execution: ReleaseExecution,
    private readonly releases: Releases,
    private readonly reviewApps: ReviewApps,
  ) {}

  async setCi(actor: Actor, pipelineName: string, enabled: boolean): Promise<{ pipeline: string; ci: boolean }> {
    const pipeline = await this.authz.authorize(
      actor,
      pipelineName,
      REQUIRED.manageApps,
      `ci:${enabled ? 'enable' : 'disable'} ${pipelineName}`,
    );
    await this.ctx.transaction(async (m) => {
      await m.update(PipelineEntity, { id: pipeline.id }, { ciEnabled: enabled });
      await this.ctx.emit(m, {
        type: `ci.${enabled ? 'enabled' : 'disabled'}`,
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: `${actor.name} turned CI ${enabled ? 'on' : 'off'} for ${pipeline.name}`,
      });
    });
    return { pipeline: pipeline.name, ci: enabled };
  }

  async setAutodeploy(
    actor: Actor,
    pipelineName: string,
    setting: { branch: string; stage?: string; waitForCi?: boolean } | null,
  ): Promise<{ pipeline: string; autodeploy: Pipeline['autodeploy'] }> {
    const pipeline = await this.authz.authorize(
      actor,
      pipelineName,
      REQUIRED.manageApps,
      `autodeploy:${setting ? 'enable' : 'disable'} ${pipelineName}`,
    );
    if (setting) assertRef(setting.branch);
    const autodeploy = setting
      ? { branch: setting.branch, stage: parseStage(setting.stage ?? 'staging'), waitForCi: !!setting.waitForCi }
      : null;
    if (autodeploy?.waitForCi && !pipeline.ciEnabled)
      throw new InvalidInput(`--wait-for-ci needs CI on ${pipeline.name}: run \`ci:enable ${pipeline.name}\` first`);
    await this.ctx.transaction(async (m) => {
      await m.update(PipelineEntity, { id: pipeline.id }, { autodeploy });
      await this.ctx.emit(m, {
        type: 'autodeploy.changed',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: autodeploy
          ? `${actor.name}: pushes to ${autodeploy.branch} deploy to ${autodeploy.stage}${autodeploy.waitForCi ? ' once CI passes' : ''}`
          : `${actor.name} turned auto-deploy off for ${pipeline.name}`,
        data: { autodeploy },
      });
    });
    return { pipeline: pipeline.name, autodeploy };
  }

  async testRuns(actor: Actor, pipelineName: string): Promise<TestRunView[]> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.read, `ci ${pipelineName}`);
    const runs = await this.ctx.db
      .getRepository(TestRunEntity)
      .find({ where: { pipelineId: pipeline.id }, order: { number: 'DESC' }, take: 20 });
    return runs.map(testRunView);
  }

  async testRunInfo(actor: Actor, pipelineName: string, number: number): Promise<TestRunView & { output: string }> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.read, `ci:info ${pipelineName}`);
    const run = await this.ctx.db.getRepository(TestRunEntity).findOneBy({ pipelineId: pipeline.id, number });
    if (!run) throw new NotFound(`${pipeline.name} has no test run #${number}; \`ci ${pipeline.name}\` lists them`);
    return { ...testRunView(run), output: run.output };
  }

  /** Runs the tests of a commit again (default: the latest run's). */
  async rerunTests(actor: Actor, pipelineName: string, number?: number): Promise<TestRunView> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.deploy, `ci:rerun ${pipelineName}`);
    const runs = this.ctx.db.getRepository(TestRunEntity);
    const previous =
      number === undefined
        ? await runs.findOne({ where: { pipelineId: pipeline.id }, order: { number: 'DESC' } })
        : await runs.findOneBy({ pipelineId: pipeline.id, number });
    if (!previous)
      throw new NotFound(number === undefined ? `${pipeline.name} has no test runs yet` : `${pipeline.name} has no test run #${number}`);
    return testRunView(await this.startTestRun(pipeline, previous.commit, previous.branch, actor));
  }

  async cancelTests(actor: Actor, pipelineName: string, number: number): Promise<TestRunView> {
    const pipeline = await this.authz.authorize(actor, pipelineName, REQUIRED.manageApps, `ci:cancel ${pipelineName}`);
    const run = await this.ctx.db.getRepository(TestRunEntity).findOneBy({ pipelineId: pipeline.id, number });
    if (!run) throw new NotFound(`${pipeline.name} has no test run #${number}`);
    if (!['pending', 'building', 'running'].includes(run.status))
      throw new Conflict(`test run #${number} has already ended (${run.status})`);
    await this.setTestRunStatus(pipeline, run, 'cancelled', `${actor.name} cancelled it`);
    this.testAborts.get(run.id)?.abort();
    return testRunView({ ...run, status: 'cancelled' });
  }

  /**
   * A branch of a repository was pushed to: for each pipeline on it, a test run
   * when CI is on, and a deploy when the branch auto-deploys without waiting for CI.
   */
  async pushed(push: Push): Promise<void> {
    const { branch, sha } = push;
    const pipelines = await this.ctx.db.getRepository(PipelineEntity).findBy({ repo: formatSourceRef(push.repo) });
    const actor: Actor = { ...SYSTEM, name: push.pusher, via: 'github' };
    for (const pipeline of pipelines) {
      if (pipeline.ciEnabled) await this.startTestRun(pipeline, sha, branch, actor);
      if (pipeline.autodeploy?.branch === branch && !pipeline.autodeploy.waitForCi) await this.autodeploy(pipeline, sha, actor);
    }
  }

  private async autodeploy(pipeline: Pipeline, sha: string, actor: Actor): Promise<void> {
    const setting = pipeline.autodeploy!;
    try {
      const shipped = await this.releases.deploy(
        { ...SYSTEM, name: actor.name, via: actor.via },
        { pipeline: pipeline.name, ref: sha, stage: setting.stage, cause: subjectKey({ kind: 'push', pipelineId: pipeline.id, sha }) },
      );
      // The stage needs approvals: the push's message says the deploy waits for them (the request has its own message).
      if (shipped.kind === 'approval')
        await this.ctx.transaction((m) =>
          this.ctx.emit(m, {
            type: 'autodeploy.awaiting',
            pipeline: pipeline.name,
            via: 'system',
            message: `Auto-deploy of ${short(sha)} to ${setting.stage} waits for approval (request ${shipped.id})`,
            data: { sha, request: shipped.id },
          }),
        );
    } catch (err) {
      await this.ctx.transaction((m) =>
        this.ctx.emit(m, {
          type: 'autodeploy.failed',
          pipeline: pipeline.name,
          via: 'system',
          message: `Auto-deploy of ${short(sha)} to ${setting.stage} did not start: ${err instanceof Error ? err.message : String(err)}`,
          data: { sha },
        }),
      );
    }
  }

  private async startTestRun(pipeline: Pipeline, sha: string, branch: string | null, actor: Actor): Promise<TestRun> {
    const run = await this.ctx.transaction(async (m) => {
      const [{ last_test_run: number }] = (
        await m.query('UPDATE pipelines SET last_test_run = last_test_run + 1 WHERE id = $1 RETURNING last_test_run', [pipeline.id])
      )[0] as [{ last_test_run: number }];
      const run = await m.save(
        TestRunEntity,
        m.create(TestRunEntity, { pipelineId: pipeline.id, number, commit: sha, branch, status: 'pending', runnerId: this.ctx.runnerId }),
      );
      await this.ctx.emit(m, {
        type: 'testrun.pending',
        pipeline: pipeline.name,
        actor: actor.name,
        via: actor.via,
        message: `Test run #${number} of ${short(sha)}${branch ? ` on ${branch}` : ''} is pending`,
        data: { number, sha, branch },
      });
      return run;
    });
    const abort = new AbortController();
    this.testAborts.set(run.id, abort);
    // `ci:cancel` may come through another replica: its cancelled status reaches this one through the database.
    const watch = setInterval(() => {
      this.ctx.db
        .getRepository(TestRunEntity)
        .findOneBy({ id: run.id })
        .then((current) => current?.status === 'cancelled' && abort.abort())
        .catch(() => undefined);
    }, CANCEL_POLL_MS);
    watch.unref();
    // The run's status changes wait out a database outage, so a run that finished is not reported errored for want of a connection.
    const setStatus = (status: TestRun['status'], why?: string, output?: string) =>
      untilDatabaseAnswers({ testRun: run.id, step: status }, () => this.setTestRunStatus(pipeline, run, status, why, output));
    void this.ctx.jobs
      .add(async () => {
        let output = '';
        try {
          const source = await this.ctx.source(pipeline);
          await setStatus('building');
          const slug = await this.execution.buildSlug(pipeline, source, sha, {
            output: (chunk) => {
              output += chunk;
            },
          });
          if (!(await setStatus('running', undefined, output))) return;
          const result = await this.ctx.platform.runTests(slug.id, (chunk) => (output += chunk), abort.signal);
          const status = result.code === null ? 'errored' : result.code === 0 ? 'succeeded' : 'failed';
          if (!(await setStatus(status, undefined, output))) return;
          // What a green run starts (an auto-deploy, review apps) reports its own failures; the run stays green.
          if (status === 'succeeded')
            await this.afterGreenRun(pipeline.id, run).catch((err: unknown) =>
              log.error({ testRun: run.id, err }, 'auto-deploy after a green test run did not start'),
            );
        } catch (err) {
          await setStatus('errored', err instanceof Error ? err.message : String(err), output);
        } finally {
          clearInterval(watch);
          this.testAborts.delete(run.id);
        }
      })
      .catch((err: unknown) => log.error({ testRun: run.id, err }, 'test run outcome not recorded'));
    return run;
  }

  /** A green run on the auto-deploy branch deploys, once every other status on the commit is green too. */
  private async afterGreenRun(pipelineId: number, run: TestRun): Promise<void> {
    const pipeline = await this.ctx.db.getRepository(PipelineEntity).findOneByOrFail({ id: pipelineId });
    if (pipeline.reviewApps?.autodeploy && pipeline.reviewApps.waitForCi) {
      const waiting = await this.ctx.db.getRepository(ReviewAppEntity).findBy({ pipelineId, headSha: run.commit, fork: false });
      for (const row of waiting.filter((r) => r.status !== 'deleting' && r.status !== 'deleted'))
        await this.reviewApps.ensureHeld(pipeline, row, { ...SYSTEM, name: 'ci', via: 'github' });
    }
    const setting = pipeline.autodeploy;
    if (!setting?.waitForCi || setting.branch !== run.branch) return;
    const source = await this.ctx.source(pipeline);
    const others = hasCommitStatuses(source) ? await source.otherStatuses(run.commit, CI_CONTEXT) : 'success';
    if (others !== 'success') {
      await this.ctx.transaction((m) =>
        this.ctx.emit(m, {
          type: 'autodeploy.skipped',
          pipeline: pipeline.name,
          via: 'system',
          message: `Not deploying ${short(run.commit)}: other checks on the commit are ${others}`,
          data: { sha: run.commit },
        }),
      );
      return;
    }
    await this.autodeploy(pipeline, run.commit, { ...SYSTEM, name: 'ci', via: 'github' });
  }

  /** Moves a run to `status` unless it was cancelled meanwhile; false when it was. Writes the event with it. */
  async setTestRunStatus(pipeline: Pipeline, run: TestRun, status: TestRun['status'], why?: string, output?: string): Promise<boolean> {
    return this.ctx.transaction(async (m) => {
      const current = await m.findOneByOrFail(TestRunEntity, { id: run.id });
      if (current.status === 'cancelled' && status !== 'cancelled') return false;
      await transition(m, 'testRun', run.id, status, output !== undefined ? { output: output + (why ? `\n${why}\n` : '') } : {});
      await this.ctx.emit(m, {
        type: `testrun.${status}`,
        pipeline: pipeline.name,
        via: 'system',
        message: `Test run #${run.number} of ${short(run.commit)} ${status}${why ? `: ${why.split('\n')[0]}` : ''}`,
        data: { number: run.number, sha: run.commit, branch: run.branch },
      });
      return true;
    });
  }
}
