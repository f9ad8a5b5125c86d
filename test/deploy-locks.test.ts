import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../src/engine/access.ts';
import { Conflict, InvalidInput, NotFound } from '../src/errors.ts';
import { parseSourceRef } from '../src/source/source-ref.ts';
import { createTestEngine, type TestEngine } from './helpers/test-engine.ts';

const PROCFILE = { Procfile: 'web: node index.js\nrelease: node migrate.js\n' };

describe('deploy locks', () => {
  let t: TestEngine;
  let alice: Actor; // operate: takes locks
  let bob: Actor; // deploy: ships, cannot lock
  let mia: Actor; // manage: may force
  const operations = async () => Number((await t.database.dataSource.query('SELECT count(*)::int AS n FROM operations'))[0].n);
  const events = async (type: string) =>
    (await t.database.dataSource.query('SELECT message FROM events WHERE type = $1 ORDER BY id', [type])).map(
      (r: { message: string }) => r.message,
    );

  beforeAll(async () => {
    t = await createTestEngine();
    t.repo('/repos/shop').commit(PROCFILE, 'First version');
    await t.engine.createPipeline(t.admin, { name: 'shop', repo: '/repos/shop' });
    await t.engine.createApp(t.admin, { name: 'shop-staging', pipeline: 'shop', stage: 'staging' });
    await t.engine.createApp(t.admin, { name: 'shop-prod', pipeline: 'shop', stage: 'production' });
    alice = await t.user('alice');
    bob = await t.user('bob');
    mia = await t.user('mia');
    await t.engine.addAccess(t.admin, 'shop', 'alice', 'operate');
    await t.engine.addAccess(t.admin, 'shop', 'bob', 'deploy');
    await t.engine.addAccess(t.admin, 'shop', 'mia', 'manage');
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'shop', stage: 'staging' }));
    await t.settled(await t.engine.promote(t.admin, { pipeline: 'shop' }));
  });
  afterAll(() => t.close());

  it('refuses everyone but the holder, naming the holder, the reason and the times; the holder still ships', async () => {
    const lock = await t.engine.lock(alice, 'shop:staging', { reason: 'migrating the orders table', for: '1h' });
    expect(lock).toMatchObject({ target: 'shop:staging', holder: 'alice', reason: 'migrating the orders table', stage: 'staging' });
    expect(Date.parse(lock.until) - Date.parse(lock.since)).toBeGreaterThan(3_590_000);
    const before = await operations();

    const refused = t.engine.deploy(bob, { pipeline: 'shop', stage: 'staging' });

    await expect(refused).rejects.toThrow(Conflict);
    await expect(refused).rejects.toThrow(
      /shop:staging is locked by alice since (?:\w{3} \d{1,2} \w{3} )?\d\d:\d\d UTC, until (?:\w{3} \d{1,2} \w{3} )?\d\d:\d\d UTC \("migrating the orders table"\)\. Only alice can ship there/,
    );
    await expect(t.engine.setConfig(bob, 'shop-staging', { A: '1' })).rejects.toThrow(/locked by alice/);
    await expect(t.engine.rollback(bob, 'shop-staging', 1)).rejects.toThrow(/locked by alice/);
    expect(await operations()).toBe(before);
    // Production is not locked: a promotion goes there.
    expect((await t.settled(await t.engine.promote(bob, { pipeline: 'shop' }))).status).toBe('succeeded');
    // The holder ships.
    expect((await t.settled(await t.engine.deploy(alice, { pipeline: 'shop', stage: 'staging' }))).status).toBe('succeeded');
    expect((await t.engine.pipelineInfo(bob, 'shop')).apps.find((a) => a.name === 'shop-staging')!.lock).toMatchObject({
      holder: 'alice',
      target: 'shop:staging',
    });
    expect(await events('lock.added')).toEqual([
      expect.stringMatching(/^alice locked shop:staging until (?:\w{3} \d{1,2} \w{3} )?\d\d:\d\d UTC: migrating the orders table$/),
    ]);
  });

  it('needs operate to lock, and refuses a lock on a target someone else holds', async () => {
    await expect(t.engine.lock(bob, 'shop-prod')).rejects.toThrow(/needs operate on shop; you have deploy/);
    await expect(t.engine.lock(mia, 'shop:staging')).rejects.toThrow(/shop:staging is already locked: alice since/);
    await expect(t.engine.lock(alice, 'shop-prod', { for: 'forever' })).rejects.toThrow(InvalidInput);
    await expect(t.engine.lock(alice, 'shop-prod', { for: '3d' })).rejects.toThrow(/at most 1d here \(FLOW_LOCK_MAX\)/);
    await expect(t.engine.lock(alice, 'shop:nowhere')).rejects.toThrow(/"nowhere" is not a stage/);
    await expect(t.engine.lock(alice, 'nope-app')).rejects.toThrow(NotFound);
  });

  it('lets a manager ship through a lock with --force and a reason, announced; refuses it without a reason or without manage', async () => {
    await expect(t.engine.deploy(mia, { pipeline: 'shop', stage: 'staging', force: true })).rejects.toThrow(/--force needs a --reason/);
    await expect(t.engine.deploy(bob, { pipeline: 'shop', stage: 'staging', force: true, reason: 'hotfix' })).rejects.toThrow(
      /--force needs manage on shop/,
    );

    const forced = await t.settled(
      await t.engine.deploy(mia, { pipeline: 'shop', stage: 'staging', force: true, reason: 'checkout is down' }),
    );

    expect(forced.status).toBe('succeeded');
    expect(await events('lock.overridden')).toEqual(["mia shipped through alice's lock on shop:staging with --force: checkout is down"]);
  });

  it('is ended by anyone with operate, and says whose it was', async () => {
    await t.engine.addAccess(t.admin, 'shop', 'bob', 'operate');

    const ended = await t.engine.unlock(bob, 'shop:staging');

    expect(ended.holder).toBe('alice');
    expect(await events('lock.removed')).toEqual(['bob unlocked shop:staging (locked by alice)']);
    await expect(t.engine.unlock(bob, 'shop:staging')).rejects.toThrow(/shop:staging is not locked/);
    expect(await t.engine.locks(bob, 'shop')).toEqual([]);
    await t.engine.addAccess(t.admin, 'shop', 'bob', 'deploy');
  });

  it('keeps an auto-deploy out of a locked stage, and says why', async () => {
    await t.engine.setAutodeploy(t.admin, 'shop', { branch: 'main', stage: 'staging' });
    await t.engine.lock(alice, 'shop:staging', { reason: 'demo at 3' });
    const sha = await t.repo('/repos/shop').resolve('main');
    const before = await operations();

    await t.engine.pushed({ repo: parseSourceRef('/repos/shop'), branch: 'main', sha, pusher: 'dana' });

    expect(await operations()).toBe(before);
    expect(await events('autodeploy.failed')).toEqual([
      expect.stringMatching(/did not start: shop:staging is locked by alice .*\("demo at 3"\)/),
    ]);
    await t.engine.unlock(alice, 'shop:staging');
    await t.engine.setAutodeploy(t.admin, 'shop', null);
  });

  it('expires on its own, and the feeds hear of it', async () => {
    await t.engine.lock(alice, 'shop-prod', { for: '1s', reason: 'quick check' });
    await expect(t.engine.rollback(bob, 'shop-prod')).rejects.toThrow(/shop-prod is locked by alice/);
    await sleep(1100);

    await t.engine.expireLocks();

    expect(await events('lock.expired')).toEqual(["alice's lock on shop-prod expired"]);
    expect(await t.engine.locks(alice)).toEqual([]);
    expect((await t.settled(await t.engine.rollback(bob, 'shop-prod'))).status).toBe('succeeded');
  });
});
