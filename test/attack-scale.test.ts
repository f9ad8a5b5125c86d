import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readKubernetesSettings } from '../src/config.ts';
import { AppEntity, OperationEntity } from '../src/db/entities.ts';
import { PermissionDenied } from '../src/errors.ts';
import { createTestEngine, type TestEngine } from './helpers/test-engine.ts';
import { waitFor } from './helpers/wait.ts';

// Attacks on the scale path (issue 13) from outside and from a user with less
// than they would like: each test is a way in that was found open, and is now shut.

const root = path.resolve(import.meta.dirname, '..');

describe('a kubeconfig flowops cannot read', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-attack-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('stops start-up with one line that quotes none of the file (its tokens)', async () => {
    const kubeconfig = path.join(dir, 'kubeconfig');
    await writeFile(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- cluster: {server: "https://k8s.example:6443"}',
        '  name: c',
        'users:',
        '- name: u',
        '  user:',
        '    token: s3cr3t-cluster-admin-token',
        '    password: "unterminated',
        '',
      ].join('\n'),
    );

    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: root,
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        PORT: '0',
        FLOW_ROUTER_PORT: '0',
        FLOW_DATA_DIR: path.join(dir, 'data'),
        KUBECONFIG: kubeconfig,
        FLOW_PUBLIC_URL: 'http://flowops.flowops.svc',
      },
      encoding: 'utf8',
      timeout: 60_000,
    });

    expect(run.status).toBe(78);
    expect(run.stderr).not.toContain('s3cr3t');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr.trim()).toMatch(/^flowops: KUBECONFIG=.*kubeconfig is not a kubeconfig flowops can read: .*\(\d+:\d+\)$/);
  }, 90_000);
});

describe('FLOW_PUBLIC_URL', () => {
  it.each([
    ['a query', 'http://flowops.flowops.svc/?x=1'],
    ['a fragment', 'http://flowops.flowops.svc#top'],
  ])('with %s, which would break every slug URL pods fetch, stops start-up naming the setting', (_what, url) => {
    expect(() => readKubernetesSettings({ KUBECONFIG: '/k', FLOW_PUBLIC_URL: url })).toThrow(/^FLOW_PUBLIC_URL must be/);
  });

  it.each(['FLOW_K8S_ROLLOUT_TIMEOUT', 'FLOW_K8S_JOB_TIMEOUT'])(
    '%s past a day (beyond what Kubernetes deadlines hold) stops start-up naming the setting',
    (name) => {
      const env = { KUBECONFIG: '/k', FLOW_PUBLIC_URL: 'http://flowops.flowops.svc' };
      expect(() => readKubernetesSettings({ ...env, [name]: '2200000000' })).toThrow(new RegExp(`^${name} must be at most 86400 seconds`));
      expect(readKubernetesSettings({ ...env, [name]: '86400' })).not.toBeNull();
    },
  );

  it('may have a path, as behind a proxy', () => {
    expect(readKubernetesSettings({ KUBECONFIG: '/k', FLOW_PUBLIC_URL: 'https://ci.example.com/flowops/' })?.publicUrl).toBe(
      'https://ci.example.com/flowops',
    );
  });
});

describe('where a pipeline manager may put an app on Kubernetes', () => {
  let t: TestEngine;

  beforeAll(async () => {
    t = await createTestEngine({ placement: { default: 'local', kubernetes: true, namespace: 'apps' } });
    t.repo('/repos/shop').commit({ Procfile: 'web: node index.js\n' }, 'First version');
    t.repo('/repos/blog').commit({ Procfile: 'web: node index.js\n' }, 'First version');
    await t.engine.createPipeline(t.admin, { name: 'shop', repo: '/repos/shop' });
    await t.engine.createPipeline(t.admin, { name: 'blog', repo: '/repos/blog' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("refuses a manager's app in a namespace of their choosing (another team's), and creates nothing", async () => {
    const mia = await t.user('mia-2');
    await t.engine.addAccess(t.admin, 'blog', 'mia-2', 'manage');

    const asked = t.engine.createApp(mia, {
      name: 'blog-production',
      pipeline: 'blog',
      stage: 'production',
      platform: 'kubernetes',
      namespace: 'payments',
    });

    await expect(asked).rejects.toThrow(PermissionDenied);
    await expect(asked).rejects.toThrow(/--namespace payments` needs an admin.*FLOW_K8S_NAMESPACE/);
    await expect(t.engine.appInfo(t.admin, 'blog-production')).rejects.toThrow(/no app/i);
  });

  it("lets a manager create an app in the default namespace, and an admin in another team's", async () => {
    const mia = await t.user('mia-3');
    await t.engine.addAccess(t.admin, 'blog', 'mia-3', 'manage');

    const app = await t.engine.createApp(mia, { name: 'blog-staging', pipeline: 'blog', stage: 'staging', platform: 'kubernetes' });
    const named = await t.engine.createApp(t.admin, {
      name: 'blog-eu',
      pipeline: 'blog',
      stage: 'production',
      platform: 'kubernetes',
      namespace: 'blog',
    });

    expect(app).toMatchObject({ platform: 'kubernetes', namespace: 'apps' });
    expect(named).toMatchObject({ platform: 'kubernetes', namespace: 'blog' });
  });

  it.each(['kube-system', 'kube-public', 'kube-node-lease'])('refuses %s even to an admin', async (namespace) => {
    await expect(
      t.engine.createApp(t.admin, { name: 'blog-sys', pipeline: 'blog', stage: 'production', platform: 'kubernetes', namespace }),
    ).rejects.toThrow(/Kubernetes' own namespace/);
    await expect(t.engine.appInfo(t.admin, 'blog-sys')).rejects.toThrow(/no app/i);
  });

  it('refuses a viewer, and a manager of another pipeline, whatever the namespace', async () => {
    const vic = await t.user('vic-2');
    await t.engine.addAccess(t.admin, 'shop', 'vic-2', 'view');
    const mia = await t.user('mia-4');
    await t.engine.addAccess(t.admin, 'blog', 'mia-4', 'manage');

    for (const [actor, namespace] of [
      [vic, undefined],
      [mia, undefined],
      [mia, 'apps'],
    ] as const)
      await expect(
        t.engine.createApp(actor, { name: 'shop-intruder', pipeline: 'shop', stage: 'production', platform: 'kubernetes', namespace }),
      ).rejects.toThrow();
    await expect(t.engine.appInfo(t.admin, 'shop-intruder')).rejects.toThrow(/no app/i);
  });

  it('refuses, when it is created, an app name Kubernetes would refuse at its first deploy', async () => {
    await expect(
      t.engine.createApp(t.admin, { name: 'blog-', pipeline: 'blog', stage: 'production', platform: 'kubernetes' }),
    ).rejects.toThrow(/"blog-" cannot run on Kubernetes/);
    await expect(t.engine.appInfo(t.admin, 'blog-')).rejects.toThrow(/no app/i);
  });
});

// A replica of an older flowops (a rolling upgrade), or a tampered row, may claim a job whose
// payload it cannot read: the queue keeps the job, failed, and never tries it again.
describe.skipIf(!process.env.DATABASE_URL)('an operation whose job no replica can run (Postgres)', () => {
  let t: TestEngine;

  beforeAll(async () => {
    t = await createTestEngine();
    t.repo('/repos/shop').commit({ Procfile: 'web: node index.js\n' }, 'First version');
    await t.engine.createPipeline(t.admin, { name: 'shop', repo: '/repos/shop' });
    await t.engine.createApp(t.admin, { name: 'shop-staging', pipeline: 'shop', stage: 'staging' });
    await t.engine.start();
  });
  afterAll(async () => {
    await t?.engine.stop();
    await t?.close();
  });

  it('ends failed within a minute, its app unlocked, instead of pending for ever', async () => {
    const db = t.database.dataSource;
    const [{ id: runnerId }] = (await db.query('SELECT id FROM runners')) as { id: string }[];
    const app = await db.getRepository(AppEntity).findOneByOrFail({ name: 'shop-staging' });
    const op = await db.getRepository(OperationEntity).save({
      kind: 'deploy',
      cause: null,
      pipelineId: app.pipelineId,
      status: 'pending',
      actorId: t.admin.id,
      description: 'Deploy 0f0a53b',
      targets: [{ app: 'shop-staging', version: null, status: 'pending' }],
      runnerId: runnerId!,
    });
    await db.getRepository(AppEntity).update({ id: app.id }, { lockedBy: op.id });

    await db.query(`SELECT graphile_worker.add_job('flowops_operation', $1::json, job_key := $2, max_attempts := 1)`, [
      JSON.stringify({ operationId: op.id, work: { kind: 'deploy-from-a-newer-flowops', sha: '0f0a53b' } }),
      `flowops_operation:${op.id}`,
    ]);

    const ended = await waitFor(
      'the operation to end',
      async () => {
        const now = await db.getRepository(OperationEntity).findOneByOrFail({ id: op.id });
        return now.status === 'failed' ? now : null;
      },
      60_000,
    );
    expect(ended.error).toMatch(/^interrupted/);
    expect((await db.getRepository(AppEntity).findOneByOrFail({ id: app.id })).lockedBy).toBeNull();
    expect(await db.query(`SELECT 1 FROM graphile_worker.jobs WHERE key = $1`, [`flowops_operation:${op.id}`])).toEqual([]);
  }, 90_000);
});
