import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AppsV1Api } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Conflict, InvalidInput, NotFound } from '../src/errors.ts';
import { kubeConfigFromEnv } from '../src/platform/kubernetes/kube-config.ts';
import { KubeError } from '../src/platform/kubernetes/kube-api.ts';
import { KubernetesPlatform, type KubernetesPlatformOptions } from '../src/platform/kubernetes/kubernetes-platform.ts';
import type { ReleaseSpec } from '../src/platform/platform.ts';
import { KubeStandIn } from './helpers/kube-stand-in.ts';
import { MemoryPlatform } from './helpers/memory-platform.ts';
import { waitFor } from './helpers/wait.ts';

const SLUG = Buffer.from('a slug archive, as the slug store serves it');
const SHA = createHash('sha256').update(SLUG).digest('hex');
const SLUG_2 = Buffer.from('the next commit, built');
const SHA_2 = createHash('sha256').update(SLUG_2).digest('hex');
const FLOWOPS_LABELS = { 'app.kubernetes.io/managed-by': 'flowops', 'flowops.io/app': 'shop' };

let stand: KubeStandIn;
let dir: string;
let slugServer: http.Server;
let slugBase: string;
/** The bytes the slug server answers for a sha (the slug store). */
let slugs: Map<string, Buffer>;
let slugFetches: string[];
let namespaces: Record<string, string>;

function platform(options: Partial<KubernetesPlatformOptions> = {}): KubernetesPlatform {
  return new KubernetesPlatform({
    kubeConfig: kubeConfigFromEnv({ KUBECONFIG: path.join(dir, 'kubeconfig') }),
    builder: new MemoryPlatform(),
    slugUrl: (app, slugId) => `${slugBase}/slugs/${slugId}.tgz?app=${app}`,
    namespaceOf: async (app) => namespaces[app] ?? 'apps',
    stackImage: 'node:20-bookworm',
    domain: 'apps.example.com',
    rolloutTimeoutMs: 1500,
    jobTimeoutMs: 3000,
    pollMs: 10,
    ...options,
  });
}

function release(version: number, overrides: Partial<ReleaseSpec> = {}): ReleaseSpec {
  return {
    app: 'shop',
    releaseId: 100 + version,
    version,
    slugId: SHA,
    procfile: { web: 'node server.js', worker: 'node worker.js', release: 'node migrate.js' },
    config: { DATABASE_URL: 'postgres://shop:pw@db/shop', GREETING: 'it\'s "quoted"\nand two lines' },
    formation: { web: 2 },
    ...overrides,
  };
}

/** Release phase, then start: what the engine does for a new release. */
async function deploy(kube: KubernetesPlatform, spec: ReleaseSpec): Promise<void> {
  const phase = await kube.releasePhase(spec, () => undefined);
  expect(phase.code).toBe(0);
  await kube.start(spec, () => undefined);
}

const sent = (method: string, resource: string) => stand.requests.filter((r) => r.method === method && r.path.includes(`/${resource}`));
const decode = (data: Record<string, string>) =>
  Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));

beforeEach(async () => {
  stand = await KubeStandIn.start();
  stand.namespaces.add('apps');
  stand.namespaces.add('other');
  stand.fetchSlugs = true;
  dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-kube-'));
  await stand.writeKubeconfig(dir);
  namespaces = {};
  slugs = new Map([
    [SHA, SLUG],
    [SHA_2, SLUG_2],
  ]);
  slugFetches = [];
  slugServer = http.createServer((req, res) => {
    const sha = /^\/slugs\/([0-9a-f]{64})\.tgz/.exec(req.url ?? '')?.[1];
    slugFetches.push(req.url ?? '');
    const bytes = sha ? slugs.get(sha) : undefined;
    if (bytes) res.writeHead(200, { 'content-type': 'application/gzip' }).end(bytes);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => slugServer.listen(0, '127.0.0.1', resolve));
  slugBase = `http://127.0.0.1:${(slugServer.address() as AddressInfo).port}`;
});

afterEach(async () => {
  // Every object flowops sent passed Kubernetes' schemas, and it asked for nothing the API lacks.
  expect(stand.rejected).toEqual([]);
  expect(stand.unexpected).toEqual([]);
  await stand.close();
  slugServer.closeAllConnections();
  await new Promise<void>((resolve) => slugServer.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

describe('a release on Kubernetes', () => {
  it('runs the release phase as a Job, then a Deployment per process type, a Service and an Ingress, and is live when rolled out', async () => {
    const kube = platform();
    const spec = release(1);

    const phase = await kube.releasePhase(spec, () => undefined);

    expect(phase).toEqual({ code: 0, output: expect.stringContaining('ran: node migrate.js') });
    expect(phase.output).toContain('Running release command: node migrate.js');
    // The release phase ran before anything else changed: no Deployment yet.
    expect(stand.list('Deployment', 'apps')).toEqual([]);
    const secret = stand.get('Secret', 'apps', 'shop-v1')!;
    expect(decode(secret.data)).toEqual(spec.config);
    expect(secret.immutable).toBe(true);
    const job = stand.get('Job', 'apps', 'shop-release-v1')!;
    expect(job.spec.backoffLimit).toBe(0);
    const pod = job.spec.template.spec;
    expect(pod.containers[0].command).toEqual(['sh', '-c', 'node migrate.js']);
    expect(pod.containers[0].envFrom).toEqual([{ secretRef: { name: 'shop-v1' } }]);
    expect(pod.initContainers[0].env).toEqual([
      { name: 'SLUG_URL', value: `${slugBase}/slugs/${SHA}.tgz?app=shop` },
      { name: 'SLUG_SHA256', value: SHA },
    ]);
    expect(pod.initContainers[0].command.at(-1)).toContain('sha256sum -c');
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(slugFetches).toEqual([`/slugs/${SHA}.tgz?app=shop`]);

    const output: string[] = [];
    await kube.start(spec, (chunk) => output.push(chunk));

    expect(output.join('')).toContain('Live: web (2), worker (1)');
    const web = stand.get('Deployment', 'apps', 'shop-web')!;
    const worker = stand.get('Deployment', 'apps', 'shop-worker')!;
    expect(web.spec.replicas).toBe(2);
    expect(worker.spec.replicas).toBe(1);
    const main = web.spec.template.spec.containers[0];
    expect(main.command).toEqual(['sh', '-c', 'node server.js']);
    expect(main.workingDir).toBe('/app');
    expect(main.env).toContainEqual({ name: 'PORT', value: '5000' });
    expect(main.readinessProbe.tcpSocket.port).toBe(5000);
    expect(worker.spec.template.spec.containers[0].readinessProbe).toBeUndefined();
    expect(stand.get('Deployment', 'apps', 'shop-release')).toBeUndefined();
    const service = stand.get('Service', 'apps', 'shop')!;
    expect(service.spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 5000, protocol: 'TCP' }]);
    expect(service.spec.selector).toEqual({ ...FLOWOPS_LABELS, 'flowops.io/process': 'web' });
    const ingress = stand.get('Ingress', 'apps', 'shop')!;
    expect(ingress.spec.rules[0].host).toBe('shop.apps.example.com');
    expect(ingress.spec.rules[0].http.paths[0].backend.service).toEqual({ name: 'shop', port: { number: 80 } });
    expect(kube.url('shop')).toBe('http://shop.apps.example.com');
    // Everything flowops sent carries its labels.
    for (const request of stand.requests.filter((r) => r.method === 'POST'))
      expect(request.body!.metadata.labels, request.path).toMatchObject({ ...FLOWOPS_LABELS, 'flowops.io/release': '1' });
    const ps = await kube.ps('shop');
    expect(ps).toMatchObject({
      app: 'shop',
      version: 1,
      formation: { web: 2, worker: 1 },
      commands: { web: 'node server.js', worker: 'node worker.js' },
    });
    expect(ps.dynos.map((d) => [d.name, d.state, d.version, d.command])).toEqual([
      ['web.1', 'up', 1, 'node server.js'],
      ['web.2', 'up', 1, 'node server.js'],
      ['worker.1', 'up', 1, 'node worker.js'],
    ]);
  });

  it('runs Procfile types named like flowops’ own Jobs (`run`) and spelled with "_" as dynos of their own', async () => {
    const kube = platform();

    await deploy(kube, release(1, { procfile: { web: 'node server.js', run: 'node runner.js', worker_high: 'node high.js' } }));

    expect(stand.get('Deployment', 'apps', 'shop-worker-high')!.metadata.annotations['flowops.io/process-type']).toBe('worker_high');
    const ps = await kube.ps('shop');
    expect(ps.formation).toEqual({ run: 1, web: 2, worker_high: 1 });
    expect(ps.dynos.map((d) => [d.name, d.state])).toEqual([
      ['run.1', 'up'],
      ['web.1', 'up'],
      ['web.2', 'up'],
      ['worker_high.1', 'up'],
    ]);
    expect((await kube.scale('shop', { worker_high: 0 })).formation.worker_high).toBe(0);
  });

  it('rolls a new release out over the old one: its own Secret and slug; process types it dropped go, and so do the Service and Ingress without web', async () => {
    const kube = platform();
    await deploy(kube, release(1));

    await deploy(kube, release(2, { slugId: SHA_2, procfile: { worker: 'node worker.js --v2' }, config: { GREETING: 'v2' } }));

    expect(stand.get('Deployment', 'apps', 'shop-web')).toBeUndefined();
    expect(stand.get('Service', 'apps', 'shop')).toBeUndefined();
    expect(stand.get('Ingress', 'apps', 'shop')).toBeUndefined();
    const worker = stand.get('Deployment', 'apps', 'shop-worker')!;
    expect(worker.metadata.labels['flowops.io/release']).toBe('2');
    expect(worker.spec.template.spec.containers[0].envFrom).toEqual([{ secretRef: { name: 'shop-v2' } }]);
    expect(worker.spec.template.spec.initContainers[0].env[1]).toEqual({ name: 'SLUG_SHA256', value: SHA_2 });
    expect(decode(stand.get('Secret', 'apps', 'shop-v2')!.data)).toEqual({ GREETING: 'v2' });
    // No release command in the Procfile: no Job.
    expect(stand.get('Job', 'apps', 'shop-release-v2')).toBeUndefined();
    const ps = await kube.ps('shop');
    expect(ps.dynos.map((d) => [d.name, d.version])).toEqual([['worker.1', 2]]);
  });

  it('keeps the Secrets and release phase Jobs of the last few releases and deletes older ones', async () => {
    const kube = platform({ keepReleases: 2 });

    for (let v = 1; v <= 4; v++) await deploy(kube, release(v));

    expect(
      stand
        .list('Secret', 'apps')
        .map((s) => s.metadata.name)
        .sort(),
    ).toEqual(['shop-v3', 'shop-v4']);
    expect(
      stand
        .list('Job', 'apps')
        .map((j) => j.metadata.name)
        .sort(),
    ).toEqual(['shop-release-v3', 'shop-release-v4']);
    // A Job's pod goes with it.
    expect(stand.list('Pod', 'apps').filter((p) => p.metadata.labels['flowops.io/process'] === 'release')).toHaveLength(2);
  });

  it('a release phase that fails returns its exit code and the Job’s log, and leaves the running Deployments untouched', async () => {
    const kube = platform();
    await deploy(kube, release(1));
    const before = stand.list('Deployment', 'apps').map((d) => structuredClone(d));
    const changesBefore = stand.requests.filter((r) => r.method !== 'GET').length;
    stand.jobOutcomes.set('shop/release', { exitCode: 3, log: 'Migrating...\nERROR: relation "orders" already exists\n' });

    const phase = await kube.releasePhase(release(2, { slugId: SHA_2 }), () => undefined);

    expect(phase.code).toBe(3);
    expect(phase.output).toContain('ERROR: relation "orders" already exists');
    expect(stand.list('Deployment', 'apps')).toEqual(before);
    // Only the new release's Secret and Job were sent: nothing touched what runs.
    const changes = stand.requests.filter((r) => r.method !== 'GET').slice(changesBefore);
    expect(changes.map((r) => `${r.method} ${r.path.replace(/\?.*/, '')}`)).toEqual([
      'POST /api/v1/namespaces/apps/secrets',
      'POST /apis/batch/v1/namespaces/apps/jobs',
    ]);
    expect((await kube.ps('shop')).dynos.every((d) => d.version === 1 && d.state === 'up')).toBe(true);
    // As on Heroku, the release phase's output is in the app's log.
    expect((await kube.logs('shop', { dyno: 'release' })).lines.join('\n')).toMatch(
      /app\[release\.1\]: ERROR: relation "orders" already exists/,
    );
  });

  it('a slug that does not match its sha256 fails the release phase before any of its code runs', async () => {
    const kube = platform();
    slugs.set(SHA, Buffer.from('tampered on the way'));

    const phase = await kube.releasePhase(release(1), () => undefined);

    expect(phase.code).toBe(1);
    expect(phase.output).toContain('did NOT match');
    expect(phase.output).not.toContain('ran: node migrate.js');
  });

  it('a release phase that does not finish in time is stopped and fails', async () => {
    const kube = platform({ jobTimeoutMs: 300 });
    stand.jobOutcomes.set('shop/release', { exitCode: 0, log: '', hangs: true });

    const phase = await kube.releasePhase(release(1), () => undefined);

    expect(phase.code).not.toBe(0);
    expect(phase.output).toContain('Timed out');
    expect(stand.get('Job', 'apps', 'shop-release-v1')).toBeUndefined();
  });

  it('a rollout that does not complete in time fails the release and restores every Deployment to the previous template', async () => {
    const kube = platform({ rolloutTimeoutMs: 400 });
    await deploy(kube, release(1));
    const v1Web = structuredClone(stand.get('Deployment', 'apps', 'shop-web')!.spec.template);
    stand.stalledApps.add('shop');
    const v2 = release(2, {
      slugId: SHA_2,
      procfile: { web: 'node server.js --broken', worker: 'node worker.js', clock: 'node clock.js' },
    });
    expect((await kube.releasePhase(v2, () => undefined)).code).toBe(0);

    const failed = await kube.start(v2, () => undefined).catch((err: Error) => err);

    expect(failed).toBeInstanceOf(Error);
    expect((failed as Error).message).toMatch(/the rollout of shop v2 did not complete in 0.4 s \(.*web\.\d: CrashLoopBackOff/);
    expect((failed as Error).message).toContain('rolled back to v1');
    // The template v2 sent, then v1's again: what `kubectl rollout undo` does.
    const templates = stand.templates.get('apps/shop-web')!;
    expect(templates.at(-2)!.spec.containers[0].command).toEqual(['sh', '-c', 'node server.js --broken']);
    expect(stand.get('Deployment', 'apps', 'shop-web')!.spec.template).toEqual(v1Web);
    expect(stand.get('Deployment', 'apps', 'shop-worker')!.metadata.labels['flowops.io/release']).toBe('1');
    // A process type the failed release added is gone again.
    expect(stand.get('Deployment', 'apps', 'shop-clock')).toBeUndefined();
    await waitFor('v1 running alone again', async () => {
      const ps = await kube.ps('shop');
      return ps.dynos.length === 3 && ps.dynos.every((d) => d.version === 1 && d.state === 'up');
    });
  });

  it('refuses to take over an object of the same name that flowops did not make', async () => {
    const kube = platform();
    stand.put({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'shop', namespace: 'apps' }, spec: { ports: [{ port: 443 }] } });

    await expect(deploy(kube, release(1))).rejects.toThrow(Conflict);

    expect(stand.get('Service', 'apps', 'shop')!.spec.ports).toEqual([{ port: 443 }]);
    expect(stand.requests.some((r) => r.method === 'PATCH' || r.method === 'PUT')).toBe(false);
  });

  it('says which namespace is missing when the app’s namespace does not exist', async () => {
    namespaces.shop = 'nowhere';

    const failed = await platform()
      .releasePhase(release(1), () => undefined)
      .catch((err: Error) => err);

    expect(failed).toBeInstanceOf(KubeError);
    expect((failed as Error).message).toMatch(/Secret shop-v1 in nowhere: 404 namespaces "nowhere" not found/);
  });
});

describe('processes on Kubernetes', () => {
  it('ps shows a crash-looping pod as crashed, and crashed() names it', async () => {
    const kube = platform();
    await deploy(kube, release(1));
    const web1 = stand.podsOf('apps', 'shop', 'web')[0]!;

    stand.crashPod(web1.metadata.name, 137);

    const ps = await kube.ps('shop');
    expect(ps.dynos.find((d) => d.name === 'web.1')).toMatchObject({ state: 'crashed', exitCode: 137 });
    expect(ps.dynos.find((d) => d.name === 'web.2')).toMatchObject({ state: 'up' });
    expect(await kube.crashed()).toEqual({ shop: ['web.1'] });
    expect(await kube.crashes()).toEqual([]);
  });

  it('scale sets a Deployment’s replicas; a process type not deployed is refused and nothing changes', async () => {
    const kube = platform();
    await deploy(kube, release(1));

    const ps = await kube.scale('shop', { worker: 3 });

    expect(ps.formation).toEqual({ web: 2, worker: 3 });
    expect(stand.get('Deployment', 'apps', 'shop-worker')!.spec.replicas).toBe(3);
    await waitFor(
      'three workers',
      async () => (await kube.ps('shop')).dynos.filter((d) => d.type === 'worker' && d.state === 'up').length === 3,
    );
    await expect(kube.scale('shop', { web: 1, clock: 1 })).rejects.toThrow(NotFound);
    await expect(kube.scale('shop', { web: -1 })).rejects.toThrow(InvalidInput);
    expect(stand.get('Deployment', 'apps', 'shop-web')!.spec.replicas).toBe(2);
  });

  it('restart does a rollout restart of a type, or deletes one dyno’s pod', async () => {
    const kube = platform();
    await deploy(kube, release(1));
    const [first, second] = stand.podsOf('apps', 'shop', 'web');

    expect(await kube.restart('shop', 'web')).toEqual(['web.1', 'web.2']);

    const annotations = stand.get('Deployment', 'apps', 'shop-web')!.spec.template.metadata.annotations;
    expect(Date.parse(annotations['kubectl.kubernetes.io/restartedAt'])).toBeGreaterThan(Date.now() - 10_000);
    expect(
      stand.get('Deployment', 'apps', 'shop-worker')!.spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt'],
    ).toBeUndefined();
    await waitFor('new web pods', async () => {
      const names = stand.podsOf('apps', 'shop', 'web').map((p) => p.metadata.name);
      return names.length === 2 && !names.includes(first!.metadata.name) && !names.includes(second!.metadata.name);
    });
    const web2 = stand.podsOf('apps', 'shop', 'web')[1]!.metadata.name;
    expect(await kube.restart('shop', 'web.2')).toEqual(['web.2']);
    expect(stand.get('Pod', 'apps', web2)).toBeUndefined();
    expect(await kube.restart('shop', 'web.9')).toEqual([]);
  });

  it('stop scales a type to 0', async () => {
    const kube = platform();
    await deploy(kube, release(1));

    expect(await kube.stop('shop', 'worker')).toEqual(['worker.1']);

    expect(stand.get('Deployment', 'apps', 'shop-worker')!.spec.replicas).toBe(0);
    await waitFor('no worker', async () => !(await kube.ps('shop')).dynos.some((d) => d.type === 'worker'));
  });

  it('logs reads the pods’ logs in Heroku’s format with flowops’ own lines, by dyno, and what came after a cursor', async () => {
    const kube = platform();
    await deploy(kube, release(1));
    const [web1, web2] = stand.podsOf('apps', 'shop', 'web');
    const worker1 = stand.podsOf('apps', 'shop', 'worker')[0]!;
    const t = Date.now() - 5000;
    stand.writeLog(web1!.metadata.name, 'listening on 5000', new Date(t));
    stand.writeLog(worker1.metadata.name, 'job 1 done', new Date(t + 1000));
    stand.writeLog(web2!.metadata.name, 'GET / 200', new Date(t + 2000));
    await kube.note('shop', 'api', 'Release v1 created by alice');

    const all = await kube.logs('shop', {});
    const web = await kube.logs('shop', { dyno: 'web' });
    const one = await kube.logs('shop', { dyno: 'web.2' });
    const mine = await kube.logs('shop', { source: 'flowops' });

    expect(all.lines).toEqual([
      expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 app\[web\.1\]: listening on 5000$/),
      expect.stringMatching(/ app\[worker\.1\]: job 1 done$/),
      expect.stringMatching(/ app\[web\.2\]: GET \/ 200$/),
      // The release phase's output, as on Heroku.
      expect.stringMatching(/ app\[release\.1\]: ran: node migrate\.js$/),
      expect.stringMatching(/ flowops\[api\]: Release v1 created by alice$/),
    ]);
    expect(web.lines.map((l) => l.replace(/^\S+ /, ''))).toEqual(['app[web.1]: listening on 5000', 'app[web.2]: GET / 200']);
    expect(one.lines.map((l) => l.replace(/^\S+ /, ''))).toEqual(['app[web.2]: GET / 200']);
    expect(mine.lines.map((l) => l.replace(/^\S+ /, ''))).toEqual(['flowops[api]: Release v1 created by alice']);
    expect((await kube.logs('shop', { num: 1 })).lines).toHaveLength(1);

    stand.writeLog(web1!.metadata.name, 'GET /cart 200');
    const tail = await kube.logs('shop', { after: all.next });
    expect(tail.lines.map((l) => l.replace(/^\S+ /, ''))).toEqual(['app[web.1]: GET /cart 200']);
    expect((await kube.logs('shop', { after: tail.next })).lines).toEqual([]);
  });

  it('runs a one-off command as a Job in the app’s namespace, and cleans it up', async () => {
    const kube = platform();
    stand.jobOutcomes.set('shop/run.1', { exitCode: 0, log: 'seeded 3 products\n' });

    const result = await kube.runCommand(SHA, 'node seed.js', { SEED: '1' }, () => undefined, 'shop');

    expect(result).toEqual({ code: 0, output: 'seeded 3 products\n' });
    const [job] = sent('POST', 'jobs');
    expect(job!.body!.metadata.name).toMatch(/^shop-run-[0-9a-f]{8}$/);
    expect(job!.body!.spec.template.spec.containers[0].command).toEqual(['sh', '-c', 'node seed.js']);
    expect(stand.list('Job', 'apps')).toEqual([]);
    expect(stand.list('Secret', 'apps')).toEqual([]);
    await expect(kube.runCommand(SHA, 'node seed.js', {}, () => undefined)).rejects.toThrow(InvalidInput);
  });
});

describe('destroying an app on Kubernetes', () => {
  it('deletes what flowops made for the app, and nothing else in the namespace', async () => {
    const kube = platform();
    await deploy(kube, release(1));
    await deploy(kube, release(1, { app: 'cart' }));
    const theirs = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'shop-db', namespace: 'apps', labels: { 'flowops.io/app': 'shop' } },
      spec: {
        selector: { matchLabels: { app: 'db' } },
        template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'db', image: 'postgres' }] } },
      },
    };
    stand.put(theirs);
    stand.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'shop-v9', namespace: 'apps' }, data: {} });

    await kube.destroy('shop');

    const left = [...stand.objects.values()].filter((o) => o.kind !== 'Pod').map((o) => `${o.kind}/${o.metadata.name}`);
    expect(left.sort()).toEqual(
      [
        'Deployment/cart-web',
        'Deployment/cart-worker',
        'Deployment/shop-db',
        'Ingress/cart',
        'Job/cart-release-v1',
        'Secret/cart-v1',
        'Secret/shop-v9',
        'Service/cart',
      ].sort(),
    );
    expect(stand.list('Pod', 'apps').filter((p) => p.metadata.labels['flowops.io/app'] === 'shop')).toEqual([]);
    expect(stand.requests.filter((r) => r.method === 'DELETE').every((r) => !/shop-db|shop-v9|cart/.test(r.path))).toBe(true);
  });
});

describe('hostile input', () => {
  it.each(['../kube-system', 'Shop', 'shop;rm -rf', 'a'.repeat(41), '-shop', 'shop-', 'shop.evil.com', '', 'shop\nx', 'shop web'])(
    'refuses the app name %j before anything reaches the cluster',
    async (app) => {
      const kube = platform();

      await expect(kube.releasePhase(release(1, { app }), () => undefined)).rejects.toThrow(InvalidInput);
      await expect(kube.ps(app)).rejects.toThrow(InvalidInput);
      await expect(kube.destroy(app)).rejects.toThrow(InvalidInput);

      expect(stand.requests).toEqual([]);
    },
  );

  it.each([
    ['a namespace that is not a DNS label', { namespace: 'kube-system/../x' }],
    ['a process type that is not a DNS name', { procfile: { 'web/../../x': 'node x' } }],
    ['two process types with one DNS name', { procfile: { worker_a: 'a', 'worker-a': 'b' } }],
    ['a slug id that is not a sha256', { slugId: '../../etc/passwd' }],
    ['a config var name Kubernetes would misread', { config: { 'BAD=NAME': 'x' } }],
  ])(
    'refuses %s',
    async (_what, input: { namespace?: string; procfile?: Record<string, string>; slugId?: string; config?: Record<string, string> }) => {
      if (input.namespace) namespaces.shop = input.namespace;
      const kube = platform();
      const overrides = { ...input };
      delete overrides.namespace;

      await expect(deploy(kube, release(1, overrides))).rejects.toThrow(InvalidInput);

      expect(stand.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    },
  );

  it('sends config values as they are, whatever they contain, only inside the Secret', async () => {
    const kube = platform();
    const config = { TOKEN: '$(cat /etc/shadow)`id`; "quotes" \n newline', EMPTY: '' };

    await deploy(kube, release(1, { config }));

    expect(decode(stand.get('Secret', 'apps', 'shop-v1')!.data)).toEqual(config);
    const elsewhere = stand.requests.filter(
      (r) => !r.path.includes('/secrets') && r.body && JSON.stringify(r.body).includes('/etc/shadow'),
    );
    expect(elsewhere).toEqual([]);
  });

  it('the stand-in refuses what the API server refuses, so a passing test means valid objects', async () => {
    const apps = kubeConfigFromEnv({ KUBECONFIG: path.join(dir, 'kubeconfig') }).makeApiClient(AppsV1Api);
    const bad = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'bad' },
      spec: {
        selector: { matchLabels: { a: 'b' } },
        template: { metadata: { labels: { a: 'c' } }, spec: { containers: [{ name: 'x', image: 'y' }] } },
      },
    };

    await expect(apps.createNamespacedDeployment({ namespace: 'apps', body: bad })).rejects.toMatchObject({ code: 422 });
    await expect(
      apps.createNamespacedDeployment({ namespace: 'apps', body: { ...bad, spec: { ...bad.spec, replicas: 'two' as unknown as number } } }),
    ).rejects.toMatchObject({ code: 422 });

    expect(stand.rejected.map((r) => r.message)).toEqual([
      expect.stringContaining('selector` does not match template `labels`'),
      expect.stringContaining('replicas must be integer'),
    ]);
    stand.rejected.length = 0;
  });
});

describe('kubeConfigFromEnv', () => {
  it('names KUBECONFIG when no cluster is configured', () => {
    expect(() => kubeConfigFromEnv({})).toThrow(/set KUBECONFIG/);
    expect(() => kubeConfigFromEnv({ KUBECONFIG: path.join(dir, 'missing') })).toThrow(/KUBECONFIG=.*missing: no such file/);
  });
});
