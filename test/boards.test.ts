import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { homeView } from '../src/blocks/pipeline-board.ts';
import { countQueries } from './helpers/queries.ts';
import { createTestEngine, type TestEngine } from './helpers/test-engine.ts';

const PROCFILE = { Procfile: 'web: node server.js\n', 'server.js': '' };

/** A pipeline with staging and production: v1 live in both, then two commits more in staging. */
async function pipeline(t: TestEngine, name: string): Promise<void> {
  const repo = t.repo(`/repos/${name}`);
  repo.commit(PROCFILE, 'First version');
  await t.engine.createPipeline(t.admin, { name, repo: `/repos/${name}` });
  await t.engine.createApp(t.admin, { name: `${name}-staging`, pipeline: name, stage: 'staging' });
  await t.engine.createApp(t.admin, { name: `${name}-production`, pipeline: name, stage: 'production' });
  await t.engine.createApp(t.admin, { name: `${name}-eu`, pipeline: name, stage: 'production' });
  await t.settled(await t.engine.deploy(t.admin, { pipeline: name, stage: 'staging' }));
  await t.settled(await t.engine.promote(t.admin, { pipeline: name }));
  repo.commit({ 'a.txt': '1' }, 'Second');
  repo.commit({ 'b.txt': '2' }, 'Third');
  await t.settled(await t.engine.deploy(t.admin, { pipeline: name, stage: 'staging' }));
  await t.settled(await t.engine.promote(t.admin, { pipeline: name }));
  repo.commit({ 'c.txt': '3' }, 'Fourth');
  await t.settled(await t.engine.deploy(t.admin, { pipeline: name, stage: 'staging' }));
}

describe('the App Home board, built from what flowops recorded', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await createTestEngine();
    for (const name of ['b01', 'b02']) await pipeline(t, name);
  });
  afterAll(() => t.close());

  it('takes the same number of queries for 2 pipelines as for 6, and asks no source while it builds', async () => {
    const asked = () => ['b01', 'b02', 'b03', 'b04', 'b05', 'b06'].reduce((n, p) => n + t.repo(`/repos/${p}`).logCalls, 0);
    const two = await countQueries(t.database.dataSource, () => t.engine.boards(t.admin));
    for (const name of ['b03', 'b04', 'b05', 'b06']) await pipeline(t, name);
    const before = asked();
    let boards!: Awaited<ReturnType<typeof t.engine.boards>>;
    const six = await countQueries(t.database.dataSource, async () => (boards = await t.engine.boards(t.admin)));

    expect(boards.pipelines.map((p) => p.name)).toEqual(['b01', 'b02', 'b03', 'b04', 'b05', 'b06']);
    expect(six).toBe(two);
    expect(six).toBeLessThanOrEqual(10);
    expect(asked()).toBe(before);
  });

  it('shows commits not counted yet until they are, then what each Promote and Rollback ships, kept once counted', async () => {
    const fresh = await createTestEngine();
    try {
      await pipeline(fresh, 'shop');
      const repo = fresh.repo('/repos/shop');
      // Deploys and promotions asked the source for what they shipped; a board asks nothing and reads what was kept.
      await fresh.database.dataSource.query('DELETE FROM commit_logs');
      const calls = repo.logCalls;
      const first = await fresh.engine.boards(fresh.admin);
      const staging = () => first.pipelines[0]!.apps.find((a) => a.name === 'shop-staging')!;

      expect(repo.logCalls).toBe(calls);
      expect(first.counting).toBe(2);
      expect(staging().promote).toMatchObject({ downstream: 'production', unlisted: true });
      expect(JSON.stringify(homeView(first.pipelines))).toContain('not in production yet (commits not counted yet)');

      expect(await fresh.engine.countCommits(fresh.admin)).toBe(2);
      const counted = await fresh.engine.boards(fresh.admin);
      const apps = Object.fromEntries(counted.pipelines[0]!.apps.map((a) => [a.name, a]));

      expect(counted.counting).toBe(0);
      expect(apps['shop-staging']!.promote).toMatchObject({ downstream: 'production', ahead: 1, apps: ['shop-eu', 'shop-production'] });
      expect(apps['shop-staging']!.promote!.commits.map((c) => c.message)).toEqual(['Fourth']);
      // Production runs v2 (Second, Third on top of v1): Rollback goes back to v1 and takes those two away.
      expect(apps['shop-production']!.rollback).toMatchObject({ to: { version: 1 }, ahead: 2 });
      expect(apps['shop-production']!.rollback!.commits.map((c) => c.message)).toEqual(['Third', 'Second']);
      expect(JSON.stringify(homeView(counted.pipelines))).toContain('1 commit ahead of production');

      const after = repo.logCalls;
      await fresh.engine.boards(fresh.admin);
      expect(await fresh.engine.countCommits(fresh.admin)).toBe(0);
      expect(repo.logCalls).toBe(after);
    } finally {
      await fresh.close();
    }
  });

  it('shows each person only the pipelines they may see, with the buttons their permission allows', async () => {
    const dee = await t.user('dee');
    await t.engine.addAccess(t.admin, 'b02', 'dee', 'deploy');
    await t.engine.addAccess(t.admin, 'b05', 'dee', 'view');

    const boards = await t.engine.boards(dee);

    expect(boards.pipelines.map((p) => [p.name, p.canDeploy, p.canOperate])).toEqual([
      ['b02', true, false],
      ['b05', false, false],
    ]);
    expect(await t.engine.boards(await t.user('nobody'))).toEqual({ pipelines: [], counting: 0 });
  });
});
