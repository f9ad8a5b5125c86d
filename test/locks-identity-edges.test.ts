/**
 * Deploy locks, access:default and identity links at their edges: races,
 * overlapping locks, review apps, stale buttons, links that would absorb a user.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Actor } from '../src/engine/access.ts';
import { unlockButton } from '../src/blocks/buttons.ts';
import { commandAnswer } from '../src/blocks/command-answer.ts';
import { execute } from '../src/commands/execute.ts';
import { parseCommand } from '../src/commands/grammar.ts';
import { renderText } from '../src/commands/render-text.ts';
import { Conflict } from '../src/errors.ts';
import { parseSourceRef } from '../src/source/source-ref.ts';
import { createTestEngine, type TestEngine } from './helpers/test-engine.ts';

const PROCFILE = { Procfile: 'web: node index.js\nrelease: node migrate.js\n' };

describe('deploy locks', () => {
  let t: TestEngine;
  let alice: Actor; // operate: takes locks
  let bob: Actor; // deploy: ships, cannot lock
  let mia: Actor; // manage: may force
  const sql = (text: string, params: unknown[] = []) => t.database.dataSource.query(text, params);

  beforeAll(async () => {
    t = await createTestEngine();
    t.repo('/repos/shop').commit(PROCFILE, 'First version');
    await t.engine.createPipeline(t.admin, { name: 'shop', repo: '/repos/shop' });
    await t.engine.createApp(t.admin, { name: 'shop-staging', pipeline: 'shop', stage: 'staging' });
    await t.engine.createApp(t.admin, { name: 'shop-prod', pipeline: 'shop', stage: 'production' });
    t.repo('github:acme/rev').commit(PROCFILE, 'First version');
    await t.engine.createPipeline(t.admin, { name: 'rev', repo: 'github:acme/rev' });
    await t.engine.setReviewApps(t.admin, 'rev', { autodeploy: true, autodestroy: false });
    alice = await t.user('alice');
    bob = await t.user('bob');
    mia = await t.user('mia');
    for (const p of ['shop', 'rev']) {
      await t.engine.addAccess(t.admin, p, 'alice', 'operate');
      await t.engine.addAccess(t.admin, p, 'bob', 'deploy');
      await t.engine.addAccess(t.admin, p, 'mia', 'manage');
    }
    await t.settled(await t.engine.deploy(t.admin, { pipeline: 'shop', stage: 'staging' }));
    await t.settled(await t.engine.promote(t.admin, { pipeline: 'shop' }));
  });
  afterEach(async () => {
    t.platform.resetScript();
    await t.engine.idle();
    await sql(`UPDATE deploy_locks SET ended_at = now(), ended_by = 'test' WHERE ended_at IS NULL`);
  });
  afterAll(() => t.close());

  it('refuses a stage lock over an app someone else holds: "only mia can ship there" would be false, and nobody could', async () => {
    await t.engine.lock(alice, 'shop-staging', { reason: 'checking the cache' });

    const stage = t.engine.lock(mia, 'shop:staging', { reason: 'release train' });

    // mia is told "Only mia can ship there", yet alice's app lock keeps her out of shop-staging, and hers keeps alice out.
    await expect(stage).rejects.toThrow(Conflict);
    await expect(stage).rejects.toThrow(/alice/);
  });

  it('answers two people locking the same target at once with one lock and one Conflict, not a database error', async () => {
    for (let round = 0; round < 5; round++) {
      const results = await Promise.allSettled([t.engine.lock(alice, 'shop-prod'), t.engine.lock(mia, 'shop-prod')]);
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      expect(refused).toHaveLength(1);
      // A unique-index violation is a QueryFailedError: Slack says "flowops hit an unexpected error", the API a 500.
      expect(refused[0]).toBeInstanceOf(Conflict);
      await sql(`UPDATE deploy_locks SET ended_at = now() WHERE ended_at IS NULL`);
    }
  });

  it('lets the holder double-click Lock: the second click extends the lock instead of failing', async () => {
    for (let round = 0; round < 5; round++) {
      const results = await Promise.allSettled([t.engine.lock(alice, 'shop-prod'), t.engine.lock(alice, 'shop-prod')]);
      expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(['ok', 'ok']);
      await sql(`UPDATE deploy_locks SET ended_at = now() WHERE ended_at IS NULL`);
    }
  });

  it('does not take a lock while a deploy into the target is under way, or keeps that deploy from shipping into it', async () => {
    let build!: () => void;
    t.platform.script.build = () => new Promise<void>((resolve) => (build = resolve));
    const op = await t.engine.deploy(bob, { pipeline: 'shop', stage: 'staging' });
    await waitUntil(() => build !== undefined);

    // alice is told "Only alice can ship there"...
    const locked = await t.engine.lock(alice, 'shop:staging', { reason: 'migrating' }).then(
      () => true,
      () => false,
    );
    build();
    const done = await t.settled(op);

    // ...and bob's deploy, started a moment before, ships into her lock afterwards.
    expect(locked && done.status === 'succeeded').toBe(false);
  });

  it('keeps someone with deploy from destroying a review app another holds a lock on (and recreating it without the lock)', async () => {
    const pr = {
      repo: parseSourceRef('github:acme/rev'),
      pr: 7,
      branch: 'feature',
      sha: await t.repo('github:acme/rev').resolve('main'),
      fork: false,
    };
    await t.engine.pullRequestChanged({ ...pr, action: 'opened' });
    await t.engine.lock(alice, 'rev-pr-7', { reason: 'QA in progress' });

    // bob cannot deploy to rev-pr-7, but reviewapps:destroy (deploy) removes it, lock and all (ON DELETE CASCADE).
    await expect(t.engine.destroyReviewApp(bob, 'rev', 7)).rejects.toThrow(/locked by alice/);
    expect(await t.engine.locks(alice, 'rev')).toHaveLength(1);
  });

  it("lets the holder of a review app's lock redeploy it with reviewapps:create", async () => {
    const pr = {
      repo: parseSourceRef('github:acme/rev'),
      pr: 8,
      branch: 'feature-8',
      sha: await t.repo('github:acme/rev').resolve('main'),
      fork: false,
    };
    await t.engine.pullRequestChanged({ ...pr, action: 'opened' });
    await t.engine.lock(alice, 'rev-pr-8', { reason: 'QA in progress' });

    // The deploy runs as SYSTEM (id 0), not alice: "rev-pr-8 is locked by alice … Only alice can ship there", to alice.
    await expect(t.engine.createReviewApp(alice, 'rev', 8)).resolves.toMatchObject({ status: 'created' });
  });

  it('takes a push to a pull request whose review app is locked in its stride: no exception out of the webhook, and it says why', async () => {
    const repo = t.repo('github:acme/rev');
    const pr = { repo: parseSourceRef('github:acme/rev'), pr: 9, branch: 'feature-9', sha: await repo.resolve('main'), fork: false };
    await t.engine.pullRequestChanged({ ...pr, action: 'opened' });
    await t.engine.lock(alice, 'rev-pr-9', { reason: 'QA in progress' });
    repo.commit({ ...PROCFILE, 'index.js': 'v2' }, 'Second version');

    // The Conflict escapes pullRequestChanged: the delivery is logged "not handled", later pipelines on the repo are skipped,
    // and the review app stays "created" on the old head with nothing in the feeds.
    await expect(t.engine.pullRequestChanged({ ...pr, sha: await repo.resolve('main'), action: 'updated' })).resolves.toBeUndefined();
    const said = await sql(`SELECT message FROM events WHERE type NOT LIKE 'lock.%' AND message LIKE '%locked by alice%'`);
    expect(said.length).toBeGreaterThan(0);
  });

  it('accepts --force --reason on config:set and config:unset, as the lock refusal tells a manager to', async () => {
    await t.engine.lock(alice, 'shop-staging');
    const refusal = await t.engine.setConfig(bob, 'shop-staging', { A: '1' }).catch((err: Error) => err.message);
    expect(refusal).toContain('add `--force --reason "…"` (manage)');

    // The advice cannot be followed: config:set has no --force (and Releases.changeConfig never passes one).
    expect(() => parseCommand(['config:set', 'shop-staging', 'A=1', '--force', '--reason', 'hotfix'])).not.toThrow();
    expect(() => parseCommand(['config:unset', 'shop-staging', 'A', '--force', '--reason', 'hotfix'])).not.toThrow();
  });

  it('says which day a lock ends when that is not today', async () => {
    const lock = await t.engine.lock(alice, 'shop-prod', { for: '1d', reason: 'freeze' });
    const [added] = await sql(`SELECT message FROM events WHERE type = 'lock.added' ORDER BY id DESC LIMIT 1`);
    const refusal = await t.engine.deploy(bob, { pipeline: 'shop', stage: 'production' }).catch((err: Error) => err.message);

    expect(Date.parse(lock.until) - Date.now()).toBeGreaterThan(86_000_000);
    // "alice locked shop-prod until 14:05 UTC": the time it is now, so it reads as if the lock ended already.
    expect(added.message).not.toMatch(/until \d\d:\d\d UTC: freeze$/);
    expect(refusal).not.toMatch(/since \d\d:\d\d UTC, until \d\d:\d\d UTC/);
  });

  it('gives each lock an Unlock button of its own: a stale button must not end a newer lock someone else took', async () => {
    const first = await t.engine.lock(alice, 'shop:staging', { reason: 'migrating' });
    await t.engine.unlock(alice, 'shop:staging');
    const second = await t.engine.lock(mia, 'shop:staging', { reason: 'release train' });

    // The value is {"t":"shop:staging"} for both: a click on alice's old button (its confirm says "alice locked it") ends mia's lock.
    expect(unlockButton(first).value).not.toBe(unlockButton(second).value);
  });
});

describe('identity links', () => {
  let t: TestEngine;
  const slack = (user: string, admin = false) =>
    t.engine.externalUser({ externalId: `slack:T1:${user}`, name: user.toLowerCase(), admin, via: 'slack' });

  beforeAll(async () => {
    t = await createTestEngine();
    t.repo('/repos/shop').commit(PROCFILE, 'First version');
    await t.engine.createPipeline(t.admin, { name: 'shop', repo: '/repos/shop' });
  });
  afterAll(() => t.close());

  it('refuses a code asked for by a Slack account that is already a CLI user: another CLI user would absorb that user', async () => {
    const pat = await t.user('pat');
    await t.engine.addAccess(t.admin, 'shop', 'pat', 'manage');
    const { code } = await t.engine.loginCode(await slack('UPAT'));
    await t.engine.login(pat, code);
    // pat in Slack is the CLI user pat now; pat asks Slack for a code again, and someone else redeems it.
    const patInSlack = await slack('UPAT');
    expect(patInSlack.id).toBe(pat.id);
    // pat asking Slack for a code again is refused: someone else could redeem it and absorb pat.
    await expect(t.engine.loginCode(patInSlack)).rejects.toThrow(Conflict);
    const eve = await t.user('eve');
    const { code: other } = await t.engine.loginCode(await slack('UEVE'));
    await t.engine.login(eve, other);

    expect(await t.engine.access(t.admin, 'shop')).toContainEqual({ user: 'pat', permission: 'manage' });
  });

  it('takes admin back from a linked CLI user once FLOW_SLACK_ADMINS no longer lists the Slack account', async () => {
    const cal = await t.user('cal');
    const { code } = await t.engine.loginCode(await slack('UCAL', true));
    await t.engine.login(cal, code);
    expect((await slack('UCAL', true)).admin).toBe(true);

    // cal was never an admin in the CLI: admin came from FLOW_SLACK_ADMINS alone, copied onto the CLI user by login.
    const removed = await slack('UCAL', false);

    expect(removed.admin).toBe(false);
  });

  it('takes back the admin a link gave when an admin undoes the link', async () => {
    const { token } = await t.engine.createUser(t.admin, 'dan');
    const dan = await t.engine.authenticate(token, 'cli');
    const { code } = await t.engine.loginCode(await slack('UDAN', true));
    await t.engine.login(dan, code);

    await t.engine.unlink(t.admin, 'dan');

    // dan's token stays admin: "admin = admin OR <slack user's admin>" is never undone.
    expect((await t.engine.authenticate(token, 'cli')).admin).toBe(false);
  });
});

describe('access:default', () => {
  let t: TestEngine;

  beforeAll(async () => {
    t = await createTestEngine();
    t.repo('/repos/shop').commit(PROCFILE, 'First version');
    await t.engine.createPipeline(t.admin, { name: 'shop', repo: '/repos/shop' });
  });
  afterAll(() => t.close());

  it('gives the floor to members of this workspace, not to a Slack user of another team (a Slack Connect channel)', async () => {
    await t.engine.setDefaultAccess(t.admin, 'shop', 'deploy');
    const own = await t.engine.externalUser({ externalId: 'slack:T1:UOWN', name: 'own', admin: false, via: 'slack' });
    // The Slack front says who is a guest: a user whose team is not the app's own (src/slack/context.ts).
    const outsider = await t.engine.externalUser({
      externalId: 'slack:TVENDOR:UEXT',
      name: 'ext',
      admin: false,
      via: 'slack',
      guest: true,
    });

    expect(await t.engine.permissionOn(own, 'shop')).toBe('deploy');
    expect(await t.engine.permissionOn(outsider, 'shop')).toBeNull();
  });

  it('does not tell a manager that someone "no longer has access" while access:default still gives them deploy', async () => {
    await t.engine.setDefaultAccess(t.admin, 'shop', 'deploy');
    const kim = await t.engine.externalUser({ externalId: 'slack:T1:UKIM', name: 'kim', admin: false, via: 'slack' });
    await t.engine.addAccess(t.admin, 'shop', 'kim', 'manage');

    const removed = await t.engine.removeAccess(t.admin, 'shop', 'kim');
    const answer = commandAnswer({ kind: 'data', command: 'access:remove', data: removed }, { kim: 'UKIM' })!;

    expect(await t.engine.permissionOn(kim, 'shop')).toBe('deploy');
    expect(answer.text).not.toContain('no longer has access');
    expect(answer.text).toContain('they still have *deploy*');
    const listed = await execute(t.engine, t.admin, { name: 'access', pipeline: 'shop' }, {});
    expect(renderText(listed)).toContain('(every member of the Slack workspace has at least deploy here (access:default))');
  });
});

/** Polls `check` until it holds; fails after two seconds. */
async function waitUntil(check: () => boolean): Promise<void> {
  const until = Date.now() + 2_000;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
