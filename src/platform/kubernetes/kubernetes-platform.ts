import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig, V1Deployment, V1Job, V1ObjectMeta, V1Pod } from '@kubernetes/client-node';
import { Conflict, InvalidInput, NotFound } from '../../errors.ts';
import { timestamp } from '../../runtime/app-logs.ts';
import type { Source } from '../../source/source.ts';
import { processTypes } from '../local/procfile.ts';
import type {
  AppProcesses,
  BuildProgress,
  BuiltSlug,
  CrashReport,
  Formation,
  LogPage,
  LogQuery,
  LogSource,
  OutputSink,
  Platform,
  ReleaseSpec,
} from '../platform.ts';
import { kube, kubeApi, kubeDelete, kubeOrNull, mergePatch, type KubeApi } from './kube-api.ts';
import { processDeployment, releaseJob, releaseSecret, runJob, runSecret, webIngress, webService, type SlugSource } from './manifests.ts';
import {
  APP_LABEL,
  checkApp,
  checkNamespace,
  checkSlugId,
  deploymentName,
  JOB_LABEL,
  kubeType,
  labelsOf,
  MANAGED_BY,
  objectName,
  PROCESS_LABEL,
  RELEASE_LABEL,
  RESTARTED_AT,
  selectorOf,
  serviceName,
  TYPE_ANNOTATION,
} from './names.ts';
import { dynosOf, dynoView, isCrashed, parseLogLine, podTrouble, type Dyno } from './pods.ts';

export interface KubernetesPlatformOptions {
  kubeConfig: KubeConfig;
  /** Builds slugs and runs test runs (the local platform): the slug is then in the slug store. */
  builder: Platform;
  /** A URL a pod can GET the slug archive (.tgz) from; it must not expire while the release runs. */
  slugUrl: (app: string, slugId: string) => string;
  /** The namespace an app runs in (it must exist, with flowops' Role in it). */
  namespaceOf: (app: string) => Promise<string>;
  /** The image slugs run on (FLOW_K8S_STACK_IMAGE): it has sh, tar, sha256sum and curl or wget. */
  stackImage: string;
  /** Apps answer at `<app>.<domain>` through an Ingress; null: no Ingress. */
  domain: string | null;
  /** How long a rollout may take before the release fails and is rolled back. */
  rolloutTimeoutMs: number;
  /** How long the release phase or a one-off command may run. */
  jobTimeoutMs: number;
  /** How often Job and rollout status are asked. */
  pollMs?: number;
  /** The releases whose Secret and release phase Job are kept (older ones are deleted). */
  keepReleases?: number;
}

interface Note {
  micros: number;
  src: LogSource;
  dyno: string;
  line: string;
}

const NOTES_KEPT = 1500;
const DOMAIN = /^(?=.{1,200}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Runs apps on Kubernetes, as Heroku runs them on dynos: a release is a Secret
 * of its config vars, its release phase a Job that must succeed first, then one
 * Deployment per Procfile process type running the slug on the stack image,
 * a Service and an Ingress for `web`. Everything flowops makes carries its
 * labels (`app.kubernetes.io/managed-by: flowops`, `flowops.io/app`), and that
 * is all it ever changes or deletes. Builds and test runs are the builder's.
 */
export class KubernetesPlatform implements Platform {
  private readonly api: KubeApi;
  private readonly options: Required<Omit<KubernetesPlatformOptions, 'kubeConfig'>>;
  /** Namespaces of the apps flowops has dealt with: where crashed() looks. */
  private readonly known = new Map<string, string>();
  /** flowops' own lines about each app (the release phase's too), kept in memory. */
  private readonly notes = new Map<string, Note[]>();

  constructor(options: KubernetesPlatformOptions) {
    if (options.domain !== null && !DOMAIN.test(options.domain))
      throw new InvalidInput(`"${options.domain}" is not a DNS domain for apps' Ingresses`);
    this.api = kubeApi(options.kubeConfig);
    this.options = { pollMs: 1000, keepReleases: 5, ...options };
  }

  get isolation(): Platform['isolation'] {
    return this.options.builder.isolation;
  }

  build(source: Source, sha: string, progress: BuildProgress, scope: string): Promise<BuiltSlug> {
    return this.options.builder.build(source, sha, progress, scope);
  }

  runTests(slugId: string, onOutput: OutputSink, signal: AbortSignal): Promise<{ code: number | null; output: string }> {
    return this.options.builder.runTests(slugId, onOutput, signal);
  }

  /**
   * How long to wait before asking Kubernetes again: 50 ms, then twice as long
   * each time, up to pollMs. A quick rollout or Job is seen at once; a slow one
   * costs the API server one read a second.
   */
  private pause(asked: number): number {
    return Math.min(this.options.pollMs, 50 * 2 ** Math.min(asked, 10));
  }

  /** The app's namespace, checked, and remembered for crashed(). */
  private async namespace(app: string): Promise<string> {
    checkApp(app);
    const namespace = checkNamespace(await this.options.namespaceOf(app), app);
    this.known.set(app, namespace);
    return namespace;
  }

  private slug(app: string, slugId: string): SlugSource {
    return { url: this.options.slugUrl(app, checkSlugId(slugId)), sha256: slugId, stackImage: this.options.stackImage };
  }

  /** Throws unless flowops made `meta`'s object for `app`: anything else in the namespace is left alone. */
  private checkOwned(meta: V1ObjectMeta | undefined, kind: string, namespace: string, app: string): void {
    const labels = meta?.labels ?? {};
    if (labels[MANAGED_BY] !== 'flowops' || labels[APP_LABEL] !== app)
      throw new Conflict(
        `${kind} ${meta?.name} in namespace ${namespace} was not made by flowops for ${app}; flowops leaves it alone: remove or rename it, or run ${app} in another namespace`,
      );
  }

  private async ensureSecret(namespace: string, spec: ReleaseSpec): Promise<void> {
    const secret = releaseSecret(spec);
    const name = secret.metadata!.name!;
    const existing = await kubeOrNull(this.api, `read Secret ${name} in ${namespace}`, () =>
      this.api.core.readNamespacedSecret({ name, namespace }),
    );
    // A release's Secret never changes: made once, by the release phase or by start().
    if (existing) return this.checkOwned(existing.metadata, 'Secret', namespace, spec.app);
    await kube(this.api, `create Secret ${name} in ${namespace}`, () => this.api.core.createNamespacedSecret({ namespace, body: secret }));
  }

  async releasePhase(spec: ReleaseSpec, onOutput: OutputSink): Promise<{ code: number; output: string }> {
    const namespace = await this.namespace(spec.app);
    const command = spec.procfile.release;
    // Everything is made (and checked) before anything is sent: a release start() would refuse stops here.
    const job = command ? releaseJob(spec, this.slug(spec.app, spec.slugId), this.options.jobTimeoutMs) : null;
    this.deploymentsOf(spec, this.slug(spec.app, spec.slugId));
    await this.ensureSecret(namespace, spec);
    if (!job) return { code: 0, output: '' };
    const header = `-----> Running release command: ${command}\n`;
    onOutput(header);
    const result = await this.runJob(namespace, spec.app, job, 'release');
    onOutput(result.output);
    // As on Heroku, the release phase's output is in the app's log too.
    await this.note(spec.app, 'release.1', result.output.trimEnd().split('\n').slice(-200).join('\n'), 'app');
    return { code: result.code, output: header + result.output };
  }

  async runCommand(
    slugId: string,
    command: string,
    config: Record<string, string>,
    onOutput: OutputSink,
    app?: string,
  ): Promise<{ code: number; output: string }> {
    if (!app) throw new InvalidInput('a one-off command on Kubernetes runs in its app’s namespace: name the app');
    const namespace = await this.namespace(app);
    const name = objectName(checkApp(app), 'run', randomBytes(4).toString('hex'));
    const secret = runSecret(app, name, config);
    onOutput(`-----> Running ${command}\n`);
    await kube(this.api, `create Secret ${name} in ${namespace}`, () => this.api.core.createNamespacedSecret({ namespace, body: secret }));
    try {
      const result = await this.runJob(
        namespace,
        app,
        runJob(app, name, name, command, this.slug(app, slugId), this.options.jobTimeoutMs),
        'run',
      );
      onOutput(result.output);
      return result;
    } finally {
      await this.deleteJob(namespace, name);
      await kubeDelete(this.api, `delete Secret ${name} in ${namespace}`, () => this.api.core.deleteNamespacedSecret({ name, namespace }));
    }
  }

  /** Creates the Job (or finds the one an earlier attempt made) and waits for it; its exit code and its pod's log. */
  private async runJob(namespace: string, app: string, job: V1Job, container: string): Promise<{ code: number; output: string }> {
    const name = job.metadata!.name!;
    const existing = await kubeOrNull(this.api, `read Job ${name} in ${namespace}`, () =>
      this.api.batch.readNamespacedJob({ name, namespace }),
    );
    if (existing) this.checkOwned(existing.metadata, 'Job', namespace, app);
    else await kube(this.api, `create Job ${name} in ${namespace}`, () => this.api.batch.createNamespacedJob({ namespace, body: job }));

    const deadline = Date.now() + this.options.jobTimeoutMs;
    let outcome: 'succeeded' | 'failed' | 'timeout';
    for (let asked = 0; ; asked++) {
      const status = (await kube(this.api, `read Job ${name} in ${namespace}`, () => this.api.batch.readNamespacedJob({ name, namespace })))
        .status;
      if ((status?.succeeded ?? 0) > 0) outcome = 'succeeded';
      else if ((status?.failed ?? 0) > 0 || status?.conditions?.some((c) => c.type === 'Failed' && c.status === 'True')) outcome = 'failed';
      else if (Date.now() > deadline) outcome = 'timeout';
      else {
        await sleep(this.pause(asked));
        continue;
      }
      break;
    }

    const pods = await kube(this.api, `list the pods of Job ${name} in ${namespace}`, () =>
      this.api.core.listNamespacedPod({ namespace, labelSelector: selectorOf({ ...labelsOf(app), [JOB_LABEL]: name }) }),
    );
    const pod = pods.items.at(-1);
    let output = '';
    let code = outcome === 'succeeded' ? 0 : 1;
    if (pod) {
      // The slug could not be fetched or did not match its sha256: the init container's log says so.
      const init = pod.status?.initContainerStatuses?.find((s) => s.state?.terminated && s.state.terminated.exitCode !== 0);
      const main = pod.status?.containerStatuses?.find((s) => s.name === container);
      const ended = init?.state?.terminated ?? main?.state?.terminated;
      if (ended && outcome !== 'timeout') code = ended.exitCode || code;
      output = await this.podLog(namespace, pod.metadata!.name!, init ? init.name : container);
    }
    if (outcome === 'timeout') {
      await this.deleteJob(namespace, name);
      output += `${output && !output.endsWith('\n') ? '\n' : ''}Timed out after ${Math.round(this.options.jobTimeoutMs / 1000)} s; the Job ${name} was stopped\n`;
    } else if (outcome === 'failed' && !pod) output = `The Job ${name} failed before its pod ran\n`;
    return { code, output };
  }

  private async podLog(namespace: string, pod: string, container: string): Promise<string> {
    try {
      return await kube(this.api, `read the log of pod ${pod} in ${namespace}`, () =>
        this.api.core.readNamespacedPodLog({ name: pod, namespace, container, limitBytes: 1_000_000 }),
      );
    } catch (err) {
      return `(no log: ${err instanceof Error ? err.message : String(err)})\n`;
    }
  }

  private async deleteJob(namespace: string, name: string): Promise<void> {
    await kubeDelete(this.api, `delete Job ${name} in ${namespace}`, () =>
      this.api.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' }),
    );
  }

  private listDeployments(namespace: string, app: string): Promise<V1Deployment[]> {
    return kube(this.api, `list the Deployments of ${app} in ${namespace}`, () =>
      this.api.apps.listNamespacedDeployment({ namespace, labelSelector: selectorOf(labelsOf(app)) }),
    ).then((list) => list.items);
  }

  private listPods(namespace: string, app?: string): Promise<V1Pod[]> {
    const labels = app ? labelsOf(app) : { [MANAGED_BY]: 'flowops' };
    return kube(this.api, `list pods in ${namespace}`, () =>
      this.api.core.listNamespacedPod({ namespace, labelSelector: selectorOf(labels) }),
    ).then((list) => list.items);
  }

  async start(spec: ReleaseSpec, onOutput: OutputSink): Promise<void> {
    const namespace = await this.namespace(spec.app);
    const types = processTypes(spec.procfile);
    const desired = this.deploymentsOf(spec, this.slug(spec.app, spec.slugId));
    const names = new Map(types.map((type) => [type, desired.get(type)!.metadata!.name!]));
    await this.ensureSecret(namespace, spec);

    const existing = new Map((await this.listDeployments(namespace, spec.app)).map((d) => [d.metadata!.name!, d]));
    if (types.length) onOutput(`-----> Rolling out ${types.map((t) => `${t} (${spec.formation[t] ?? 1})`).join(', ')}\n`);
    // What each Deployment was before this release: restored if the rollout does not complete.
    const previous = new Map<string, V1Deployment | null>();
    for (const type of types) {
      const name = names.get(type)!;
      const wanted = desired.get(type)!;
      const current =
        existing.get(name) ??
        (await kubeOrNull(this.api, `read Deployment ${name} in ${namespace}`, () =>
          this.api.apps.readNamespacedDeployment({ name, namespace }),
        ));
      if (current) {
        this.checkOwned(current.metadata, 'Deployment', namespace, spec.app);
        previous.set(name, current);
        await kube(this.api, `update Deployment ${name} in ${namespace}`, () =>
          this.api.apps.replaceNamespacedDeployment({
            name,
            namespace,
            body: { ...wanted, metadata: { ...wanted.metadata, resourceVersion: current.metadata!.resourceVersion } },
          }),
        );
      } else {
        previous.set(name, null);
        await kube(this.api, `create Deployment ${name} in ${namespace}`, () =>
          this.api.apps.createNamespacedDeployment({ namespace, body: wanted }),
        );
      }
    }
    if (spec.procfile.web) await this.ensureWeb(namespace, spec);

    const trouble = await this.waitForRollout(namespace, spec, [...names.values()]);
    if (trouble) {
      await this.rollBack(namespace, previous);
      const before = [...previous.values()].find(Boolean)?.metadata?.labels?.[RELEASE_LABEL];
      throw new Error(
        `the rollout of ${spec.app} v${spec.version} did not complete in ${seconds(this.options.rolloutTimeoutMs)} (${trouble}); ` +
          (before ? `rolled back to v${before}, which keeps running` : 'its Deployments were removed'),
      );
    }

    // Live: what the previous release ran and this one does not goes.
    const live = new Set(names.values());
    for (const [name, deployment] of existing)
      if (!live.has(name) && deployment.metadata?.labels?.[MANAGED_BY] === 'flowops')
        await kubeDelete(this.api, `delete Deployment ${name} in ${namespace}`, () =>
          this.api.apps.deleteNamespacedDeployment({ name, namespace }),
        );
    if (!spec.procfile.web) await this.removeWeb(namespace, spec.app);
    await this.prune(namespace, spec.app, spec.version);
    onOutput(
      types.length ? `-----> Live: ${types.map((t) => `${t} (${spec.formation[t] ?? 1})`).join(', ')}\n` : '-----> No processes to run\n',
    );
  }

  /** The release's Secret and Deployments, made (so checked) before anything is sent. */
  private deploymentsOf(spec: ReleaseSpec, slug: SlugSource): Map<string, V1Deployment> {
    releaseSecret(spec);
    const types = processTypes(spec.procfile);
    const names = types.map((type) => deploymentName(spec.app, type));
    if (new Set(names).size !== names.length)
      throw new InvalidInput(
        `two process types of ${spec.app} have the same name on Kubernetes (${types.join(', ')}): rename one in the Procfile`,
      );
    return new Map(types.map((type) => [type, processDeployment(spec, type, slug, this.options.rolloutTimeoutMs)]));
  }

  /** The Service of `web`, and its Ingress when apps have a domain. */
  private async ensureWeb(namespace: string, spec: ReleaseSpec): Promise<void> {
    const name = serviceName(spec.app);
    const { core, networking } = this.api;
    await this.createOrPatch('Service', namespace, spec.app, webService(spec.app, spec.version), {
      read: () => core.readNamespacedService({ name, namespace }),
      create: (body) => core.createNamespacedService({ namespace, body }),
      patch: (body) => core.patchNamespacedService({ name, namespace, body }, mergePatch),
    });
    if (!this.options.domain) return;
    await this.createOrPatch('Ingress', namespace, spec.app, webIngress(spec.app, spec.version, this.options.domain), {
      read: () => networking.readNamespacedIngress({ name, namespace }),
      create: (body) => networking.createNamespacedIngress({ namespace, body }),
      patch: (body) => networking.patchNamespacedIngress({ name, namespace, body }, mergePatch),
    });
  }

  /** Creates `wanted`, or, when it exists and is this app's (refused otherwise), merge-patches its labels and spec. */
  private async createOrPatch<T extends { metadata?: V1ObjectMeta; spec?: unknown }>(
    kind: 'Service' | 'Ingress',
    namespace: string,
    app: string,
    wanted: T,
    calls: { read: () => Promise<T>; create: (body: T) => Promise<unknown>; patch: (body: object) => Promise<unknown> },
  ): Promise<void> {
    const name = wanted.metadata!.name!;
    const current = await kubeOrNull(this.api, `read ${kind} ${name} in ${namespace}`, calls.read);
    if (!current) {
      await kube(this.api, `create ${kind} ${name} in ${namespace}`, () => calls.create(wanted));
      return;
    }
    this.checkOwned(current.metadata, kind, namespace, app);
    await kube(this.api, `update ${kind} ${name} in ${namespace}`, () =>
      calls.patch({ metadata: { labels: wanted.metadata!.labels }, spec: wanted.spec }),
    );
  }

  private async removeWeb(namespace: string, app: string): Promise<void> {
    const name = serviceName(app);
    const ingress = await kubeOrNull(this.api, `read Ingress ${name} in ${namespace}`, () =>
      this.api.networking.readNamespacedIngress({ name, namespace }),
    );
    if (ingress?.metadata?.labels?.[MANAGED_BY] === 'flowops' && ingress.metadata.labels[APP_LABEL] === app)
      await kubeDelete(this.api, `delete Ingress ${name} in ${namespace}`, () =>
        this.api.networking.deleteNamespacedIngress({ name, namespace }),
      );
    const service = await kubeOrNull(this.api, `read Service ${name} in ${namespace}`, () =>
      this.api.core.readNamespacedService({ name, namespace }),
    );
    if (service?.metadata?.labels?.[MANAGED_BY] === 'flowops' && service.metadata.labels[APP_LABEL] === app)
      await kubeDelete(this.api, `delete Service ${name} in ${namespace}`, () =>
        this.api.core.deleteNamespacedService({ name, namespace }),
      );
  }

  /**
   * Waits until every Deployment has rolled out: the controller saw the new
   * spec, and all its replicas are updated and available (no old pod left).
   * Null when done; what is wrong when time ran out or Kubernetes gave up.
   */
  private async waitForRollout(namespace: string, spec: ReleaseSpec, names: string[]): Promise<string | null> {
    const deadline = Date.now() + this.options.rolloutTimeoutMs;
    for (let asked = 0; ; asked++) {
      const pending: string[] = [];
      let gaveUp = false;
      for (const name of names) {
        const d = await kube(this.api, `read Deployment ${name} in ${namespace}`, () =>
          this.api.apps.readNamespacedDeployment({ name, namespace }),
        );
        const replicas = d.spec?.replicas ?? 1;
        const s = d.status ?? {};
        const done =
          (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
          (s.updatedReplicas ?? 0) === replicas &&
          (s.availableReplicas ?? 0) === replicas &&
          (s.replicas ?? 0) === replicas;
        if (!done) pending.push(name);
        if (s.conditions?.some((c) => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded')) gaveUp = true;
      }
      if (!pending.length) return null;
      if (gaveUp || Date.now() > deadline) return this.describeTrouble(namespace, spec);
      await sleep(this.pause(asked));
    }
  }

  /** What the release's pods that are not up say: `web.1: CrashLoopBackOff, exit code 1` and their last lines. */
  private async describeTrouble(namespace: string, spec: ReleaseSpec): Promise<string> {
    const pods = (await this.listPods(namespace, spec.app).catch(() => [] as V1Pod[])).filter(
      (p) => p.metadata?.labels?.[RELEASE_LABEL] === String(spec.version),
    );
    const stuck = dynosOf(pods).filter((d) => dynoView(d).state !== 'up');
    if (!stuck.length) return 'its pods did not become ready';
    const first = stuck[0]!;
    const lines = await kube(this.api, `read the log of pod ${first.pod.metadata!.name}`, () =>
      this.api.core.readNamespacedPodLog({ name: first.pod.metadata!.name!, namespace, container: kubeType(first.type), tailLines: 20 }),
    ).catch(() => '');
    return `${stuck.map((d) => `${d.name}: ${podTrouble(d.pod)}`).join('; ')}${lines.trim() ? `\n${lines.trimEnd()}\n` : ''}`;
  }

  /** What `kubectl rollout undo` does: each Deployment gets back the pod template (and size) it had; one the release added goes. */
  private async rollBack(namespace: string, previous: Map<string, V1Deployment | null>): Promise<void> {
    for (const [name, before] of previous) {
      if (!before) {
        await kubeDelete(this.api, `delete Deployment ${name} in ${namespace}`, () =>
          this.api.apps.deleteNamespacedDeployment({ name, namespace }),
        );
        continue;
      }
      const now = await kube(this.api, `read Deployment ${name} in ${namespace}`, () =>
        this.api.apps.readNamespacedDeployment({ name, namespace }),
      );
      await kube(this.api, `roll back Deployment ${name} in ${namespace}`, () =>
        this.api.apps.replaceNamespacedDeployment({
          name,
          namespace,
          body: {
            ...now,
            metadata: { ...now.metadata, labels: before.metadata?.labels, annotations: before.metadata?.annotations },
            spec: { ...now.spec!, replicas: before.spec?.replicas, template: before.spec!.template },
          },
        }),
      );
    }
  }

  /** Deletes the Secrets and release phase Jobs of releases older than the last few. */
  private async prune(namespace: string, app: string, live: number): Promise<void> {
    const selector = selectorOf(labelsOf(app));
    const old = (items: { metadata?: V1ObjectMeta }[]) => {
      const versions = [...new Set(items.map((i) => Number(i.metadata?.labels?.[RELEASE_LABEL])).filter((v) => v > 0))].sort(
        (a, b) => b - a,
      );
      const kept = new Set([live, ...versions.slice(0, this.options.keepReleases)]);
      return items.filter((i) => {
        const version = Number(i.metadata?.labels?.[RELEASE_LABEL]);
        return version > 0 && !kept.has(version);
      });
    };
    const secrets = await kube(this.api, `list the Secrets of ${app} in ${namespace}`, () =>
      this.api.core.listNamespacedSecret({ namespace, labelSelector: selector }),
    );
    for (const secret of old(secrets.items)) {
      const name = secret.metadata!.name!;
      await kubeDelete(this.api, `delete Secret ${name} in ${namespace}`, () => this.api.core.deleteNamespacedSecret({ name, namespace }));
    }
    const jobs = await kube(this.api, `list the Jobs of ${app} in ${namespace}`, () =>
      this.api.batch.listNamespacedJob({ namespace, labelSelector: `${selector},${PROCESS_LABEL}=release` }),
    );
    for (const job of old(jobs.items)) await this.deleteJob(namespace, job.metadata!.name!);
  }

  async ps(app: string): Promise<AppProcesses> {
    const namespace = await this.namespace(app);
    const [deployments, pods] = await Promise.all([this.listDeployments(namespace, app), this.listPods(namespace, app)]);
    const formation: Formation = {};
    const commands: Record<string, string> = {};
    let version: number | null = null;
    for (const d of deployments) {
      const type = d.metadata?.annotations?.[TYPE_ANNOTATION] ?? d.metadata?.labels?.[PROCESS_LABEL];
      if (!type) continue;
      formation[type] = d.spec?.replicas ?? 1;
      commands[type] = d.spec?.template?.spec?.containers?.[0]?.command?.[2] ?? '';
      version = Math.max(version ?? 0, Number(d.metadata?.labels?.[RELEASE_LABEL] ?? 0)) || null;
    }
    return { app, version, formation, commands, dynos: dynosOf(pods).map(dynoView) };
  }

  async scale(app: string, formation: Formation): Promise<AppProcesses> {
    const namespace = await this.namespace(app);
    const changes: [string, number][] = [];
    for (const [type, count] of Object.entries(formation)) {
      if (!Number.isSafeInteger(count) || count < 0)
        throw new InvalidInput(`${type}=${String(count)}: a number of dynos is a whole number, 0 or more`);
      const name = deploymentName(app, type);
      const found = await kubeOrNull(this.api, `read Deployment ${name} in ${namespace}`, () =>
        this.api.apps.readNamespacedDeployment({ name, namespace }),
      );
      if (!found) throw new NotFound(`${app} has no ${type} process running on Kubernetes: deploy a release whose Procfile has one`);
      this.checkOwned(found.metadata, 'Deployment', namespace, app);
      changes.push([name, count]);
    }
    for (const [name, replicas] of changes)
      await kube(this.api, `scale Deployment ${name} in ${namespace}`, () =>
        this.api.apps.patchNamespacedDeployment({ name, namespace, body: { spec: { replicas } } }, mergePatch),
      );
    return this.ps(app);
  }

  /** The app's dynos a target names: every one, a type's (`web`) or one (`web.1`). */
  private async targets(
    app: string,
    target: string | undefined,
  ): Promise<{ namespace: string; types: string[]; dynos: Dyno[]; pod: Dyno | null }> {
    const namespace = await this.namespace(app);
    const [deployments, pods] = await Promise.all([this.listDeployments(namespace, app), this.listPods(namespace, app)]);
    const all = deployments
      .map((d) => d.metadata?.annotations?.[TYPE_ANNOTATION] ?? d.metadata?.labels?.[PROCESS_LABEL] ?? '')
      .filter(Boolean);
    const dynos = dynosOf(pods);
    if (target && target.includes('.')) {
      const pod = dynos.find((d) => d.name === target) ?? null;
      return { namespace, types: [], dynos: pod ? [pod] : [], pod };
    }
    const types = all.filter((t) => !target || t === target);
    return { namespace, types, dynos: dynos.filter((d) => types.includes(d.type)), pod: null };
  }

  async restart(app: string, target?: string): Promise<string[]> {
    const { namespace, types, dynos, pod } = await this.targets(app, target);
    if (pod) {
      await this.deletePod(namespace, pod);
      return [pod.name];
    }
    const at = new Date().toISOString();
    for (const type of types) {
      const name = deploymentName(app, type);
      await kube(this.api, `restart Deployment ${name} in ${namespace}`, () =>
        this.api.apps.patchNamespacedDeployment(
          { name, namespace, body: { spec: { template: { metadata: { annotations: { [RESTARTED_AT]: at } } } } } },
          mergePatch,
        ),
      );
    }
    return dynos.map((d) => d.name);
  }

  async stop(app: string, target: string): Promise<string[]> {
    const { namespace, types, dynos, pod } = await this.targets(app, target);
    if (pod) {
      // Its Deployment starts another in its place: on Kubernetes one pod is stopped by scaling the type down.
      await this.deletePod(namespace, pod);
      return [pod.name];
    }
    for (const type of types) {
      const name = deploymentName(app, type);
      await kube(this.api, `stop Deployment ${name} in ${namespace}`, () =>
        this.api.apps.patchNamespacedDeployment({ name, namespace, body: { spec: { replicas: 0 } } }, mergePatch),
      );
    }
    return dynos.map((d) => d.name);
  }

  private async deletePod(namespace: string, dyno: Dyno): Promise<void> {
    const name = dyno.pod.metadata!.name!;
    await kubeDelete(this.api, `delete pod ${name} in ${namespace}`, () => this.api.core.deleteNamespacedPod({ name, namespace }));
  }

  async logs(app: string, query: LogQuery): Promise<LogPage> {
    const namespace = await this.namespace(app);
    const num = query.num ?? 100;
    const lines: { micros: number; line: string }[] = [];
    for (const note of this.notes.get(app) ?? [])
      if ((!query.source || query.source === note.src) && matches(note.dyno, query.dyno)) lines.push(note);
    if (query.source !== 'flowops') {
      const dynos = dynosOf(await this.listPods(namespace, app)).filter((d) => matches(d.name, query.dyno));
      const sinceSeconds = query.after === undefined ? undefined : Math.max(1, Math.ceil((Date.now() * 1000 - query.after) / 1e6) + 1);
      for (const dyno of dynos) {
        const text = await kube(this.api, `read the log of pod ${dyno.pod.metadata!.name}`, () =>
          this.api.core.readNamespacedPodLog({
            name: dyno.pod.metadata!.name!,
            namespace,
            container: kubeType(dyno.type),
            timestamps: true,
            ...(sinceSeconds ? { sinceSeconds } : { tailLines: num }),
          }),
        ).catch(() => ''); // a pod still fetching its slug has no log yet
        for (const raw of text.split('\n')) {
          const parsed = parseLogLine(raw);
          if (parsed) lines.push({ micros: parsed.micros, line: `${heroku(parsed.micros)} app[${dyno.name}]: ${parsed.text}` });
        }
      }
    }
    const after = query.after;
    const chosen = lines.filter((l) => after === undefined || l.micros > after).sort((a, b) => a.micros - b.micros);
    const page = after === undefined ? chosen.slice(-num) : chosen;
    const next = page.at(-1)?.micros ?? after ?? Date.now() * 1000;
    return { lines: page.map((l) => l.line), next };
  }

  /** flowops' lines are kept in this process's memory (the last 1500 per app): they are not in the cluster's logs, and a restart forgets them. */
  async note(app: string, dyno: string, text: string, source: LogSource = 'flowops'): Promise<void> {
    if (!text) return;
    const notes = this.notes.get(app) ?? [];
    const now = Date.now() * 1000;
    let micros = Math.max(now, (notes.at(-1)?.micros ?? 0) + 1);
    for (const line of text.split('\n')) {
      notes.push({ micros, src: source, dyno, line: `${heroku(micros)} ${source}[${dyno}]: ${line}` });
      micros++;
    }
    this.notes.set(app, notes.slice(-NOTES_KEPT));
  }

  async crashed(): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const namespace of new Set(this.known.values())) {
      const byApp = new Map<string, V1Pod[]>();
      for (const pod of await this.listPods(namespace)) {
        const app = pod.metadata?.labels?.[APP_LABEL];
        if (app && this.known.get(app) === namespace) byApp.set(app, [...(byApp.get(app) ?? []), pod]);
      }
      for (const [app, pods] of byApp) {
        const crashed = dynosOf(pods)
          .filter((d) => isCrashed(d.pod))
          .map((d) => d.name);
        if (crashed.length) out[app] = crashed;
      }
    }
    return out;
  }

  /** Not reported yet on Kubernetes: `crashed()` and `ps` show crashing pods, but no crash episodes are collected. */
  async crashes(): Promise<CrashReport[]> {
    return [];
  }

  async takeCrash(): Promise<void> {}

  async destroy(app: string): Promise<void> {
    const namespace = await this.namespace(app);
    const labelSelector = selectorOf(labelsOf(app));
    const ingresses = await kube(this.api, `list Ingresses in ${namespace}`, () =>
      this.api.networking.listNamespacedIngress({ namespace, labelSelector }),
    );
    for (const { metadata } of ingresses.items)
      await kubeDelete(this.api, `delete Ingress ${metadata!.name}`, () =>
        this.api.networking.deleteNamespacedIngress({ name: metadata!.name!, namespace }),
      );
    const services = await kube(this.api, `list Services in ${namespace}`, () =>
      this.api.core.listNamespacedService({ namespace, labelSelector }),
    );
    for (const { metadata } of services.items)
      await kubeDelete(this.api, `delete Service ${metadata!.name}`, () =>
        this.api.core.deleteNamespacedService({ name: metadata!.name!, namespace }),
      );
    for (const { metadata } of await this.listDeployments(namespace, app))
      await kubeDelete(this.api, `delete Deployment ${metadata!.name}`, () =>
        this.api.apps.deleteNamespacedDeployment({ name: metadata!.name!, namespace, propagationPolicy: 'Background' }),
      );
    const jobs = await kube(this.api, `list Jobs in ${namespace}`, () => this.api.batch.listNamespacedJob({ namespace, labelSelector }));
    for (const { metadata } of jobs.items) await this.deleteJob(namespace, metadata!.name!);
    const secrets = await kube(this.api, `list Secrets in ${namespace}`, () =>
      this.api.core.listNamespacedSecret({ namespace, labelSelector }),
    );
    for (const { metadata } of secrets.items)
      await kubeDelete(this.api, `delete Secret ${metadata!.name}`, () =>
        this.api.core.deleteNamespacedSecret({ name: metadata!.name!, namespace }),
      );
    this.notes.delete(app);
    this.known.delete(app);
  }

  /** The cluster keeps running what it ran: nothing to restart, and nothing ever restarts the platform. */
  whenRestarted(): void {}

  /** Nothing to do (the cluster keeps its state); flowops learns where each app runs, for crashed(). */
  async recover(current: ReleaseSpec[], appsWithoutRelease: string[]): Promise<void> {
    for (const app of [...current.map((s) => s.app), ...appsWithoutRelease]) await this.namespace(app).catch(() => undefined);
  }

  url(app: string): string | null {
    return this.options.domain ? `http://${app}.${this.options.domain}` : null;
  }

  async close(): Promise<void> {}
}

/** `web` matches web.1 and web.2; `web.1` only itself; nothing matches everything. */
function matches(dyno: string, target: string | undefined): boolean {
  return !target || dyno === target || dyno.startsWith(`${target}.`);
}

function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

function heroku(micros: number): string {
  return timestamp(new Date(Math.floor(micros / 1000)), micros % 1000);
}
