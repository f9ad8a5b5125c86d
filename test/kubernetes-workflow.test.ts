import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppView, OperationView, ReleaseView } from '../src/engine/views.ts';
import { freePort } from '../src/platform/local/processes.ts';
import { GitRepo, webApp } from './helpers/git-repo.ts';
import { KubeStandIn, slugOfDeployment } from './helpers/kube-stand-in.ts';
import { startLocalS3, type LocalS3 } from './helpers/local-s3.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

type Info = { name: string; apps: AppView[] };
/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes objects as the stand-in recorded them */
type Obj = Record<string, any>;

/** The slug a Deployment's pods run: the sha256 its init container checks. */
const slugOf = (deployment: Obj | undefined) => slugOfDeployment(deployment).sha256;

// The local platform's workflow (deploy → promote → a failed release phase → rollback), with
// both apps on Kubernetes: a stand-in for the API server that validates every object against
// Kubernetes' schemas, and slugs in a local S3. The CLI and the engine are the same.
describe('the Heroku Flow workflow on Kubernetes, through the flowops CLI', () => {
  let t: TestServer;
  let stand: KubeStandIn;
  let s3: LocalS3;
  let repo: GitRepo;
  let kubeDir: string;
  const puts = () => s3.requests.filter((r) => r.method === 'PUT' && r.url.includes('.tgz'));

  beforeAll(async () => {
    stand = await KubeStandIn.start();
    stand.namespaces.add('demo');
    // Each release phase Job's pod fetches its slug from flowops, as a pod would, and checks its sha256.
    stand.fetchSlugs = true;
    s3 = await startLocalS3(['slugs']);
    // The AWS SDK reads its credentials from the process's environment, as it would in production.
    Object.assign(process.env, s3.env);
    kubeDir = await mkdtemp(path.join(os.tmpdir(), 'flowops-kube-'));
    const port = await freePort();
    t = await startTestServer({
      env: {
        PORT: String(port),
        KUBECONFIG: await stand.writeKubeconfig(kubeDir),
        FLOW_PUBLIC_URL: `http://127.0.0.1:${port}`,
        FLOW_K8S_DOMAIN: 'apps.test',
        FLOW_K8S_ROLLOUT_TIMEOUT: '5',
        FLOW_SLUG_STORE: 's3://slugs/demo',
        FLOW_S3_ENDPOINT: s3.endpoint,
        ...s3.env,
      },
    });
    repo = await GitRepo.create(path.join(t.dir, 'repo'), webApp('hello v1'));
  });
  afterAll(async () => {
    await t?.close();
    await stand?.close();
    await s3?.close();
    for (const name of Object.keys(s3?.env ?? {})) delete process.env[name];
    await rm(kubeDir, { recursive: true, force: true });
  });

  it('creates apps on Kubernetes, in a namespace', async () => {
    expect((await t.cli(['pipelines:create', 'demo', '--repo', repo.dir])).code).toBe(0);
    const staging = await t.cli([
      'apps:create',
      'demo-staging',
      '--pipeline',
      'demo',
      '--stage',
      'staging',
      '--platform',
      'kubernetes',
      '--namespace',
      'demo',
    ]);
    expect(staging.out.trim()).toBe('Created demo-staging in staging of demo, on Kubernetes in namespace demo');
    await t.cli(['apps:create', 'demo', '--pipeline', 'demo', '--stage', 'production', '--platform', 'kubernetes', '--namespace', 'demo']);
    const info = await t.json<Info>(['pipelines:info', 'demo']);
    expect(info.apps.map((a) => [a.name, a.platform, a.namespace])).toEqual([
      ['demo-staging', 'kubernetes', 'demo'],
      ['demo', 'kubernetes', 'demo'],
    ]);
  });

  it('deploys: the slug to S3 once, the release phase as a Job first, then a Deployment, a Service and an Ingress', async () => {
    const run = await t.cli(['deploy', 'demo', 'to', 'staging']);

    expect(run.code, run.out + run.err).toBe(0);
    expect(run.out).toContain('demo-staging: v1 succeeded');
    expect(puts()).toHaveLength(1);
    const deployment = stand.get('Deployment', 'demo', 'demo-staging-web');
    const [release] = await t.json<ReleaseView[]>(['releases', 'demo-staging']);
    // The slug flowops built, by its sha256: the one in S3 and the one the pods check.
    expect(slugOf(deployment)).toMatch(/^[0-9a-f]{64}$/);
    expect(puts()[0]!.url).toContain(`${slugOf(deployment)}.tgz`);
    expect(release!.slug).toBe(slugOf(deployment).slice(0, release!.slug!.length));
    expect(stand.get('Secret', 'demo', 'demo-staging-v1')).toBeDefined();
    expect(stand.get('Service', 'demo', 'demo-staging')).toBeDefined();
    expect(stand.get('Ingress', 'demo', 'demo-staging')?.spec.rules[0].host).toBe('demo-staging.apps.test');
    const sent = stand.requests.filter((r) => r.method === 'POST').map((r) => r.body?.kind as string);
    expect(sent.indexOf('Job')).toBeLessThan(sent.indexOf('Deployment'));
    const info = await t.json<Info>(['pipelines:info', 'demo']);
    expect(info.apps.find((a) => a.name === 'demo-staging')!.url).toBe('http://demo-staging.apps.test');
    expect(stand.rejected).toEqual([]);
  });

  it('promotes the very slug staging runs to production, uploading nothing', async () => {
    const before = puts().length;

    const run = await t.json<OperationView>(['promote', 'demo']);

    expect(run.status).toBe('succeeded');
    expect(puts()).toHaveLength(before);
    expect(slugOf(stand.get('Deployment', 'demo', 'demo-web'))).toBe(slugOf(stand.get('Deployment', 'demo', 'demo-staging-web')));
    // Production's config vars are its own: its own Secret.
    expect(stand.get('Secret', 'demo', 'demo-v1')).toBeDefined();
  });

  it('keeps the running Deployment untouched when the release phase Job fails, and shows its log', async () => {
    await repo.commit({ 'message.json': JSON.stringify({ text: 'hello v2' }) }, 'Say hello v2');
    await t.cli(['deploy', 'demo', 'to', 'staging']);
    const good = structuredClone(stand.get('Deployment', 'demo', 'demo-staging-web'));
    await repo.commit({ 'message.json': JSON.stringify({ text: 'hello v3' }) }, 'Say hello v3');
    stand.jobOutcomes.set('demo-staging/release', { exitCode: 1, log: 'migration 0042 failed: column "total" already exists\n' });

    const run = await t.cli(['deploy', 'demo', 'to', 'staging']);

    expect(run.code).toBe(1);
    expect(run.out).toContain('demo-staging: v3 failed');
    expect(stand.get('Deployment', 'demo', 'demo-staging-web')?.spec).toEqual(good?.spec);
    const output = await t.cli(['releases:output', 'demo-staging', 'v3']);
    expect(output.out).toContain('migration 0042 failed: column "total" already exists');
    const [v3, v2] = await t.json<ReleaseView[]>(['releases', 'demo-staging']);
    expect([v3!.status, v2!.current]).toEqual(['failed', true]);
    stand.jobOutcomes.delete('demo-staging/release');
  });

  it('rolls production back to the previous release: its slug and its config', async () => {
    await t.cli(['config:set', 'demo', 'SUFFIX=!']);
    const set = stand.get('Secret', 'demo', 'demo-v2');
    expect(Buffer.from(String(set?.data.SUFFIX), 'base64').toString()).toBe('!');

    const run = await t.json<OperationView>(['rollback', 'demo']);

    expect(run.status).toBe('succeeded');
    const deployment = stand.get('Deployment', 'demo', 'demo-web');
    const secretOf = (d: Obj | undefined) =>
      (d?.spec.template.spec.containers[0].envFrom as { secretRef?: { name: string } }[]).find((e) => e.secretRef)!.secretRef!.name;
    expect(secretOf(deployment)).toBe('demo-v3');
    expect(stand.get('Secret', 'demo', 'demo-v3')?.data.SUFFIX).toBeUndefined();
    expect(stand.rejected).toEqual([]);
  });

  it('shows the pods as dynos and scales them', async () => {
    const ps = await t.cli(['ps', 'demo-staging']);
    expect(ps.out).toContain('web.1');
    const scaled = await t.cli(['ps:scale', 'demo-staging', 'web=2']);
    expect(scaled.code, scaled.err).toBe(0);
    expect(stand.get('Deployment', 'demo', 'demo-staging-web')?.spec.replicas).toBe(2);
  });

  it('destroys what it made for an app, and nothing else', async () => {
    stand.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'someone-elses', namespace: 'demo' }, data: {} });

    const run = await t.cli(['apps:destroy', 'demo-staging', '--confirm', 'demo-staging']);

    expect(run.code, run.err).toBe(0);
    const left = ['Deployment', 'Secret', 'Service', 'Ingress', 'Job'].flatMap((kind) =>
      stand.list(kind, 'demo').map((o) => `${kind}/${o.metadata.name as string}`),
    );
    expect(left.filter((name) => name.includes('demo-staging'))).toEqual([]);
    expect(left).toContain('Secret/someone-elses');
    expect(left).toContain('Deployment/demo-web');
  });

  it('serves the slug to a pod only with its token, the bytes S3 holds', async () => {
    const deployment = stand.get('Deployment', 'demo', 'demo-web');
    const { url } = slugOfDeployment(deployment);
    const slug = await fetch(url);
    expect(slug.status).toBe(200);
    const bytes = Buffer.from(await slug.arrayBuffer());
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(slugOf(deployment));
    const forged = url.replace(/token=[0-9a-f]{4}/, 'token=0000');
    expect((await fetch(forged)).status).toBe(404);
  });
});
