import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../src/engine/access.ts';
import type { ApprovalView } from '../src/engine/views.ts';
import { Conflict, NotFound, PermissionDenied } from '../src/errors.ts';
import { createTestEngine, type TestEngine } from './helpers/test-engine.ts';

const PROCFILE = { Procfile: 'web: node index.js\n' };

/** The two-person rule, through the engine: the CLI and Slack are two fronts over these calls. */
describe('approvals', () => {
  let t: TestEngine;
  let bob: Actor; // deploy: asks
  let carol: Actor; // deploy: approves
  let dan: Actor; // deploy: a second approver
  let vic: Actor; // view: may not approve
  let mia: Actor; // manage
  let stranger: Actor; // nothing on shop
  const count = async (sql: string, params: unknown[] = []) => Number((await t.database.dataSource.query(sql, params))[0].n);
  const operations = () => count('SELECT count(*)::int AS n FROM operations');
  const events = async (type: string) =>
    (await t.database.dataSource.query('SELECT message FROM events WHERE type = $1 ORDER BY id', [type])).map(
      (r: { message: string }) => r.message,
    );
  const asRequest = (v: { kind: string }) => {
    expect(v.kind).toBe('approval');
    return v as ApprovalView;
  };
  const production = async () => (await t.engine.pipelineInfo(t.admin, 'shop')).apps.find((a) => a.name === 'shop')!.release;

  beforeAll(async () => {
    t = await createTestEngine();
    t.repo('/repos/shop').commit(PROCFILE, 'First version');
    await t.engine.createPipeline(t.admin, { name: 'shop', repo: '/repos/shop' });
    await t.engine.createApp(t.admin, { name: 'shop-staging', pipeline: 'shop', stage: 'staging' });
    await t.engine.createApp(t.admin, { name: 'shop', pipeline: 'shop', stage: 'production' });
    bob = await t.user('bob');
    carol = await t.user('carol');
    dan = await t.user('dan');
    vic = await t.user('vic');
    mia = await t.user('mia');
    stranger = await t.user('stranger');
    for (const name of ['bob', 'carol', 'dan']) await t.engine.addAccess(t.admin, 'shop', name, 'deploy');
    await t.engine.addAccess(t.admin, 'shop', 'vic', 'view');
    await t.engine.addAccess(t.admin, 'shop', 'mia', 'manage');
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'shop', stage: 'staging' }));
    await t.settled(await t.engine.promote(t.admin, { pipeline: 'shop' }));
  });
  afterAll(() => t.close());

  it('is set by managers, on the stages people ship to by hand, for 1 to 5 approvers', async () => {
    await expect(t.engine.requireApprovals(bob, 'shop', 'production')).rejects.toThrow(/needs manage on shop; you have deploy/);
    await expect(t.engine.requireApprovals(stranger, 'shop', 'production')).rejects.toThrow(NotFound);
    await expect(t.engine.requireApprovals(mia, 'shop', 'review')).rejects.toThrow(/review cannot need approvals/);
    await expect(t.engine.requireApprovals(mia, 'shop', 'production', 6)).rejects.toThrow(/1 to 5/);
    await expect(t.engine.disableApprovals(mia, 'shop', 'production')).rejects.toThrow(/does not need approvals/);

    expect(await t.engine.requireApprovals(mia, 'shop', 'prod')).toEqual({ pipeline: 'shop', stage: 'production', approvers: 1 });

    expect((await t.engine.approvals(vic, 'shop')).rules).toEqual([{ pipeline: 'shop', stage: 'production', approvers: 1 }]);
    expect(await events('approvals.required')).toEqual([
      'mia made shop:production need 1 approval for every deploy, promotion and rollback',
    ]);
  });

  it('turns a promotion into a request that its requester cannot approve; a second person ships the pinned slug as the requester', async () => {
    const shippedSlug = (await t.engine.pipelineInfo(t.admin, 'shop')).apps.find((a) => a.name === 'shop-staging')!.release!;
    t.repo('/repos/shop').commit({ 'a.js': '2' }, 'Faster checkout');
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'shop', stage: 'staging' }));
    const v2 = (await t.engine.pipelineInfo(t.admin, 'shop')).apps.find((a) => a.name === 'shop-staging')!.release!;
    const before = await operations();

    const request = asRequest(await t.engine.promote(bob, { pipeline: 'shop' }));

    expect(request).toMatchObject({
      status: 'pending',
      requester: 'bob',
      stage: 'production',
      needed: 1,
      targets: ['shop'],
      operation: null,
    });
    expect(request.description).toBe(`Promote shop-staging v${v2.version} ${v2.commit!.slice(0, 7)} to shop (production)`);
    expect(await operations()).toBe(before); // nothing ran
    await expect(t.engine.approve(bob, request.id)).rejects.toThrow(
      /you asked for request \d+; someone else with deploy on shop approves it/,
    );
    await expect(t.engine.approve(vic, request.id)).rejects.toThrow(PermissionDenied);
    await expect(t.engine.approve(stranger, request.id)).rejects.toThrow(NotFound);
    // Meanwhile staging moves on: the request still ships what was asked for.
    t.repo('/repos/shop').commit({ 'a.js': '3' }, 'Untested idea');
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'shop', stage: 'staging' }));
    // A newer release does not silently replace the waiting request.
    await expect(t.engine.promote(carol, { pipeline: 'shop' })).rejects.toThrow(
      /request \d+ \(bob: Promote shop-staging v2 .*\) already waits for approval there/,
    );
    expect((await t.engine.approvalReport(request.id))!.sourceNow).toMatchObject({ app: 'shop-staging', version: v2.version + 1 });

    const approved = await t.engine.approve(carol, request.id);

    expect(approved).toMatchObject({ status: 'shipped', approvals: [{ user: 'carol' }] });
    const op = await t.settled((await t.engine.operation(t.admin, approved.operation!)).operation);
    expect(op.status).toBe('succeeded');
    const live = (await production())!;
    expect(live.commit).toBe(v2.commit); // the approved release, not staging's newer one
    expect(live.slug).toBe(v2.slug);
    expect(live.slug).not.toBe(shippedSlug.slug);
    const started = await t.database.dataSource.query("SELECT actor FROM events WHERE operation_id = $1 AND type = 'promote.started'", [
      op.id,
    ]);
    expect(started[0].actor).toBe('bob'); // it runs as the requester
    await expect(t.engine.approve(dan, request.id)).rejects.toThrow(/was approved already; nothing changed/);
    expect((await t.engine.approvals(bob, 'shop')).requests).toEqual([]);
  });

  it('needs distinct people when it needs two, and a rejection with a reason stops it', async () => {
    await t.engine.requireApprovals(mia, 'shop', 'production', 2);
    const request = asRequest(await t.engine.rollback(bob, 'shop'));
    expect(request.description).toMatch(/^Rollback shop to v\d+$/);

    expect((await t.engine.approve(carol, request.id)).approvals).toHaveLength(1);
    await expect(t.engine.approve(carol, request.id)).rejects.toThrow(
      /you have approved request \d+ already; it needs 2 distinct approvals/,
    );
    await expect(t.engine.reject(dan, request.id, '  ')).rejects.toThrow(/say why/);
    const rejected = await t.engine.reject(dan, request.id, 'the migration is not reversible');

    expect(rejected).toMatchObject({ status: 'rejected', decidedBy: 'dan', reason: 'the migration is not reversible', operation: null });
    await expect(t.engine.approve(mia, request.id)).rejects.toThrow(/was rejected by dan; nothing changed/);
    expect(await events('approval.rejected')).toEqual([
      expect.stringMatching(/^dan rejected request \d+ \(Rollback shop to v\d+\): the migration is not reversible$/),
    ]);
  });

  it('lets the requester withdraw their own request, and expires what nobody decides', async () => {
    const mine = asRequest(await t.engine.rollback(bob, 'shop'));
    expect(await t.engine.reject(bob, mine.id, 'wrong version')).toMatchObject({ status: 'withdrawn', decidedBy: 'bob' });

    const lapsed = asRequest(await t.engine.rollback(bob, 'shop'));
    await t.database.dataSource.query("UPDATE approval_requests SET expires_at = now() - interval '1 second' WHERE id = $1", [lapsed.id]);
    await expect(t.engine.approve(carol, lapsed.id)).rejects.toThrow(/request \d+ expired at .*; ask again/);
    await t.engine.expireApprovals();

    expect(await t.engine.approval(vic, lapsed.id)).toMatchObject({ status: 'expired', decidedBy: 'flowops' });
    expect(await events('approval.expired')).toEqual([
      expect.stringMatching(/^Request \d+ \(bob: Rollback shop to v\d+\) expired without its approvals/),
    ]);
    // The sweep ends it once: a second sweep says nothing more.
    await t.engine.expireApprovals();
    expect(await events('approval.expired')).toHaveLength(1);
  });

  it('lets a manager ship past it in an emergency with --force and a reason, announced', async () => {
    const before = await operations();
    await expect(t.engine.deploy(bob, { pipeline: 'shop', stage: 'production', force: true, reason: 'outage' })).rejects.toThrow(
      /--force needs manage on shop/,
    );
    await expect(t.engine.deploy(mia, { pipeline: 'shop', stage: 'production', force: true })).rejects.toThrow(/--force needs a --reason/);
    expect(await operations()).toBe(before);

    const op = await t.settled(
      await t.engine.deploy(mia, { pipeline: 'shop', stage: 'production', force: true, reason: 'checkout is down' }),
    );

    expect(op.status).toBe('succeeded');
    expect(await events('approval.bypassed')).toEqual([
      expect.stringMatching(/^mia shipped without approval with --force \(Deploy \w{7} to shop \(production\)\): checkout is down$/),
    ]);
  });

  it('ends failed, saying why, when the approved request cannot start (the requester lost deploy)', async () => {
    await t.engine.requireApprovals(mia, 'shop', 'production', 1);
    const request = asRequest(await t.engine.deploy(bob, { pipeline: 'shop', stage: 'production' }));
    expect(request.description).toMatch(/^Deploy \w{7} to shop \(production\)$/);
    await t.engine.removeAccess(t.admin, 'shop', 'bob');
    const before = await operations();

    const approved = await t.engine.approve(carol, request.id);

    expect(approved.status).toBe('failed');
    expect(approved.reason).toMatch(/no pipeline "shop" that you can see/);
    expect(await operations()).toBe(before);
    expect(await events('approval.failed')).toEqual([expect.stringMatching(/was approved but did not start/)]);
    await t.engine.addAccess(t.admin, 'shop', 'bob', 'deploy');
  });

  it('ships a request once when two people approve it at the same moment', async () => {
    await t.engine.requireApprovals(mia, 'shop', 'production', 1);
    const request = asRequest(await t.engine.deploy(bob, { pipeline: 'shop', stage: 'production' }));
    const before = await operations();

    const outcomes = await Promise.allSettled([t.engine.approve(carol, request.id), t.engine.approve(dan, request.id)]);

    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(Conflict);
    expect(String(refused.reason)).toMatch(/was approved already; nothing changed/);
    expect(await operations()).toBe(before + 1);
    await t.engine.idle();
    expect((await t.engine.approval(bob, request.id)).status).toBe('shipped');
  });

  it('refuses oversized and malformed input, changing nothing', async () => {
    const request = asRequest(await t.engine.deploy(bob, { pipeline: 'shop', stage: 'production' }));
    await expect(t.engine.reject(carol, request.id, 'x'.repeat(501))).rejects.toThrow(/a reason is at most 500 characters/);
    await expect(t.engine.approve(carol, 2 ** 31)).rejects.toThrow(NotFound);
    await expect(t.engine.approve(carol, -1)).rejects.toThrow(NotFound);
    await expect(t.engine.approve(carol, 1.5)).rejects.toThrow(NotFound);
    await expect(t.engine.promote(bob, { pipeline: 'shop', note: 'n'.repeat(501) })).rejects.toThrow(/a note is at most 500 characters/);
    expect((await t.engine.approval(bob, request.id)).status).toBe('pending');
    await t.engine.reject(bob, request.id, 'done testing');
  });

  it('stops applying when disabled; requests already waiting stay', async () => {
    const waiting = asRequest(await t.engine.deploy(bob, { pipeline: 'shop', stage: 'production' }));
    await t.engine.disableApprovals(mia, 'shop', 'production');

    // Without the rule, a promotion there just runs (the waiting request is not in its way).
    const op = await t.settled(await t.engine.promote(bob, { pipeline: 'shop' }));

    expect(op.status).toBe('succeeded');
    expect((await t.engine.approval(bob, waiting.id)).status).toBe('pending');
    await expect(t.engine.approve(stranger, 99999)).rejects.toThrow(NotFound);
    await expect(t.engine.reject(carol, waiting.id, 'superseded')).resolves.toMatchObject({ status: 'rejected' });
    await expect(t.engine.reject(carol, waiting.id, 'again')).rejects.toThrow(Conflict);
  });
});
