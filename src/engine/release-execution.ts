import { type EntityManager } from 'typeorm';
import {
  AppEntity,
  BuildEntity,
  OperationEntity,
  PipelineEntity,
  ReleaseEntity,
  SlugEntity,
  UserEntity,
  type App,
  type FailedPhase,
  type Operation,
  type OperationTarget,
  type Pipeline,
  type Release,
  type Slug,
} from '../db/entities.ts';
import { untilDatabaseAnswers } from '../db/outage.ts';
import type { BuildProgress, BuiltSlug, ReleaseSpec } from '../platform/platform.ts';
import { type Source } from '../source/source.ts';
import { short } from '../format.ts';
import { AppLocks } from './app-lock.ts';
import type { EngineContext } from './context.ts';
import { PhaseFailed, type Progress } from './operations.ts';
import { transition } from './transitions.ts';

export interface NewRelease {
  slugId: string | null;
  commit: string | null;
  description: string;
  /** Config of the release; default: the app's config vars. Rollback restores an old one. */
  config?: Record<string, string>;
}
/** What the platform needs to run a release of an app: its slug's processes and the release's config. */
export function releaseSpecOf(app: App, release: Release, slug: Slug): ReleaseSpec {
  return {
    app: app.name,
    releaseId: release.id,
    version: release.version,
    slugId: slug.id,
    procfile: slug.procfile,
    config: release.config,
    formation: app.formation,
    platform: app.platform,
    namespace: app.namespace,
  };
}

/** Builds and releases, the work of an operation: one release at a time per app, under the app's lock. */
export class ReleaseExecution {
  private readonly locks: AppLocks;

  constructor(private readonly ctx: EngineContext) {
    this.locks = new AppLocks(ctx.db);
  }

  /**
   * Builds a commit into a slug (two builds at a time) and records the slug: the
   * one build path of deploys and CI test runs.
   */
  async buildSlug(pipeline: Pipeline, source: Source, sha: string, progress: BuildProgress): Promise<BuiltSlug> {
    const slug = await this.ctx.builds.add(() => this.ctx.platform.build(source, sha, progress, pipeline.repo));
    await untilDatabaseAnswers({ pipeline: pipeline.name, step: 'slug' }, () =>
      this.ctx.db.getRepository(SlugEntity).upsert({ id: slug.id, size: String(slug.size), commit: sha, procfile: slug.procfile }, ['id']),
    );
    return slug;
  }

  async build(op: Operation, pipeline: Pipeline, source: Source, sha: string, progress: Progress): Promise<string> {
    const builds = this.ctx.db.getRepository(BuildEntity);
    const durably = <T>(step: string, work: () => Promise<T>) => untilDatabaseAnswers({ operation: op.id, step }, work);
    const build = await durably('build', () =>
      builds.save(builds.create({ pipelineId: pipeline.id, commit: sha, status: 'pending', operationId: op.id })),
    );
    await progress(`Building ${short(sha)}...`);
    let output = '';
    let steps = Promise.resolve();
    try {
      const slug = await this.buildSlug(pipeline, source, sha, {
        output: (chunk) => {
          output += chunk;
        },
        step: (text, detail) => {
          steps = steps.then(() => progress(detail ? `  ${text}` : text));
        },
      });
      await steps;
      await durably('build', () =>
        this.ctx.transaction(async (m) => {
          await transition(m, 'build', build.id, 'succeeded', { output, slugId: slug.id });
          await this.ctx.emit(m, {
            type: 'build.succeeded',
            pipeline: pipeline.name,
            operationId: op.id,
            via: 'system',
            message: `Built ${short(sha)} into slug ${slug.id.slice(0, 12)}`,
            data: { slug: slug.id, size: slug.size },
          });
        }),
      );
      return slug.id;
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      await durably('build', () => transition(this.ctx.db.manager, 'build', build.id, 'failed', { output: `${output}\n${why}` }));
      throw new PhaseFailed(`build of ${short(sha)} failed: ${why}`, 'build');
    }
  }

  /**
   * One release on one app, under the app's lock: a new version, the release
   * phase, then the processes. The app keeps its current release unless every
   * step succeeds.
   */
  async release(op: Operation, target: App, make: (current: Release | null) => NewRelease, progress: Progress): Promise<void> {
    const setTarget = async (m: EntityManager, patch: Partial<OperationTarget>) => {
      // The operation's other targets write the same row at the same time: lock it, or one's version is lost.
      await m.query('SELECT id FROM operations WHERE id = $1 FOR UPDATE', [op.id]);
      const fresh = await m.findOneByOrFail(OperationEntity, { id: op.id });
      await m.update(
        OperationEntity,
        { id: op.id },
        { targets: fresh.targets.map((t) => (t.app === target.name ? { ...t, ...patch } : t)) },
      );
    };
    // Each step waits out a database outage: a release phase that ran must not end up `pending` for want of a connection.
    const durably = <T>(step: string, work: () => Promise<T>) => untilDatabaseAnswers({ operation: op.id, app: target.name, step }, work);
    await this.locks.withLock(target.id, op.id, async () => {
      const pipeline = await durably('release', () => this.ctx.db.getRepository(PipelineEntity).findOneByOrFail({ id: target.pipelineId }));
      const app = await durably('release', () => this.ctx.db.getRepository(AppEntity).findOneByOrFail({ id: target.id }));
      const current = app.currentReleaseId
        ? await durably('release', () => this.ctx.db.getRepository(ReleaseEntity).findOneBy({ id: app.currentReleaseId! }))
        : null;
      const spec = make(current);
      const release = await durably('release', () =>
        this.ctx.transaction(async (m) => {
          const [{ last_version: version }] = (
            await m.query('UPDATE apps SET last_version = last_version + 1 WHERE id = $1 RETURNING last_version', [app.id])
          )[0] as [{ last_version: number }];
          if (spec.config) await m.update(AppEntity, { id: app.id }, { config: spec.config });
          const release = await m.save(
            ReleaseEntity,
            m.create(ReleaseEntity, {
              appId: app.id,
              version,
              slugId: spec.slugId,
              commit: spec.commit,
              config: spec.config ?? app.config,
              description: spec.description,
              status: 'pending',
              operationId: op.id,
            }),
          );
          await setTarget(m, { version });
          await this.ctx.emit(m, {
            type: 'release.created',
            pipeline: pipeline.name,
            app: app.name,
            operationId: op.id,
            via: 'system',
            message: `${app.name} v${version}: ${spec.description}`,
            data: { version, commit: spec.commit, stage: app.stage },
          });
          return release;
        }),
      );

      let output = '';
      const fail = async (why: string, phase: FailedPhase) => {
        await durably('release outcome', () =>
          this.ctx.transaction(async (m) => {
            await transition(m, 'release', release.id, 'failed', { output });
            await setTarget(m, { status: 'failed', error: why, phase });
            await this.ctx.emit(m, {
              type: 'release.failed',
              pipeline: pipeline.name,
              app: app.name,
              operationId: op.id,
              via: 'system',
              message: `${app.name} v${release.version} failed: ${why}`,
              data: { version: release.version, commit: release.commit, stage: app.stage },
            });
          }),
        );
      };
      const slug = spec.slugId
        ? await durably('release', () => this.ctx.db.getRepository(SlugEntity).findOneByOrFail({ id: spec.slugId! }))
        : null;
      if (slug) {
        const releaseSpec = releaseSpecOf(app, release, slug);
        if (slug.procfile.release) await progress(`Running release phase for ${app.name} v${release.version}...`, app.name);
        let phase: { code: number };
        try {
          phase = await this.ctx.platform.releasePhase(releaseSpec, (chunk) => {
            output += chunk;
          });
        } catch (err) {
          // The release phase could not even start (no slug tree, no sandbox): the release fails, it is never left pending.
          output += `\n${err instanceof Error ? err.message : String(err)}\n`;
          return fail(`the release phase could not start; see \`releases:output ${app.name} v${release.version}\``, 'release');
        }
        if (phase.code !== 0)
          return fail(`release phase exited with ${phase.code}; see \`releases:output ${app.name} v${release.version}\``, 'release');
        await progress(`Starting ${app.name} v${release.version}...`, app.name);
        try {
          // The formation as it is now: a ps:scale during the release phase is not undone.
          const now = await durably('release', () => this.ctx.db.getRepository(AppEntity).findOneByOrFail({ id: app.id }));
          releaseSpec.formation = now.formation;
          await this.ctx.platform.start(releaseSpec, (chunk) => {
            output += chunk;
          });
        } catch (err) {
          output += `\n${err instanceof Error ? err.message : String(err)}\n`;
          return fail(`processes did not start; see \`releases:output ${app.name} v${release.version}\``, 'start');
        }
      }
      await durably('release outcome', () =>
        this.ctx.transaction(async (m) => {
          await transition(m, 'release', release.id, 'succeeded', { output });
          await m.update(AppEntity, { id: app.id }, { currentReleaseId: release.id });
          await setTarget(m, { status: 'succeeded' });
          await this.ctx.emit(m, {
            type: 'release.succeeded',
            pipeline: pipeline.name,
            app: app.name,
            operationId: op.id,
            via: 'system',
            message: `${app.name} v${release.version} is live`,
            data: {
              version: release.version,
              commit: release.commit,
              stage: app.stage,
              url: this.ctx.platform.url(app.name, app.platform),
            },
          });
        }),
      );
      // As Heroku's API does, the release is a line in the app's log.
      const by = await this.ctx.db.getRepository(UserEntity).findOneBy({ id: op.actorId });
      await this.ctx.platform
        .note(app.name, 'api', `Release v${release.version} created by ${by?.name ?? 'flowops'}: ${release.description}`)
        .catch(() => undefined);
    });
  }
}
