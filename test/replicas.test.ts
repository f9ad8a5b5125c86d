import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OperationView, ReleaseView } from '../src/engine/views.ts';
import { freshDatabase } from './helpers/database.ts';
import { deliver, FakeGitHub, githubSignature, webhookExample } from './helpers/fake-github.ts';
import { FakeSlack, postToSlackEndpoint, slashCommand } from './helpers/fake-slack.ts';
import { frontsEnv } from './helpers/fronts.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { KubeStandIn, slugOfDeployment } from './helpers/kube-stand-in.ts';
import { startLocalS3, type LocalS3 } from './helpers/local-s3.ts';
import { cliAt, killHard, spawnServer, stopRuntime, type ServerProcess } from './helpers/server-process.ts';
import { waitFor } from './helpers/wait.ts';

const TOKEN = 'test-admin-token-0123456789';
const SECRET = 'replicas-signing-secret';
const GITHUB_SECRET = 'replicas-github-secret';

/** The slug a Deployment's pods run: the sha256 its init container checks. */
const slugOf = (deployment: Parameters<typeof slugOfDeployment>[0]) => slugOfDeployment(deployment).sha256;

// Replicas share a Postgres database: the embedded PGlite is one process's own, so there is nothing to share.
describe.skipIf(!process.env.DATABASE_URL)('two flowops replicas on one Postgres (needs DATABASE_URL: PGlite is one process)', () => {
  let dir: string;
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let db: pg.Client;
  let stand: KubeStandIn;
  let s3: LocalS3;
  let slack: FakeSlack;
  let github: FakeGitHub;
  let ciRepo: GitRepo;
  let kubeconfig: string;
  const servers: Record<'a' | 'b', ServerProcess | null> = { a: null, b: null };
  const dataDir = (name: string) => path.join(dir, name);
  const env = (name: string, extra: Record<string, string> = {}) => ({
    FLOW_DATA_DIR: dataDir(name),
    PORT: '0',
    FLOW_ADMIN_TOKEN: TOKEN,
    FLOW_SANDBOX: 'none',
    // Apps on Kubernetes (the stand-in), slugs in S3 (s3rver): what lets replicas share the work.
    FLOW_PLATFORM: 'kubernetes',
    KUBECONFIG: kubeconfig,
    FLOW_K8S_NAMESPACE: 'apps',
    FLOW_K8S_DOMAIN: 'apps.test',
    FLOW_PUBLIC_URL: 'http://flowops.test',
    FLOW_SLUG_STORE: 's3://slugs/replicas',
    FLOW_S3_ENDPOINT: s3.endpoint,
    ...s3.env,
    ...frontsEnv({ slack: { fake: slack, signingSecret: SECRET, admins: 'UADMIN' } }),
    GITHUB_API_URL: github.url,
    GITHUB_TOKEN: 'ghp_test',
    GITHUB_WEBHOOK_SECRET: GITHUB_SECRET,
    // One operation at a time each, so several queued deploys spread over both.
    FLOW_WORKER_CONCURRENCY: '1',
    DATABASE_URL: database.url!,
    ...extra,
  });

  async function flowops<T>(server: ServerProcess, ...argv: string[]): Promise<T> {
    const { out, err } = await cliAt(server.url, TOKEN, [...argv, '--json']);
    if (!out) throw new Error(err);
    return JSON.parse(out) as T;
  }
  /** Which replica (a, b) each operation ran on, from its runner's pid. */
  async function ranOn(ids: number[]): Promise<string[]> {
    const rows: { id: number; pid: number | null }[] = (
      await db.query('SELECT o.id, r.pid FROM operations o LEFT JOIN runners r ON r.id = o.runner_id WHERE o.id = ANY($1) ORDER BY o.id', [
        ids,
      ])
    ).rows;
    return rows.map((r) => (r.pid === servers.a?.child.pid ? 'a' : r.pid === servers.b?.child.pid ? 'b' : `pid ${r.pid}`));
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-replicas-'));
    database = await freshDatabase();
    db = new pg.Client({ connectionString: database.url });
    await db.connect();
    stand = await KubeStandIn.start();
    stand.namespaces.add('apps');
    kubeconfig = await stand.writeKubeconfig(dir);
    s3 = await startLocalS3(['slugs']);
    slack = await FakeSlack.start();
    // A repository whose test writes its pid where this test can see it, then runs for two minutes.
    ciRepo = await GitRepo.create(path.join(dir, 'ci-repo'), {
      ...webApp('ci v1'),
      'app.json': JSON.stringify({ environments: { test: { scripts: { test: 'node test.js' } } } }),
      'test.js': `require('fs').writeFileSync(${JSON.stringify(path.join(dir, 'ci-test.pid'))}, String(process.pid)); setTimeout(() => {}, 120000);\n`,
    });
    github = await FakeGitHub.start('acme/ci', ciRepo);
    [servers.a, servers.b] = await Promise.all([spawnServer(env('a')), spawnServer(env('b'))]);
  });
  afterAll(async () => {
    for (const server of Object.values(servers)) server?.child.kill('SIGTERM');
    await Promise.all(['a', 'b'].map((name) => stopRuntime(dataDir(name)).catch(() => undefined)));
    await db?.end();
    await database?.drop();
    await stand?.close();
    await s3?.close();
    await slack?.close();
    await github?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('carries out each deploy requested through one replica exactly once, the queued ones claimed by both', async () => {
    const a = servers.a!;
    const repo = await GitRepo.create(path.join(dir, 'repo'), webApp('shared v1'));
    await flowops(a, 'pipelines:create', 'shared', '--repo', repo.dir);
    await flowops(a, 'apps:create', 'shared-staging', '--pipeline', 'shared', '--stage', 'staging');
    await flowops(a, 'apps:create', 'shared-dev', '--pipeline', 'shared', '--stage', 'development');

    const ops = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        flowops<OperationView>(a, 'deploy', 'shared', 'to', i % 2 ? 'staging' : 'development', '--no-wait'),
      ),
    );
    const ids = ops.map((op) => op.id);
    await waitFor(
      'the deploys to end',
      async () =>
        (await db.query("SELECT count(*)::int AS n FROM operations WHERE id = ANY($1) AND status = 'succeeded'", [ids])).rows[0].n === 6,
      60_000,
    );

    const builds = (
      await db.query('SELECT operation_id, count(*)::int AS n FROM builds WHERE operation_id = ANY($1) GROUP BY operation_id', [ids])
    ).rows;
    expect(builds).toHaveLength(6);
    expect(builds.every((b: { n: number }) => b.n === 1)).toBe(true);
    const releases = (
      await db.query('SELECT operation_id, count(*)::int AS n FROM releases WHERE operation_id = ANY($1) GROUP BY operation_id', [ids])
    ).rows;
    expect(releases.map((r: { n: number }) => r.n)).toEqual([1, 1, 1, 1, 1, 1]);
    expect((await flowops<ReleaseView[]>(a, 'releases', 'shared-staging')).map((r) => r.version)).toEqual([3, 2, 1]);
    expect((await flowops<ReleaseView[]>(a, 'releases', 'shared-dev')).map((r) => r.version)).toEqual([3, 2, 1]);
    // Each job ran once and left the queue; both replicas claimed some.
    expect(
      (await db.query("SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE task_identifier = 'flowops_operation'")).rows[0].n,
    ).toBe(0);
    const where = await ranOn(ids);
    expect(new Set(where)).toEqual(new Set(['a', 'b']));
    // On the cluster: one Deployment per app, running the slug S3 holds.
    const staging = stand.get('Deployment', 'apps', 'shared-staging-web');
    expect(s3.requests.some((r) => r.method === 'PUT' && r.url.includes(`/${slugOf(staging)}.tgz`))).toBe(true);
    expect(stand.rejected).toEqual([]);
  });

  it('points production at the very slug staging runs, promoted through the other replica', async () => {
    const a = servers.a!;
    const b = servers.b!;
    await flowops(a, 'apps:create', 'shared', '--pipeline', 'shared', '--stage', 'production');
    const uploads = s3.requests.filter((r) => r.method === 'PUT').length;

    const op = await flowops<OperationView>(b, 'promote', 'shared');

    expect(op.status).toBe('succeeded');
    expect(slugOf(stand.get('Deployment', 'apps', 'shared-web'))).toBe(slugOf(stand.get('Deployment', 'apps', 'shared-staging-web')));
    expect(s3.requests.filter((r) => r.method === 'PUT')).toHaveLength(uploads);
    expect(stand.rejected).toEqual([]);
    // An app one replica created is shown by the other where it runs, before either has released it.
    await flowops(a, 'apps:create', 'shared-eu', '--pipeline', 'shared', '--stage', 'production');
    expect((await flowops<{ url: string | null }>(b, 'apps:info', 'shared-eu')).url).toBe('http://shared-eu.apps.test');
  });

  it('stops a test run cancelled through the other replica, where its tests run', async () => {
    const a = servers.a!;
    const b = servers.b!;
    await flowops(a, 'pipelines:create', 'tested', '--repo', 'github:acme/ci');
    await flowops(a, 'ci:enable', 'tested');
    // GitHub's push reaches replica A, which runs the tests.
    const payload = webhookExample('push', (e) => e.ref === 'refs/heads/master');
    Object.assign(payload, { ref: 'refs/heads/main', after: (await ciRepo.git('rev-parse', 'HEAD')).trim() });
    (payload.repository as { full_name: string }).full_name = 'acme/ci';
    const body = JSON.stringify(payload);
    expect((await deliver(a.url, 'push', 'replicas-push-1', body, githubSignature(GITHUB_SECRET, body))).status).toBe(202);
    const pidFile = path.join(dir, 'ci-test.pid');
    const pid = Number(await waitFor('the tests to start on A', () => readFile(pidFile, 'utf8').catch(() => ''), 60_000));
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(alive()).toBe(true);

    const cancelled = await flowops<{ status: string }>(b, 'ci:cancel', 'tested', '1');

    expect(cancelled.status).toBe('cancelled');
    // A hears of it through the database and stops the tests: they would otherwise run two minutes.
    await waitFor('the tests on A to stop', async () => !alive(), 15_000);
    expect((await flowops<{ status: string }[]>(a, 'ci', 'tested'))[0]!.status).toBe('cancelled');
  });

  it('ends an operation of a replica killed with SIGKILL as interrupted on the other within a minute, and the other keeps serving', async () => {
    const a = servers.a!;
    // A build that takes long: its package.json's build script sleeps.
    const slow = await GitRepo.create(path.join(dir, 'slow'), {
      ...webApp('slow v1'),
      'package.json': JSON.stringify({ name: 'slow', version: '1.0.0', private: true, scripts: { build: 'sleep 300' } }),
    });
    await flowops(a, 'pipelines:create', 'slow', '--repo', slow.dir);
    await flowops(a, 'apps:create', 'slow-staging', '--pipeline', 'slow', '--stage', 'staging');
    const op = await flowops<OperationView>(a, 'deploy', 'slow', 'to', 'staging', '--no-wait');
    await waitFor(
      'the slow build to run',
      async () =>
        (await db.query("SELECT 1 FROM events WHERE operation_id = $1 AND message LIKE '%Running build%'", [op.id])).rows.length > 0,
      60_000,
    );
    const [runner] = await ranOn([op.id]);
    const victim = runner === 'a' ? 'a' : 'b';
    const survivor = servers[victim === 'a' ? 'b' : 'a']!;
    // As if it ran on another machine: only its heartbeat can tell it died (on this host its pid would say so at once).
    await db.query('UPDATE runners SET hostname = $1 WHERE pid = $2', ['another-host', servers[victim]!.child.pid]);

    await killHard(servers[victim]!);
    servers[victim] = null;
    const killedAt = Date.now();
    const ended = await waitFor(
      'the interrupted deploy to end',
      async () => {
        // The survivor answers all along.
        const { operation } = (await (
          await fetch(`${survivor.url}/api/operations/${op.id}`, { headers: { authorization: `Bearer ${TOKEN}` } })
        ).json()) as { operation: OperationView };
        return operation.status === 'failed' && operation;
      },
      60_000,
    );

    expect(Date.now() - killedAt).toBeLessThan(60_000);
    expect(ended.error).toMatch(/^interrupted/);
    expect(ended.targets).toEqual([{ app: 'slow-staging', version: null, status: 'failed', error: 'interrupted' }]);
    expect((await db.query("SELECT locked_by FROM apps WHERE name = 'slow-staging'")).rows[0].locked_by).toBeNull();
    expect((await db.query('SELECT status FROM builds WHERE operation_id = $1', [op.id])).rows).toEqual([{ status: 'failed' }]);
    // Its job is gone from the queue, so nothing runs it again; the dead one's outbox leases are free.
    expect(
      (await db.query('SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE key = $1', [`flowops_operation:${op.id}`])).rows[0].n,
    ).toBe(0);
    expect((await db.query('SELECT count(*)::int AS n FROM runners')).rows[0].n).toBe(1);
    expect(
      (
        await db.query(
          'SELECT count(*)::int AS n FROM outbox_cursors WHERE leased_by IS NOT NULL AND leased_by NOT IN (SELECT id FROM runners)',
        )
      ).rows[0].n,
    ).toBe(0);
    // The survivor answers Slack: a signed /flow command gets its answer.
    const answered = await postToSlackEndpoint(
      survivor.url,
      slashCommand({
        text: 'pipelines:info slow',
        user: 'UADMIN',
        userName: 'ada',
        channel: 'CDEPLOY',
        responseUrl: slack.responseUrl('after-kill'),
      }),
      { secret: SECRET, contentType: 'application/x-www-form-urlencoded' },
    );
    expect(answered.status).toBe(200);
    await waitFor('the answer in Slack', async () => slack.responses.some((r) => r.id === 'after-kill'), 30_000);
    // The survivor takes new work: the app deploys through it.
    await slow.commit({ 'package.json': JSON.stringify({ name: 'slow', version: '1.0.1', private: true }) }, 'A quick build');
    const again = await flowops<OperationView>(survivor, 'deploy', 'slow', 'to', 'staging');
    expect(again.status).toBe('succeeded');
  });

  it('refuses a second flowops on the local platform beside a live one, and says why', async () => {
    const refused = await spawnServer(env('c', { FLOW_PLATFORM: 'local' })).then(
      () => null,
      (err: unknown) => String(err),
    );

    expect(refused).toMatch(/flowops exited with 75/);
    expect(refused).toMatch(
      /another flowops \(host [^,]+, pid \d+\) runs on this database; the local platform runs apps on one machine, so one flowops per database: stop it, or run apps on Kubernetes \(FLOW_PLATFORM=kubernetes\) to run replicas/,
    );
    expect((await db.query('SELECT count(*)::int AS n FROM runners')).rows[0].n).toBe(1);
  });
});
