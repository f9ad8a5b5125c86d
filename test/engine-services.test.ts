import { randomUUID } from 'node:crypto';
import { Outbox } from '../src/engine/outbox.ts';
import { parseSourceRef } from '../src/source/source-ref.ts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ReleaseEntity } from '../src/db/entities.ts';
import type { Actor } from '../src/engine/access.ts';
import { Engine } from '../src/engine/engine.ts';
import { IllegalTransition, transition } from '../src/engine/transitions.ts';
import { PermissionDenied, StaleRelease } from '../src/errors.ts';
import { MemoryPlatform } from './helpers/memory-platform.ts';
import { createTestEngine, type TestEngine } from './helpers/test-engine.ts';

const PROCFILE = { Procfile: 'web: node index.js\nrelease: node migrate.js\n' };

const gates: ((value: never) => void)[] = [];
/** A promise the test resolves: holds a scripted platform step open. A test that fails opens it in afterEach, so the next does not wait on it. */
function gate<T>(): { wait: Promise<T>; open(value: T): void } {
  let open!: (value: T) => void;
  const wait = new Promise<T>((resolve) => (open = resolve));
  gates.push(open as (value: never) => void);
  return { wait, open };
}

/** Makes pipeline `name` (repo `/repos/<name>`) with a staging and a production app, and deploys it to staging. */
async function shopPipeline(t: TestEngine, name: string): Promise<void> {
  t.repo(`/repos/${name}`).commit(PROCFILE, 'First version');
  await t.engine.createPipeline(t.admin, { name, repo: `/repos/${name}` });
  await t.engine.createApp(t.admin, { name: `${name}-staging`, pipeline: name, stage: 'staging' });
  await t.engine.createApp(t.admin, { name: `${name}-production`, pipeline: name, stage: 'production' });
  await t.settled(await t.engine.deploy(t.admin, { pipeline: name, stage: 'staging' }));
}

let t: TestEngine;
beforeAll(async () => {
  t = await createTestEngine();
});
afterEach(async () => {
  t.platform.resetScript();
  for (const open of gates.splice(0)) open(0 as never);
  await t.engine.idle();
});
afterAll(() => t.close());

describe('permissions, through the engine', () => {
  const ROLES = ['view', 'deploy', 'operate', 'manage', 'admin'] as const;
  type Role = (typeof ROLES)[number];
  const actors = {} as Record<Role, Actor>;
  let n = 0;
  /** Each operation and the weakest role that may run it. */
  const OPERATIONS: [string, Role, (a: Actor) => Promise<unknown>][] = [
    ['releases', 'view', (a) => t.engine.releases(a, 'perm-staging')],
    ['config', 'view', (a) => t.engine.config(a, 'perm-staging')],
    ['deploy', 'deploy', (a) => t.engine.deploy(a, { pipeline: 'perm', stage: 'staging' })],
    ['promote', 'deploy', (a) => t.engine.promote(a, { pipeline: 'perm' })],
    ['rollback', 'deploy', (a) => t.engine.rollback(a, 'perm-staging', 1)],
    ['config:set', 'deploy', (a) => t.engine.setConfig(a, 'perm-staging', { N: String(n++) })],
    ['ci:rerun', 'deploy', (a) => t.engine.rerunTests(a, 'perm')],
    ['apps:create', 'manage', (a) => t.engine.createApp(a, { name: `perm-dev-${n++}`, pipeline: 'perm', stage: 'development' })],
    ['access:add', 'manage', (a) => t.engine.addAccess(a, 'perm', 'perm-view', 'view')],
    ['ci:enable', 'manage', (a) => t.engine.setCi(a, 'perm', true)],
    ['pipelines:create', 'admin', (a) => t.engine.createPipeline(a, { name: `perm-new-${n++}`, repo: '/repos/perm' })],
  ];
  const cases = ROLES.flatMap((role) =>
    OPERATIONS.map(([name, needs, run]) => [role, ROLES.indexOf(role) >= ROLES.indexOf(needs) ? 'may' : 'may not', name, run] as const),
  );

  beforeAll(async () => {
    await shopPipeline(t, 'perm');
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'perm', stage: 'staging' }));
    await t.engine.setCi(t.admin, 'perm', true);
    await t.engine.pushed({
      repo: parseSourceRef('/repos/perm'),
      branch: 'main',
      sha: await t.repo('/repos/perm').resolve('main'),
      pusher: 'dana',
    });
    for (const role of ROLES) {
      actors[role] = role === 'admin' ? t.admin : await t.user(`perm-${role}`);
      if (role !== 'admin') await t.engine.addAccess(t.admin, 'perm', `perm-${role}`, role);
    }
  });

  it.each(cases)('%s %s %s', async (role, may, _name, run) => {
    const result = run(actors[role]);

    if (may === 'may') await expect(result).resolves.toBeDefined();
    else await expect(result).rejects.toThrow(PermissionDenied);
    await t.engine.idle();
  });

  it('shows a user without a grant nothing, not even that the pipeline exists', async () => {
    const stranger = await t.user('perm-stranger');

    await expect(t.engine.releases(stranger, 'perm-staging')).rejects.toThrow('no app "perm-staging" that you can see');
    await expect(t.engine.deploy(stranger, { pipeline: 'perm', stage: 'staging' })).rejects.toThrow('no pipeline "perm" that you can see');
  });
});

describe('releases', () => {
  beforeAll(() => shopPipeline(t, 'rel'));

  it('gives many simultaneous deploys and config changes versions 1..N, no gaps, no duplicates', async () => {
    const deploys = Array.from({ length: 8 }, () => t.engine.deploy(t.admin, { pipeline: 'rel', stage: 'staging' }));
    const configs = Array.from({ length: 4 }, (_, i) => t.engine.setConfig(t.admin, 'rel-staging', { [`N${i}`]: String(i) }));

    const ops = await Promise.all([...deploys, ...configs]);
    await t.engine.idle();

    expect(new Set(ops.map((op) => op.id)).size).toBe(12);
    const releases = await t.engine.releases(t.admin, 'rel-staging');
    expect(releases.map((r) => r.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
    expect(releases.every((r) => r.status === 'succeeded')).toBe(true);
    expect(releases.filter((r) => r.current).map((r) => r.version)).toEqual([13]);
  });

  it('fails a release whose release phase fails, and the app keeps its current release', async () => {
    const before = (await t.engine.releases(t.admin, 'rel-staging')).find((r) => r.current)!;
    t.platform.script.releasePhase = () => 1;

    const op = await t.settled(await t.engine.deploy(t.admin, { pipeline: 'rel', stage: 'staging' }));

    expect(op.status).toBe('failed');
    expect(op.targets[0]).toMatchObject({ status: 'failed', version: before.version + 1 });
    const [failed, ...rest] = await t.engine.releases(t.admin, 'rel-staging');
    expect(failed).toMatchObject({ version: before.version + 1, status: 'failed', current: false });
    expect(rest.find((r) => r.current)?.version).toBe(before.version);
    expect(t.platform.running.get('rel-staging')?.version).toBe(before.version);
  });

  it('promotes the staging slug unchanged to production, without a build, leaving its config alone', async () => {
    await t.settled(await t.engine.setConfig(t.admin, 'rel-production', { DATABASE: 'prod' }));
    const staging = (await t.engine.releases(t.admin, 'rel-staging')).find((r) => r.current)!;
    const builds = t.platform.builds.length;

    const op = await t.settled(await t.engine.promote(t.admin, { pipeline: 'rel' }));

    expect(op.status).toBe('succeeded');
    const production = (await t.engine.releases(t.admin, 'rel-production')).find((r) => r.current)!;
    expect(production).toMatchObject({
      slug: staging.slug,
      commit: staging.commit,
      description: `Promote rel-staging v${staging.version} ${staging.commit!.slice(0, 7)}`,
    });
    expect(t.platform.builds.length).toBe(builds);
    expect((await t.engine.config(t.admin, 'rel-production')).vars).toEqual({ DATABASE: 'prod' });
  });

  it('refuses a promote or rollback aimed at a release that is no longer current, and says what is', async () => {
    const current = (await t.engine.releases(t.admin, 'rel-staging')).find((r) => r.current)!;

    await expect(t.engine.promote(t.admin, { pipeline: 'rel', ifVersion: current.version - 1 })).rejects.toThrow(StaleRelease);
    await expect(t.engine.promote(t.admin, { pipeline: 'rel', ifVersion: current.version - 1 })).rejects.toMatchObject({
      current: { app: 'rel-staging', version: current.version, commit: current.commit },
    });
    await expect(t.engine.rollback(t.admin, 'rel-staging', undefined, { ifCurrent: current.version - 1 })).rejects.toThrow(StaleRelease);
    expect((await t.engine.releases(t.admin, 'rel-staging')).length).toBe(current.version + 1);

    expect((await t.settled(await t.engine.promote(t.admin, { pipeline: 'rel', ifVersion: current.version }))).status).toBe('succeeded');
    expect((await t.settled(await t.engine.rollback(t.admin, 'rel-staging', undefined, { ifCurrent: current.version }))).status).toBe(
      'succeeded',
    );
  });
});

describe('status transitions', () => {
  beforeAll(() => shopPipeline(t, 'flow'));

  it('moves an operation pending → running → succeeded and its release pending → succeeded', async () => {
    const phase = gate<number>();
    t.platform.script.releasePhase = () => phase.wait;

    const op = await t.engine.deploy(t.admin, { pipeline: 'flow', stage: 'staging' });
    expect(op.status).toBe('pending');
    await waitUntil(async () => t.platform.releasePhases.some((r) => r.app === 'flow-staging' && r.version === 2));
    expect((await t.engine.operation(t.admin, op.id)).operation.status).toBe('running');
    expect((await t.engine.releases(t.admin, 'flow-staging'))[0]).toMatchObject({ version: 2, status: 'pending', current: false });
    phase.open(0);

    expect((await t.settled(op)).status).toBe('succeeded');
    expect((await t.engine.releases(t.admin, 'flow-staging'))[0]).toMatchObject({ version: 2, status: 'succeeded', current: true });
  });

  it('refuses to move an ended release or operation again, and writes nothing', async () => {
    const m = t.database.dataSource.manager;
    const latest = await m.findOneOrFail(ReleaseEntity, { where: { status: 'succeeded' }, order: { id: 'DESC' } });

    await expect(transition(m, 'release', latest.id, 'failed')).rejects.toThrow(
      new IllegalTransition('release', 'succeeded', 'failed', latest.id),
    );
    await expect(transition(m, 'operation', latest.operationId!, 'running')).rejects.toThrow('cannot go from succeeded to running');
    expect((await m.findOneByOrFail(ReleaseEntity, { id: latest.id })).status).toBe('succeeded');
  });

  it('ends an operation whose runner died as failed (interrupted), with its pending release, and keeps the current release', async () => {
    const phase = gate<number>();
    t.platform.script.releasePhase = () => phase.wait;
    const op = await t.engine.deploy(t.admin, { pipeline: 'flow', stage: 'staging' });
    await waitUntil(async () => t.platform.releasePhases.some((r) => r.app === 'flow-staging' && r.version === 3));

    // Another flowops process starts; this one never registered as a runner, so it counts as dead.
    const other = new Engine(t.database.dataSource, new MemoryPlatform(), {
      openSource: async () => t.repo('/repos/flow'),
      outbox: new Outbox(t.database.dataSource, randomUUID()),
    });
    await other.start();
    await other.stop();

    const interrupted = (await t.engine.operation(t.admin, op.id)).operation;
    expect(interrupted).toMatchObject({ status: 'failed', error: 'interrupted: flowops stopped while this operation was running' });
    expect((await t.engine.releases(t.admin, 'flow-staging')).slice(0, 2)).toMatchObject([
      { version: 3, status: 'failed', current: false },
      { version: 2, status: 'succeeded', current: true },
    ]);
    phase.open(0);
    // The slow runner's late outcome is refused: an interrupted operation stays as it ended.
    expect((await t.settled(op)).status).toBe('failed');
  });

  it('moves a test run pending → building → running → succeeded or failed, and a cancelled one stays cancelled', async () => {
    await t.engine.setCi(t.admin, 'flow', true);
    const sha = await t.repo('/repos/flow').resolve('main');
    const tests = gate<number | null>();
    t.platform.script.tests = () => tests.wait;

    await t.engine.pushed({ repo: parseSourceRef('/repos/flow'), branch: 'main', sha: sha, pusher: 'dana' });
    await waitUntil(async () => (await t.engine.testRuns(t.admin, 'flow'))[0]?.status === 'running');
    tests.open(0);
    await t.engine.idle();
    t.platform.script.tests = () => 1;
    await t.engine.pushed({ repo: parseSourceRef('/repos/flow'), branch: 'main', sha: sha, pusher: 'dana' });
    await t.engine.idle();
    const held = gate<number | null>();
    t.platform.script.tests = () => held.wait;
    await t.engine.pushed({ repo: parseSourceRef('/repos/flow'), branch: 'main', sha: sha, pusher: 'dana' });
    await waitUntil(async () => (await t.engine.testRuns(t.admin, 'flow'))[0]?.status === 'running');
    await t.engine.cancelTests(t.admin, 'flow', 3);
    held.open(0);
    await t.engine.idle();

    expect((await t.engine.testRuns(t.admin, 'flow')).map((r) => [r.number, r.status])).toEqual([
      [3, 'cancelled'],
      [2, 'failed'],
      [1, 'succeeded'],
    ]);
    await expect(t.engine.cancelTests(t.admin, 'flow', 3)).rejects.toThrow('has already ended (cancelled)');
  });

  it('moves a review app pending → creating → created, deleting → deleted on close, and back on reopen', async () => {
    t.repo('github:acme/flow').commit(PROCFILE, 'First version');
    await t.engine.createPipeline(t.admin, { name: 'review', repo: 'github:acme/flow' });
    await t.engine.setReviewApps(t.admin, 'review', { autodeploy: true, autodestroy: false });
    const pr = {
      repo: parseSourceRef('github:acme/flow'),
      pr: 7,
      branch: 'feature',
      sha: await t.repo('github:acme/flow').resolve('main'),
      fork: false,
    };
    const statuses = async () => (await t.engine.reviewApps(t.admin, 'review')).map((r) => r.status);

    await t.engine.pullRequestChanged({ ...pr, action: 'opened' });
    expect(await statuses()).toEqual(['created']);
    await t.engine.pullRequestChanged({ ...pr, action: 'closed' });
    expect(await statuses()).toEqual(['deleted']);
    t.platform.script.releasePhase = () => 1;
    await t.engine.pullRequestChanged({ ...pr, action: 'opened' });
    t.platform.script.releasePhase = () => 0;
    expect(await statuses()).toEqual(['errored']);
    await t.engine.pullRequestChanged({ ...pr, action: 'updated' });
    expect(await statuses()).toEqual(['created']);

    const events = await t.database.dataSource.query(`SELECT type FROM events WHERE type LIKE 'reviewapp.%' ORDER BY id`);
    expect(events.map((e: { type: string }) => e.type.slice('reviewapp.'.length))).toEqual([
      'creating',
      'created',
      'deleting',
      'deleted',
      'creating',
      'errored',
      'created',
    ]);
  });
});

/** Polls `check` until it holds (a held step has been reached); fails after two seconds. */
async function waitUntil(check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + 2_000;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
