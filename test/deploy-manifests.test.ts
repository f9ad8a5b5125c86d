import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { describe, expect, it } from 'vitest';
import { readSettings } from '../src/config.ts';
import { parseAllDocuments } from 'yaml';
import { kubeConfigFromEnv } from '../src/platform/kubernetes/kube-config.ts';
import { KubernetesPlatform } from '../src/platform/kubernetes/kubernetes-platform.ts';
import type { ReleaseSpec } from '../src/platform/platform.ts';
import { KubeStandIn } from './helpers/kube-stand-in.ts';
import { MemoryPlatform } from './helpers/memory-platform.ts';

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are open YAML, checked by the schemas */
type Obj = Record<string, any>;

const DIR = path.join(import.meta.dirname, '..', 'deploy', 'kubernetes');

/** Kubernetes' own schemas, by `apiVersion/kind`. */
const MODELS: Record<string, (obj: Obj) => { validate(): void }> = {
  'v1/Namespace': (o) => new Namespace(o as never),
  'v1/Secret': (o) => new Secret(o as never),
  'v1/Service': (o) => new Service(o as never),
  'v1/ServiceAccount': (o) => new ServiceAccount(o as never),
  'apps/v1/Deployment': (o) => new Deployment(o as never),
  'networking.k8s.io/v1/Ingress': (o) => new Ingress(o as never),
  'policy/v1/PodDisruptionBudget': (o) => new PodDisruptionBudget(o as never),
  'rbac.authorization.k8s.io/v1/Role': (o) => new Role(o as never),
  'rbac.authorization.k8s.io/v1/RoleBinding': (o) => new RoleBinding(o as never),
};

async function manifests(): Promise<{ file: string; obj: Obj }[]> {
  const out: { file: string; obj: Obj }[] = [];
  for (const file of (await readdir(DIR)).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(await readFile(path.join(DIR, file), 'utf8'))) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]!.message}`);
      const obj = doc.toJS() as Obj | null;
      if (obj) out.push({ file, obj });
    }
  }
  return out;
}

const find = (all: { obj: Obj }[], kind: string, name?: string) =>
  all.map((m) => m.obj).filter((o) => o.kind === kind && (!name || o.metadata.name === name));

describe('deploy/kubernetes', () => {
  it('every document is a Kubernetes object that validates against Kubernetes’ own schemas', async () => {
    const all = await manifests();

    expect(all.length).toBeGreaterThanOrEqual(10);
    for (const { file, obj } of all) {
      const model = MODELS[`${obj.apiVersion}/${obj.kind}`];
      expect(model, `${file}: ${obj.apiVersion}/${obj.kind}`).toBeDefined();
      expect(() => model!(obj).validate(), `${file}: ${obj.kind} ${obj.metadata?.name}`).not.toThrow();
    }
    // Everything lives in a namespace the manifests create.
    const namespaces = new Set(find(all, 'Namespace').map((n) => n.metadata.name));
    for (const { obj } of all)
      if (obj.kind !== 'Namespace') expect(namespaces, `${obj.kind} ${obj.metadata.name}`).toContain(obj.metadata.namespace);
  });

  it('runs flowops as two replicas on Postgres from a Secret, slugs in S3, probed on /healthz', async () => {
    const all = await manifests();
    const [deployment] = find(all, 'Deployment', 'flowops');
    const container = deployment!.spec.template.spec.containers[0];
    const env = Object.fromEntries(container.env.map((e: Obj) => [e.name, e.value ?? e.valueFrom]));

    expect(deployment!.spec.replicas).toBe(2);
    expect(env.DATABASE_URL).toEqual({ secretKeyRef: { name: 'flowops-database', key: 'DATABASE_URL' } });
    expect(env.FLOW_SLUG_STORE).toMatch(/^s3:\/\/[a-z0-9.-]+\/\S*$/);
    expect(env.FLOW_S3_ENDPOINT).toMatch(/^https?:\/\//);
    expect(env.AWS_ACCESS_KEY_ID).toEqual({ secretKeyRef: { name: 'flowops-s3', key: 'AWS_ACCESS_KEY_ID' } });
    expect(env.AWS_SECRET_ACCESS_KEY).toEqual({ secretKeyRef: { name: 'flowops-s3', key: 'AWS_SECRET_ACCESS_KEY' } });
    for (const probe of [container.readinessProbe, container.livenessProbe])
      expect(probe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.ports).toContainEqual({ name: 'http', containerPort: Number(env.PORT) });
    // The Secrets it reads exist, with the keys it reads.
    for (const ref of container.env.map((e: Obj) => e.valueFrom?.secretKeyRef).filter(Boolean)) {
      const [secret] = find(all, 'Secret', ref.name);
      expect(secret?.stringData, `${ref.name}/${ref.key}`).toHaveProperty(ref.key);
    }
    for (const from of container.envFrom) expect(find(all, 'Secret', from.secretRef.name)).toHaveLength(1);
    // The Service reaches its pods.
    const [service] = find(all, 'Service', 'flowops');
    expect(deployment!.spec.template.metadata.labels).toMatchObject(service!.spec.selector);
    expect(container.ports.map((p: Obj) => p.name)).toContain(service!.spec.ports[0].targetPort);
    expect(deployment!.spec.template.spec.serviceAccountName).toBe(find(all, 'ServiceAccount')[0]!.metadata.name);
  });

  it('gives flowops settings it starts with: replicas on Kubernetes, pods fetching slugs from its Service', async () => {
    const all = await manifests();
    const [deployment] = find(all, 'Deployment', 'flowops');
    const container = deployment!.spec.template.spec.containers[0];
    // The pod's environment, as the kubelet makes it: values, then the Secrets' keys.
    const secret = (name: string) => find(all, 'Secret', name)[0]!.stringData as Record<string, string>;
    const env: Record<string, string> = { KUBERNETES_SERVICE_HOST: '10.0.0.1' };
    for (const from of container.envFrom) Object.assign(env, secret(from.secretRef.name));
    for (const e of container.env) env[e.name] = e.value ?? secret(e.valueFrom.secretKeyRef.name)[e.valueFrom.secretKeyRef.key]!;

    const settings = readSettings(env);

    expect(settings.platform).toBe('kubernetes');
    expect(settings.sandbox).toBe('bubblewrap');
    expect(settings.slugStore.kind).toBe('s3');
    const [service] = find(all, 'Service', 'flowops');
    expect(settings.kubernetes?.publicUrl).toBe(`http://${service!.metadata.name}.${service!.metadata.namespace}.svc.cluster.local`);
    expect(service!.spec.ports[0].port).toBe(80);
    // Apps go to the namespace the Role is granted in.
    expect(settings.kubernetes?.namespace).toBe(find(all, 'Role')[0]!.metadata.namespace);
  });

  it('grants flowops’ service account exactly the verbs the Kubernetes platform uses, in the apps’ namespace', async () => {
    const all = await manifests();
    const [role] = find(all, 'Role');
    const [binding] = find(all, 'RoleBinding');
    const [account] = find(all, 'ServiceAccount');
    const granted = new Set<string>();
    for (const rule of role!.rules)
      for (const group of rule.apiGroups)
        for (const resource of rule.resources) for (const verb of rule.verbs) granted.add(`${group}/${resource}:${verb}`);

    const used = await verbsThePlatformUses();

    expect(binding!.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role!.metadata.name });
    expect(binding!.subjects).toEqual([{ kind: 'ServiceAccount', name: account!.metadata.name, namespace: account!.metadata.namespace }]);
    expect(binding!.metadata.namespace).toBe(role!.metadata.namespace);
    expect([...granted].sort()).toEqual([...used].sort());
  });
});

/**
 * Drives the Kubernetes platform through everything it does (release, rollback,
 * ps, scale, restart, stop, logs, one-off command, destroy) against the stand-in,
 * and names each request as RBAC does (`apps/deployments:patch`).
 */
async function verbsThePlatformUses(): Promise<Set<string>> {
  const stand = await KubeStandIn.start();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'flowops-rbac-'));
  try {
    stand.namespaces.add('flowops-apps');
    const kube = new KubernetesPlatform({
      kubeConfig: kubeConfigFromEnv({ KUBECONFIG: await stand.writeKubeconfig(dir) }),
      builder: new MemoryPlatform(),
      slugUrl: (_app, sha) => `http://slugs.invalid/${sha}.tgz`,
      namespaceOf: async () => 'flowops-apps',
      stackImage: 'node:20-bookworm',
      domain: 'apps.example.com',
      rolloutTimeoutMs: 300,
      jobTimeoutMs: 2000,
      pollMs: 10,
      keepReleases: 1,
    });
    const spec = (version: number, procfile: Record<string, string>): ReleaseSpec => ({
      app: 'shop',
      releaseId: version,
      version,
      slugId: 'a'.repeat(64),
      procfile,
      config: { A: '1' },
      formation: {},
    });
    const release = async (s: ReleaseSpec) => {
      await kube.releasePhase(s, () => undefined);
      await kube.start(s, () => undefined).catch(() => undefined);
    };
    await release(spec(1, { web: 'node web.js', worker: 'node w.js', release: 'node m.js' }));
    await release(spec(2, { web: 'node web.js', release: 'node m.js' }));
    stand.stalledApps.add('shop');
    await release(spec(3, { web: 'node web.js --v3' }));
    stand.stalledApps.clear();
    await release(spec(4, { worker: 'node w.js' }));
    await release(spec(5, { web: 'node web.js' }));
    await kube.ps('shop');
    await kube.scale('shop', { web: 2 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await kube.restart('shop', 'web');
    await kube.restart('shop', 'web.1');
    await kube.stop('shop', 'web.1');
    await kube.stop('shop', 'web');
    stand.writeLog(stand.podsOf('flowops-apps', 'shop', 'web')[0]?.metadata.name ?? stand.list('Pod')[0]!.metadata.name, 'hello');
    await kube.logs('shop', {});
    await kube.crashed();
    await kube.runCommand('a'.repeat(64), 'node seed.js', {}, () => undefined, 'shop');
    await kube.destroy('shop');
    expect(stand.rejected).toEqual([]);

    const used = new Set<string>();
    for (const request of stand.requests) {
      const m = /^\/(?:api\/v1|apis\/([^/]+)\/v1)\/namespaces\/[^/]+\/([a-z]+)(\/[^/?]+)?(\/log)?/.exec(request.path)!;
      const [, group = '', resource, item, log] = m;
      const verb = { GET: item ? 'get' : 'list', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' }[request.method]!;
      used.add(`${group}/${resource}${log ? '/log' : ''}:${verb}`);
    }
    return used;
  } finally {
    await stand.close();
    await rm(dir, { recursive: true, force: true });
  }
}
