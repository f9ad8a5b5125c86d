import type { V1Container, V1Deployment, V1Ingress, V1Job, V1PodSpec, V1Secret, V1Service } from '@kubernetes/client-node';
import type { ReleaseSpec } from '../platform.ts';
import {
  checkConfigKeys,
  checkSlugId,
  deploymentName,
  JOB_LABEL,
  kubeType,
  labelsOf,
  releaseJobName,
  secretName,
  serviceName,
  TYPE_ANNOTATION,
} from './names.ts';

/*
 * The objects a release becomes, as pure functions of the release: what
 * flowops sends is readable (and testable) in one place.
 */

/** The process label of a one-off command's Job (its dyno, as Heroku names it): no Procfile type is spelled so on Kubernetes. */
export const ONE_OFF = 'run.1';

/** The port a web process listens on ($PORT), as on Heroku. */
export const WEB_PORT = 5000;

export interface SlugSource {
  /** A URL a pod can GET the slug archive from. */
  url: string;
  /** Its sha256: the archive is refused unless it matches. */
  sha256: string;
  stackImage: string;
}

/**
 * Fetches the slug into /app and checks it against its sha256 before unpacking it.
 * The URL and sha come in through the environment, never spliced into the script.
 */
const FETCH_SLUG = [
  'set -eu',
  'if command -v curl >/dev/null; then curl -fsSL --retry 3 -o /tmp/slug.tgz "$SLUG_URL";',
  'else wget -q -O /tmp/slug.tgz "$SLUG_URL"; fi',
  'echo "$SLUG_SHA256  /tmp/slug.tgz" | sha256sum -c -',
  'tar -xzf /tmp/slug.tgz -C /app',
  'rm -f /tmp/slug.tgz',
].join('\n');

/** The release's config vars: one Secret per release, never changed (a new release makes a new one). */
export function releaseSecret(spec: ReleaseSpec): V1Secret {
  checkConfigKeys(spec.config);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: secretName(spec.app, spec.version), labels: labelsOf(spec.app, { release: spec.version }) },
    type: 'Opaque',
    immutable: true,
    data: Object.fromEntries(Object.entries(spec.config).map(([key, value]) => [key, Buffer.from(value, 'utf8').toString('base64')])),
  };
}

/**
 * A pod that runs the slug: an init container fetches and checks it, the main
 * container runs `command` in /app with the release's config vars. Repository
 * code is untrusted: no service account token, no root, no privilege.
 */
function slugPod(
  slug: SlugSource,
  container: { name: string; command: string; secret: string; env: Record<string, string> },
  extra: Partial<V1PodSpec> & { main?: Partial<V1Container> } = {},
): V1PodSpec {
  const { main, ...pod } = extra;
  const locked = {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
  };
  return {
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
    volumes: [{ name: 'app', emptyDir: {} }],
    initContainers: [
      {
        name: 'slug',
        image: slug.stackImage,
        command: ['sh', '-c', FETCH_SLUG],
        env: [
          { name: 'SLUG_URL', value: slug.url },
          { name: 'SLUG_SHA256', value: checkSlugId(slug.sha256) },
        ],
        volumeMounts: [{ name: 'app', mountPath: '/app' }],
        securityContext: locked,
      },
    ],
    containers: [
      {
        name: container.name,
        image: slug.stackImage,
        command: ['sh', '-c', container.command],
        workingDir: '/app',
        envFrom: [{ secretRef: { name: container.secret } }],
        env: Object.entries({ HOME: '/app', ...container.env }).map(([name, value]) => ({ name, value })),
        volumeMounts: [{ name: 'app', mountPath: '/app' }],
        securityContext: locked,
        ...main,
      },
    ],
    ...pod,
  };
}

/** A Job that runs a command once on the slug: the release phase, or a one-off command. */
function commandJob(
  options: {
    name: string;
    app: string;
    labels: Record<string, string>;
    container: string;
    command: string;
    secret: string;
    dyno: string;
    timeoutMs: number;
  },
  slug: SlugSource,
): V1Job {
  const podLabels = { ...options.labels, [JOB_LABEL]: options.name };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: options.name, labels: options.labels },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: Math.max(1, Math.ceil(options.timeoutMs / 1000)),
      template: {
        metadata: { labels: podLabels },
        spec: slugPod(
          slug,
          {
            name: options.container,
            command: options.command,
            secret: options.secret,
            env: { DYNO: options.dyno },
          },
          { restartPolicy: 'Never' },
        ),
      },
    },
  };
}

export function releaseJob(spec: ReleaseSpec, slug: SlugSource, timeoutMs: number): V1Job {
  return commandJob(
    {
      name: releaseJobName(spec.app, spec.version),
      app: spec.app,
      labels: labelsOf(spec.app, { release: spec.version, process: 'release' }),
      container: 'release',
      command: spec.procfile.release!,
      secret: secretName(spec.app, spec.version),
      dyno: 'release.1',
      timeoutMs,
    },
    slug,
  );
}

/** A one-off command (app.json's postdeploy, pr-predestroy) with its own config Secret, `secret`. */
export function runJob(app: string, name: string, secret: string, command: string, slug: SlugSource, timeoutMs: number): V1Job {
  return commandJob(
    { name, app, labels: labelsOf(app, { process: ONE_OFF }), container: 'run', command, secret, dyno: ONE_OFF, timeoutMs },
    slug,
  );
}

export function runSecret(app: string, name: string, config: Record<string, string>): V1Secret {
  checkConfigKeys(config);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, labels: labelsOf(app, { process: ONE_OFF }) },
    type: 'Opaque',
    immutable: true,
    data: Object.fromEntries(Object.entries(config).map(([key, value]) => [key, Buffer.from(value, 'utf8').toString('base64')])),
  };
}

/** The Deployment of one process type of a release. */
export function processDeployment(spec: ReleaseSpec, type: string, slug: SlugSource, rolloutTimeoutMs: number): V1Deployment {
  const process = kubeType(type);
  const web = type === 'web';
  const selector = labelsOf(spec.app, { process });
  const labels = labelsOf(spec.app, { release: spec.version, process });
  const annotations = { [TYPE_ANNOTATION]: type };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: deploymentName(spec.app, type), labels, annotations },
    spec: {
      replicas: Math.max(0, Math.floor(spec.formation[type] ?? 1)),
      selector: { matchLabels: selector },
      progressDeadlineSeconds: Math.max(1, Math.ceil(rolloutTimeoutMs / 1000)),
      revisionHistoryLimit: 5,
      // A web process keeps serving through a release: a new pod is ready before an old one goes.
      strategy: web ? { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } : { type: 'RollingUpdate' },
      template: {
        metadata: { labels, annotations },
        spec: slugPod(
          slug,
          {
            name: process,
            command: spec.procfile[type]!,
            secret: secretName(spec.app, spec.version),
            env: web ? { PORT: String(WEB_PORT), HOST: '0.0.0.0' } : { HOST: '0.0.0.0' },
          },
          {
            terminationGracePeriodSeconds: 30,
            main: web
              ? {
                  ports: [{ name: 'http', containerPort: WEB_PORT }],
                  readinessProbe: { tcpSocket: { port: WEB_PORT }, periodSeconds: 2, failureThreshold: 3 },
                }
              : {},
          },
        ),
      },
    },
  };
}

export function webService(app: string, version: number): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: serviceName(app), labels: labelsOf(app, { release: version, process: 'web' }) },
    spec: {
      type: 'ClusterIP',
      selector: labelsOf(app, { process: 'web' }),
      ports: [{ name: 'http', port: 80, targetPort: WEB_PORT, protocol: 'TCP' }],
    },
  };
}

export function webIngress(app: string, version: number, domain: string): V1Ingress {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: serviceName(app), labels: labelsOf(app, { release: version, process: 'web' }) },
    spec: {
      rules: [
        {
          host: `${app}.${domain}`,
          http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: serviceName(app), port: { number: 80 } } } }] },
        },
      ],
    },
  };
}
