import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';

/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes objects are open JSON here, checked by the schemas */
type Obj = Record<string, any>;

interface Resource {
  kind: string;
  apiVersion: string;
  validate: (obj: Obj) => void;
}

/** The API groups and resources the Kubernetes platform uses, with Kubernetes' own schemas. */
const RESOURCES: Record<string, Resource> = {
  'api/v1/secrets': { kind: 'Secret', apiVersion: 'v1', validate: (o) => new Secret(o as never).validate() },
  'api/v1/pods': { kind: 'Pod', apiVersion: 'v1', validate: (o) => new Pod(o as never).validate() },
  'api/v1/services': { kind: 'Service', apiVersion: 'v1', validate: (o) => new Service(o as never).validate() },
  'apis/apps/v1/deployments': { kind: 'Deployment', apiVersion: 'apps/v1', validate: (o) => new Deployment(o as never).validate() },
  'apis/batch/v1/jobs': { kind: 'Job', apiVersion: 'batch/v1', validate: (o) => new Job(o as never).validate() },
  'apis/networking.k8s.io/v1/ingresses': {
    kind: 'Ingress',
    apiVersion: 'networking.k8s.io/v1',
    validate: (o) => new Ingress(o as never).validate(),
  },
};

const ROUTE =
  /^\/(api\/v1|apis\/apps\/v1|apis\/batch\/v1|apis\/networking\.k8s\.io\/v1)\/namespaces\/([^/]+)\/([a-z]+)(?:\/([^/]+))?(?:\/(log))?$/;

export interface SentRequest {
  method: string;
  path: string;
  contentType?: string;
  body?: Obj;
}

export interface JobOutcome {
  exitCode: number;
  log: string;
  /** The Job never finishes (a release phase that hangs). */
  hangs?: boolean;
}

interface LogLine {
  at: Date;
  container: string;
  text: string;
}

export const STAND_IN_TOKEN = 'stand-in-token';

/** What a Deployment's pods are told of their slug, from its init container's environment: `SLUG_URL` and `SLUG_SHA256`. */
export function slugOfDeployment(deployment: Obj | undefined): { url: string; sha256: string } {
  const env = (deployment?.spec.template.spec.initContainers[0].env ?? []) as { name: string; value: string }[];
  const value = (name: string) => {
    const found = env.find((e) => e.name === name);
    if (!found) throw new Error(`no ${name} in the init container of ${String(deployment?.metadata?.name)}`);
    return found.value;
  };
  return { url: value('SLUG_URL'), sha256: value('SLUG_SHA256') };
}

/**
 * A stand-in for the Kubernetes API server on a local port: the subset the
 * Kubernetes platform uses (Secrets, Jobs, Deployments, Services, Ingresses,
 * pods and their logs), namespaced, with label selectors, merge patches,
 * resourceVersion conflicts and cascading deletes. Every object sent is
 * recorded and validated against Kubernetes' own schemas (kubernetes-models)
 * and the API server's name and label rules; an invalid one is answered 422 and
 * kept in `rejected`, so a test can fail on it. It plays the controllers too:
 * a Deployment gets its pods and completes its rollout shortly after a change,
 * a Job runs one pod that succeeds, unless a test scripts otherwise.
 */
export class KubeStandIn {
  readonly requests: SentRequest[] = [];
  readonly rejected: { path: string; message: string }[] = [];
  readonly unexpected: string[] = [];
  readonly namespaces = new Set<string>();
  /** Every object by `resource/namespace/name`. */
  readonly objects = new Map<string, Obj>();
  /** Each Deployment's pod templates, in the order they were sent (`namespace/name`). */
  readonly templates = new Map<string, Obj[]>();
  /** How Jobs of an app end, by `app/process` (`shop/release`, `shop/run.1`); unscripted Jobs succeed. */
  readonly jobOutcomes = new Map<string, JobOutcome>();
  /** Apps whose rollouts never complete: new pods crash-loop, old ones keep running. */
  readonly stalledApps = new Set<string>();
  /** Check the slug a pod would fetch: GET its SLUG_URL and compare its sha256 (the init container's job). */
  fetchSlugs = false;
  /** How long the controllers take to act. */
  delayMs = 20;
  url = '';
  private readonly logs = new Map<string, LogLine[]>();
  /** Pods' owners (a Deployment's or Job's uid). */
  private readonly owners = new Map<string, string>();
  /** The template hash each Deployment last completed a rollout of. */
  private readonly stable = new Map<string, string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private version = 100;
  private server!: http.Server;

  static async start(): Promise<KubeStandIn> {
    const stand = new KubeStandIn();
    stand.server = http.createServer((req, res) => {
      stand.handle(req, res).catch((err: unknown) => stand.answer(res, 500, status(500, 'InternalError', String(err))));
    });
    await new Promise<void>((resolve) => stand.server.listen(0, '127.0.0.1', resolve));
    stand.url = `http://127.0.0.1:${(stand.server.address() as AddressInfo).port}`;
    return stand;
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** A kubeconfig for this server (plain HTTP, a bearer token), written to `dir`. */
  async writeKubeconfig(dir: string): Promise<string> {
    const file = path.join(dir, 'kubeconfig');
    await writeFile(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '  - name: stand-in',
        // Plain HTTP: the client takes it only with TLS verification off (there is no TLS to verify).
        `    cluster: { server: "${this.url}", insecure-skip-tls-verify: true }`,
        'users:',
        '  - name: flowops',
        `    user: { token: ${STAND_IN_TOKEN} }`,
        'contexts:',
        '  - name: stand-in',
        '    context: { cluster: stand-in, user: flowops, namespace: default }',
        'current-context: stand-in',
        '',
      ].join('\n'),
    );
    return file;
  }

  // ---- what tests read and script ----

  /** The objects of a kind (`Deployment`) in a namespace. */
  list(kind: string, namespace?: string): Obj[] {
    return [...this.objects.values()].filter((o) => o.kind === kind && (!namespace || o.metadata.namespace === namespace));
  }

  get(kind: string, namespace: string, name: string): Obj | undefined {
    return this.list(kind, namespace).find((o) => o.metadata.name === name);
  }

  /** Puts an object in place as someone else would (kubectl): not recorded as sent by flowops, but validated. */
  put(obj: Obj): Obj {
    const resource = Object.entries(RESOURCES).find(([, r]) => r.kind === obj.kind)!;
    const key = `${resource[0]}/${obj.metadata.namespace}/${obj.metadata.name}`;
    const stored = this.stamp(structuredClone(obj), obj.metadata.namespace);
    this.objects.set(key, stored);
    return stored;
  }

  /** The pods of an app's process type, oldest first (as `ps` numbers them). */
  podsOf(namespace: string, app: string, process: string): Obj[] {
    return this.list('Pod', namespace)
      .filter((p) => p.metadata.labels?.['flowops.io/app'] === app && p.metadata.labels?.['flowops.io/process'] === process)
      .sort(
        (a, b) =>
          a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp) || a.metadata.name.localeCompare(b.metadata.name),
      );
  }

  /** A pod's process prints a line (as the container runtime stamps it). */
  writeLog(podName: string, text: string, at = new Date()): void {
    const pod = this.list('Pod').find((p) => p.metadata.name === podName);
    if (!pod) throw new Error(`no pod ${podName}`);
    const container = pod.spec.containers[0].name as string;
    this.logs.set(podName, [...(this.logs.get(podName) ?? []), { at, container, text }]);
  }

  /** A pod's container keeps crashing: CrashLoopBackOff after exit code `exitCode`. */
  crashPod(podName: string, exitCode = 1): void {
    const pod = this.list('Pod').find((p) => p.metadata.name === podName);
    if (!pod) throw new Error(`no pod ${podName}`);
    const finishedAt = iso();
    pod.status.conditions = [{ type: 'Ready', status: 'False' }];
    pod.status.containerStatuses = pod.status.containerStatuses.map((s: Obj) => ({
      ...s,
      ready: false,
      restartCount: 3,
      state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container' } },
      lastState: { terminated: { exitCode, reason: 'Error', startedAt: finishedAt, finishedAt } },
    }));
  }

  // ---- the HTTP API ----

  private answer(res: http.ServerResponse, code: number, body: Obj | string): void {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(code, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json' }).end(text);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const contentType = req.headers['content-type']?.split(';')[0];
    let body: Obj | undefined;
    if (raw) {
      try {
        body = JSON.parse(raw) as Obj;
      } catch {
        return this.answer(res, 400, status(400, 'BadRequest', 'the body is not JSON'));
      }
    }
    const method = req.method ?? 'GET';
    this.requests.push({
      method,
      path: `${url.pathname}${url.search}`,
      ...(contentType ? { contentType } : {}),
      ...(body ? { body } : {}),
    });
    if (req.headers.authorization !== `Bearer ${STAND_IN_TOKEN}`) return this.answer(res, 401, status(401, 'Unauthorized', 'Unauthorized'));

    const ns = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(url.pathname);
    if (ns && method === 'GET') {
      if (!this.namespaces.has(ns[1]!)) return this.answer(res, 404, status(404, 'NotFound', `namespaces "${ns[1]}" not found`));
      return this.answer(res, 200, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns[1] }, status: { phase: 'Active' } });
    }
    const match = ROUTE.exec(url.pathname);
    const resourceKey = match ? `${match[1]}/${match[3]}` : '';
    const resource = RESOURCES[resourceKey];
    if (!match || !resource || (match[5] && resourceKey !== 'api/v1/pods')) {
      this.unexpected.push(`${method} ${url.pathname}`);
      return this.answer(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    }
    const namespace = decodeURIComponent(match[2]!);
    const name = match[4] ? decodeURIComponent(match[4]) : undefined;
    if (!this.namespaces.has(namespace)) return this.answer(res, 404, status(404, 'NotFound', `namespaces "${namespace}" not found`));
    const key = `${resourceKey}/${namespace}/${name}`;
    const existing = name ? this.objects.get(key) : undefined;
    const notFound = () => this.answer(res, 404, status(404, 'NotFound', `${match[3]} "${name}" not found`));
    const invalid = (message: string) => {
      this.rejected.push({ path: url.pathname, message });
      return this.answer(res, 422, status(422, 'Invalid', `${resource.kind} "${body?.metadata?.name ?? name}" is invalid: ${message}`));
    };

    if (match[5]) {
      if (!existing) return notFound();
      return this.answer(res, ...this.podLog(existing, url.searchParams));
    }

    if (method === 'GET' && !name) {
      let items = this.list(resource.kind, namespace);
      const selector = url.searchParams.get('labelSelector');
      if (selector) {
        const test = parseSelector(selector);
        if (!test) return this.answer(res, 400, status(400, 'BadRequest', `unable to parse requirement: ${selector}`));
        items = items.filter((o) => test(o.metadata.labels ?? {}));
      }
      return this.answer(res, 200, {
        apiVersion: resource.apiVersion,
        kind: `${resource.kind}List`,
        metadata: { resourceVersion: String(this.version) },
        items,
      });
    }
    if (method === 'GET') return existing ? this.answer(res, 200, existing) : notFound();

    if (method === 'POST' && !name) {
      if (!body) return this.answer(res, 400, status(400, 'BadRequest', 'no body'));
      const problem = this.check(resource, body, namespace, null);
      if (problem) return invalid(problem);
      const newKey = `${resourceKey}/${namespace}/${body.metadata.name}`;
      if (this.objects.has(newKey))
        return this.answer(res, 409, status(409, 'AlreadyExists', `${match[3]} "${body.metadata.name}" already exists`));
      const created = this.stamp(structuredClone(body), namespace);
      delete created.status;
      created.status = {};
      this.objects.set(newKey, created);
      this.changed(created, null);
      return this.answer(res, 201, created);
    }

    if ((method === 'PUT' || method === 'PATCH') && name) {
      if (!existing) return notFound();
      let next: Obj;
      if (method === 'PUT') {
        if (!body) return this.answer(res, 400, status(400, 'BadRequest', 'no body'));
        if (body.metadata?.resourceVersion && body.metadata.resourceVersion !== existing.metadata.resourceVersion)
          return this.answer(
            res,
            409,
            status(409, 'Conflict', `Operation cannot be fulfilled on ${match[3]} "${name}": the object has been modified`),
          );
        next = structuredClone(body);
      } else {
        if (contentType !== 'application/merge-patch+json' && contentType !== 'application/strategic-merge-patch+json')
          return this.answer(res, 415, status(415, 'UnsupportedMediaType', `the stand-in takes merge patches, not ${contentType}`));
        next = applyMergePatch(structuredClone(existing), body) as Obj;
      }
      if (next.metadata?.name !== name) return invalid('metadata.name: the name in the body does not match the URL');
      const problem = this.check(resource, next, namespace, existing);
      if (problem) return invalid(problem);
      next.metadata = {
        ...next.metadata,
        uid: existing.metadata.uid,
        namespace,
        creationTimestamp: existing.metadata.creationTimestamp,
        resourceVersion: String(++this.version),
        generation: existing.metadata.generation,
      };
      next.status = existing.status; // the status is the controllers' (the status subresource)
      if (JSON.stringify(next.spec) !== JSON.stringify(existing.spec) && existing.metadata.generation)
        next.metadata.generation = existing.metadata.generation + 1;
      this.objects.set(key, next);
      this.changed(next, existing);
      return this.answer(res, 200, next);
    }

    if (method === 'DELETE' && name) {
      if (!existing) return notFound();
      this.remove(key, existing, url.searchParams.get('propagationPolicy') ?? body?.propagationPolicy);
      return this.answer(res, 200, status(200, 'Success', 'deleted'));
    }
    this.unexpected.push(`${method} ${url.pathname}`);
    return this.answer(res, 405, status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
  }

  private stamp(obj: Obj, namespace: string): Obj {
    obj.metadata = {
      ...obj.metadata,
      namespace,
      uid: randomBytes(16).toString('hex'),
      resourceVersion: String(++this.version),
      creationTimestamp: obj.metadata.creationTimestamp ?? iso(),
      ...(obj.kind === 'Deployment' || obj.kind === 'Job' ? { generation: 1 } : {}),
    };
    obj.status ??= {};
    return obj;
  }

  private remove(key: string, obj: Obj, propagation: string | undefined): void {
    this.objects.delete(key);
    // Jobs orphan their pods unless asked (batch/v1's legacy default); Deployments take theirs along.
    const cascade = propagation ? propagation !== 'Orphan' : obj.kind !== 'Job';
    if (!cascade) return;
    for (const [podKey, pod] of this.objects)
      if (pod.kind === 'Pod' && this.owners.get(pod.metadata.uid) === obj.metadata.uid) this.objects.delete(podKey);
  }

  private podLog(pod: Obj, params: URLSearchParams): [number, string | Obj] {
    const container = params.get('container') ?? pod.spec.containers[0].name;
    const names = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].map((c: Obj) => c.name);
    if (!names.includes(container))
      return [400, status(400, 'BadRequest', `container ${container} is not valid for pod ${pod.metadata.name}`)];
    let lines = (this.logs.get(pod.metadata.name) ?? []).filter((l) => l.container === container);
    const since = params.get('sinceSeconds');
    if (since) lines = lines.filter((l) => l.at.getTime() >= Date.now() - Number(since) * 1000);
    const tail = params.get('tailLines');
    if (tail) lines = lines.slice(-Number(tail));
    const stamps = params.get('timestamps') === 'true';
    let text = lines.map((l) => `${stamps ? `${nanoTime(l.at)} ` : ''}${l.text}\n`).join('');
    const limit = params.get('limitBytes');
    if (limit) text = text.slice(0, Number(limit));
    return [200, text];
  }

  /** The API server's checks: the schema, then the rules the schema cannot say. */
  private check(resource: Resource, obj: Obj, namespace: string, existing: Obj | null): string | null {
    if (obj.kind !== resource.kind || obj.apiVersion !== resource.apiVersion)
      return `kind/apiVersion: ${obj.kind}/${obj.apiVersion} sent to the ${resource.kind} endpoint`;
    try {
      resource.validate(obj);
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
    return validateObject(obj, namespace, existing);
  }

  // ---- the controllers ----

  private later(work: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      work();
    }, this.delayMs);
    this.timers.add(timer);
  }

  private changed(obj: Obj, before: Obj | null): void {
    if (obj.kind === 'Deployment') {
      const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
      if (!before || JSON.stringify(before.spec.template) !== JSON.stringify(obj.spec.template))
        this.templates.set(key, [...(this.templates.get(key) ?? []), structuredClone(obj.spec.template)]);
      this.later(() => this.reconcileDeployment(obj.metadata.namespace, obj.metadata.name));
    }
    if (obj.kind === 'Job' && !before) this.later(() => void this.runJob(obj.metadata.namespace, obj.metadata.name));
  }

  private reconcileDeployment(namespace: string, name: string): void {
    const deployment = this.get('Deployment', namespace, name);
    if (!deployment) return;
    const hash = templateHash(deployment.spec.template);
    const replicas = deployment.spec.replicas ?? 1;
    const owned = this.list('Pod', namespace).filter((p) => this.owners.get(p.metadata.uid) === deployment.metadata.uid);
    const current = owned.filter((p) => p.metadata.labels['pod-template-hash'] === hash);
    const old = owned.filter((p) => p.metadata.labels['pod-template-hash'] !== hash);
    const key = `${namespace}/${name}`;
    const app = deployment.metadata.labels?.['flowops.io/app'] as string | undefined;
    const stalls = app !== undefined && this.stalledApps.has(app) && this.stable.get(key) !== hash;
    for (const pod of current.slice(replicas)) this.objects.delete(`api/v1/pods/${namespace}/${pod.metadata.name}`);
    for (let i = current.length; i < replicas; i++) this.makePod(deployment, deployment.spec.template, hash, stalls ? 'crashing' : 'ready');
    const ready = (p: Obj) => p.status.conditions?.some((c: Obj) => c.type === 'Ready' && c.status === 'True');
    if (stalls) {
      const oldReady = old.filter(ready).length;
      deployment.status = {
        observedGeneration: deployment.metadata.generation,
        replicas: old.length + replicas,
        updatedReplicas: replicas,
        readyReplicas: oldReady,
        availableReplicas: oldReady,
        unavailableReplicas: replicas,
        conditions: [{ type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated' }],
      };
      return;
    }
    for (const pod of old) this.objects.delete(`api/v1/pods/${namespace}/${pod.metadata.name}`);
    this.stable.set(key, hash);
    const pods = this.list('Pod', namespace).filter((p) => this.owners.get(p.metadata.uid) === deployment.metadata.uid);
    const up = pods.filter(ready).length;
    deployment.status = {
      observedGeneration: deployment.metadata.generation,
      replicas: pods.length,
      updatedReplicas: pods.length,
      readyReplicas: up,
      availableReplicas: up,
      ...(pods.length - up ? { unavailableReplicas: pods.length - up } : {}),
      conditions: [{ type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' }],
    };
  }

  private makePod(owner: Obj, template: Obj, hash: string | null, state: 'ready' | 'crashing' | 'pending'): Obj {
    const name = `${owner.metadata.name}-${hash ? `${hash.slice(0, 10)}-` : ''}${randomBytes(3).toString('hex').slice(0, 5)}`;
    const now = iso();
    const pod = this.stamp(
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name,
          labels: { ...template.metadata?.labels, ...(hash ? { 'pod-template-hash': hash } : {}) },
          annotations: { ...template.metadata?.annotations },
          ownerReferences: [
            { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid, controller: true },
          ],
        },
        spec: structuredClone(template.spec),
      },
      owner.metadata.namespace,
    );
    this.owners.set(pod.metadata.uid, owner.metadata.uid);
    const containers = pod.spec.containers as Obj[];
    pod.status = {
      phase: state === 'pending' ? 'Pending' : 'Running',
      startTime: now,
      conditions: [{ type: 'Ready', status: state === 'ready' ? 'True' : 'False' }],
      initContainerStatuses: (pod.spec.initContainers ?? []).map((c: Obj) => ({
        name: c.name,
        image: c.image,
        imageID: '',
        ready: true,
        restartCount: 0,
        state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: now, finishedAt: now } },
      })),
      containerStatuses: containers.map((c) => ({
        name: c.name,
        image: c.image,
        imageID: '',
        ready: state === 'ready',
        restartCount: state === 'crashing' ? 3 : 0,
        state:
          state === 'crashing'
            ? { waiting: { reason: 'CrashLoopBackOff', message: 'back-off restarting failed container' } }
            : state === 'ready'
              ? { running: { startedAt: now } }
              : { waiting: { reason: 'PodInitializing' } },
        ...(state === 'crashing' ? { lastState: { terminated: { exitCode: 1, reason: 'Error', startedAt: now, finishedAt: now } } } : {}),
      })),
    };
    this.objects.set(`api/v1/pods/${pod.metadata.namespace}/${name}`, pod);
    return pod;
  }

  private async runJob(namespace: string, name: string): Promise<void> {
    const job = this.get('Job', namespace, name);
    if (!job) return;
    const labels = job.spec.template.metadata?.labels ?? {};
    const outcome = this.jobOutcomes.get(`${labels['flowops.io/app']}/${labels['flowops.io/process']}`) ?? {
      exitCode: 0,
      log: `ran: ${job.spec.template.spec.containers[0].command.at(-1)}\n`,
    };
    const template = { ...job.spec.template, metadata: { ...job.spec.template.metadata, labels: { ...labels, 'job-name': name } } };
    const pod = this.makePod(job, template, null, 'pending');
    job.status = { startTime: iso(), active: 1 };
    if (outcome.hangs) return;
    const slugProblem = this.fetchSlugs ? await this.checkSlug(pod) : null;
    const now = iso();
    const container = pod.spec.containers[0].name as string;
    if (slugProblem) {
      pod.status.initContainerStatuses[0].state = { terminated: { exitCode: 1, reason: 'Error', startedAt: now, finishedAt: now } };
      this.logs.set(pod.metadata.name, [{ at: new Date(), container: pod.spec.initContainers[0].name, text: slugProblem }]);
    } else {
      this.logs.set(
        pod.metadata.name,
        outcome.log
          .split('\n')
          .filter(Boolean)
          .map((text) => ({ at: new Date(), container, text })),
      );
      pod.status.containerStatuses[0].state = {
        terminated: { exitCode: outcome.exitCode, reason: outcome.exitCode ? 'Error' : 'Completed', startedAt: now, finishedAt: now },
      };
    }
    const failed = Boolean(slugProblem) || outcome.exitCode !== 0;
    pod.status.phase = failed ? 'Failed' : 'Succeeded';
    pod.status.conditions = [{ type: 'Ready', status: 'False' }];
    job.status = failed
      ? { startTime: job.status.startTime, failed: 1, conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }] }
      : { startTime: job.status.startTime, completionTime: now, succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] };
  }

  /** What the init container does: fetch SLUG_URL and check it against SLUG_SHA256. The problem, or null. */
  private async checkSlug(pod: Obj): Promise<string | null> {
    const env = Object.fromEntries((pod.spec.initContainers?.[0]?.env ?? []).map((e: Obj) => [e.name, e.value])) as Record<string, string>;
    try {
      const response = await fetch(env.SLUG_URL!);
      if (!response.ok) return `curl: (22) The requested URL returned error: ${response.status}`;
      const sha = createHash('sha256')
        .update(Buffer.from(await response.arrayBuffer()))
        .digest('hex');
      return sha === env.SLUG_SHA256 ? null : '/tmp/slug.tgz: FAILED\nsha256sum: WARNING: 1 computed checksum did NOT match';
    } catch (err) {
      return `curl: could not fetch the slug: ${String(err)}`;
    }
  }
}

function status(code: number, reason: string, message: string): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: code < 300 ? 'Success' : 'Failure', message, reason, code };
}

function iso(at = new Date()): string {
  return `${at.toISOString().slice(0, 19)}Z`;
}

function nanoTime(at: Date): string {
  return `${at.toISOString().slice(0, 23)}000000Z`;
}

function templateHash(template: Obj): string {
  return createHash('sha256')
    .update(JSON.stringify(template))
    .digest('hex')
    .slice(0, 10)
    .replace(/^[0-9]/, 'h');
}

/** RFC 7386. */
function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Obj = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Obj) } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = applyMergePatch(out[key], value);
  }
  return out;
}

/** Equality-based selectors (`a=b,c!=d,e,!f`), as the API server reads them; null when it cannot parse one. */
function parseSelector(selector: string): ((labels: Record<string, string>) => boolean) | null {
  const tests: ((labels: Record<string, string>) => boolean)[] = [];
  for (const part of selector.split(',')) {
    const m = /^(!?)([A-Za-z0-9./_-]+)(?:(!=|==|=)(.*))?$/.exec(part.trim());
    if (!m) return null;
    const [, not, key, op, value] = m;
    if (!LABEL_KEY(key!) || (value !== undefined && !LABEL_VALUE.test(value))) return null;
    if (!op) tests.push(not ? (l) => !(key! in l) : (l) => key! in l);
    else if (not) return null;
    else tests.push(op === '!=' ? (l) => l[key!] !== value : (l) => l[key!] === value);
  }
  return (labels) => tests.every((t) => t(labels));
}

// ---- the API server's own rules (what the OpenAPI schemas do not say) ----

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const isLabel = (s: unknown) => typeof s === 'string' && s.length <= 63 && DNS_LABEL.test(s);
const isSubdomain = (s: unknown) => typeof s === 'string' && s.length <= 253 && s.split('.').every((part) => DNS_LABEL.test(part));
function LABEL_KEY(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const name = slash < 0 ? key : key.slice(slash + 1);
  return (slash < 0 || isSubdomain(key.slice(0, slash))) && name.length <= 63 && QUALIFIED_NAME.test(name);
}
function isPortName(s: unknown): boolean {
  return typeof s === 'string' && s.length <= 15 && /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(s) && /[a-z]/.test(s) && !s.includes('--');
}

function validateObject(obj: Obj, namespace: string, existing: Obj | null): string | null {
  const meta = obj.metadata ?? {};
  if (meta.namespace !== undefined && meta.namespace !== namespace)
    return `metadata.namespace: ${meta.namespace} does not match the request's ${namespace}`;
  const nameOk =
    obj.kind === 'Service' ? typeof meta.name === 'string' && meta.name.length <= 63 && DNS_1035.test(meta.name) : isSubdomain(meta.name);
  if (!nameOk)
    return `metadata.name: Invalid value: "${meta.name}": a lowercase RFC 1123 ${obj.kind === 'Service' ? 'label (RFC 1035)' : 'subdomain'} must consist of lower case alphanumeric characters or '-'`;
  if ((obj.kind === 'Job' || obj.kind === 'Service') && meta.name.length > 63) return `metadata.name: must be no more than 63 characters`;
  const labels = (where: string, map: Obj | undefined) => {
    for (const [key, value] of Object.entries(map ?? {})) {
      if (!LABEL_KEY(key)) return `${where}: Invalid value: "${key}": a label key must be a qualified name`;
      if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value))
        return `${where}: Invalid value: "${String(value)}": a valid label value`;
    }
    return null;
  };
  const annotations = (where: string, map: Obj | undefined) => {
    for (const key of Object.keys(map ?? {}))
      if (!LABEL_KEY(key)) return `${where}: Invalid value: "${key}": an annotation key must be a qualified name`;
    if (JSON.stringify(map ?? {}).length > 256 * 1024) return `${where}: Too long: must have at most 262144 bytes`;
    return null;
  };
  const problem = labels('metadata.labels', meta.labels) ?? annotations('metadata.annotations', meta.annotations);
  if (problem) return problem;

  if (obj.kind === 'Secret') {
    for (const [key, value] of Object.entries(obj.data ?? {})) {
      if (!SECRET_KEY.test(key) || key.length > 253)
        return `data[${key}]: Invalid value: a valid config key must consist of alphanumeric characters, '-', '_' or '.'`;
      if (typeof value !== 'string' || !BASE64.test(value)) return `data[${key}]: Invalid value: illegal base64 data`;
    }
    if (existing?.immutable && JSON.stringify(existing.data) !== JSON.stringify(obj.data))
      return 'data: Forbidden: field is immutable when `immutable` is set';
  }
  if (obj.kind === 'Deployment') {
    const selector = obj.spec.selector?.matchLabels ?? {};
    if (!Object.keys(selector).length) return 'spec.selector: Invalid value: empty selector is invalid for deployment';
    const templateLabels = obj.spec.template.metadata?.labels ?? {};
    if (Object.entries(selector).some(([k, v]) => templateLabels[k] !== v))
      return 'spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`';
    if (existing && JSON.stringify(existing.spec.selector) !== JSON.stringify(obj.spec.selector))
      return 'spec.selector: Invalid value: field is immutable';
    const restart = obj.spec.template.spec.restartPolicy;
    if (restart && restart !== 'Always')
      return `spec.template.spec.restartPolicy: Unsupported value: "${restart}": supported values: "Always"`;
  }
  if (obj.kind === 'Job') {
    const restart = obj.spec.template.spec.restartPolicy;
    if (restart !== 'Never' && restart !== 'OnFailure')
      return `spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"`;
    if (existing && JSON.stringify(existing.spec.template) !== JSON.stringify(obj.spec.template))
      return 'spec.template: Invalid value: field is immutable';
  }
  const template = obj.kind === 'Deployment' || obj.kind === 'Job' ? obj.spec.template : obj.kind === 'Pod' ? obj : null;
  if (template) {
    const where = obj.kind === 'Pod' ? '' : 'spec.template.';
    const problem =
      labels(`${where}metadata.labels`, template.metadata?.labels) ??
      annotations(`${where}metadata.annotations`, template.metadata?.annotations);
    if (problem) return problem;
    const spec = template.spec;
    const volumes = new Set<string>();
    for (const volume of spec.volumes ?? []) {
      if (!isLabel(volume.name) || volumes.has(volume.name)) return `${where}spec.volumes: Invalid value: "${volume.name}"`;
      volumes.add(volume.name);
    }
    const names = new Set<string>();
    for (const [list, containers] of [
      ['initContainers', spec.initContainers ?? []],
      ['containers', spec.containers ?? []],
    ] as const) {
      for (const c of containers as Obj[]) {
        const at = `${where}spec.${list}[${c.name}]`;
        if (!isLabel(c.name) || names.has(c.name)) return `${at}.name: Invalid value: "${c.name}"`;
        names.add(c.name);
        if (!c.image) return `${at}.image: Required value`;
        for (const mount of c.volumeMounts ?? [])
          if (!volumes.has(mount.name)) return `${at}.volumeMounts.name: Not found: "${mount.name}"`;
        for (const env of c.env ?? []) if (!ENV_NAME.test(env.name)) return `${at}.env.name: Invalid value: "${env.name}"`;
        for (const from of c.envFrom ?? [])
          if (from.secretRef && !isSubdomain(from.secretRef.name)) return `${at}.envFrom.secretRef.name: Invalid value`;
        for (const port of c.ports ?? []) {
          if (port.name !== undefined && !isPortName(port.name)) return `${at}.ports.name: Invalid value: "${port.name}"`;
          if (!(port.containerPort >= 1 && port.containerPort <= 65535)) return `${at}.ports.containerPort: Invalid value`;
        }
        if (list === 'initContainers' && (c.readinessProbe || c.livenessProbe))
          return `${at}.readinessProbe: Forbidden: may not be set for init containers`;
      }
    }
  }
  if (obj.kind === 'Service') {
    for (const port of obj.spec.ports ?? []) {
      if (!(port.port >= 1 && port.port <= 65535)) return 'spec.ports.port: Invalid value';
      if (port.name !== undefined && !isPortName(port.name)) return `spec.ports.name: Invalid value: "${port.name}"`;
    }
    const problem = labels('spec.selector', obj.spec.selector);
    if (problem) return problem;
  }
  if (obj.kind === 'Ingress') {
    for (const rule of obj.spec.rules ?? []) {
      if (rule.host !== undefined && !isSubdomain(rule.host.replace(/^\*\./, ''))) return `spec.rules.host: Invalid value: "${rule.host}"`;
      for (const p of rule.http?.paths ?? []) {
        const service = p.backend?.service;
        if (service && !(typeof service.name === 'string' && DNS_1035.test(service.name)))
          return 'spec.rules.http.paths.backend.service.name: Invalid value';
      }
    }
  }
  return null;
}
