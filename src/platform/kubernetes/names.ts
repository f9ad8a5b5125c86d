import { InvalidInput } from '../../errors.ts';

/*
 * Every name flowops sends to Kubernetes is made here, from parts checked here:
 * an object name is a DNS-1123 label (at most 63 lowercase letters, digits and
 * "-", starting and ending with a letter or digit), which every kind flowops
 * creates accepts, and a Service's name also starts with a letter.
 */

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** App names are DNS labels that start with a letter (a Service is named after its app); short enough that `-release-v<N>` fits. */
const APP = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const MAX_APP = 40;
const SHA256 = /^[0-9a-f]{64}$/;
/** What Secret keys and environment variables accept, and what flowops' config var names are. */
const CONFIG_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const APP_LABEL = 'flowops.io/app';
export const RELEASE_LABEL = 'flowops.io/release';
export const PROCESS_LABEL = 'flowops.io/process';
/** On a Job's pod: the Job it belongs to (flowops' own label, so it does not depend on the Job controller's). */
export const JOB_LABEL = 'flowops.io/job';
/** On a Deployment and its pods: the Procfile's own process type (`worker_high`), which its DNS name (`worker-high`) may not spell. */
export const TYPE_ANNOTATION = 'flowops.io/process-type';
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';

/** Throws unless `app` can name Kubernetes objects. */
export function checkApp(app: string): string {
  if (typeof app !== 'string' || app.length > MAX_APP || !APP.test(app))
    throw new InvalidInput(
      `"${String(app).slice(0, 60)}" cannot run on Kubernetes: an app name there is at most ${MAX_APP} lowercase letters, digits and "-", starting with a letter`,
    );
  return app;
}

/** A Kubernetes namespace name: a DNS-1123 label of at most 63 characters. The one check of it (settings, apps:create, every call). */
export function isNamespace(namespace: unknown): boolean {
  return typeof namespace === 'string' && namespace.length <= 63 && DNS_LABEL.test(namespace);
}

export function checkNamespace(namespace: string, app: string): string {
  if (!isNamespace(namespace))
    throw new InvalidInput(
      `the namespace of ${app}, "${String(namespace).slice(0, 70)}", is not a Kubernetes namespace name (a DNS label)`,
    );
  return namespace;
}

export function checkSlugId(slugId: string): string {
  if (typeof slugId !== 'string' || !SHA256.test(slugId))
    throw new InvalidInput(`"${String(slugId).slice(0, 70)}" is not a slug id (a sha256)`);
  return slugId;
}

export function checkVersion(version: number): number {
  if (!Number.isSafeInteger(version) || version < 1) throw new InvalidInput(`"${String(version)}" is not a release version`);
  return version;
}

export function checkConfigKeys(config: Record<string, string>): void {
  const bad = Object.keys(config).find((key) => !CONFIG_KEY.test(key));
  if (bad !== undefined)
    throw new InvalidInput(`"${bad.slice(0, 60)}" is not a valid config var name: letters, digits and "_", not starting with a digit`);
}

/** The DNS name of a Procfile process type: `worker_high` → `worker-high`. */
export function kubeType(type: string): string {
  const name = type.toLowerCase().replace(/_/g, '-');
  if (name.length > 20 || !DNS_LABEL.test(name))
    throw new InvalidInput(
      `the process type "${type.slice(0, 40)}" cannot run on Kubernetes: use at most 20 letters, digits, "-" and "_", starting and ending with a letter or digit`,
    );
  return name;
}

/** Joins checked parts into an object name, and checks the result. */
export function objectName(...parts: (string | number)[]): string {
  const name = parts.join('-');
  if (name.length > 63 || !DNS_LABEL.test(name)) throw new InvalidInput(`"${name.slice(0, 80)}" is not a valid Kubernetes object name`);
  return name;
}

export const secretName = (app: string, version: number) => objectName(checkApp(app), `v${checkVersion(version)}`);
export const releaseJobName = (app: string, version: number) => objectName(checkApp(app), 'release', `v${checkVersion(version)}`);
export const deploymentName = (app: string, type: string) => objectName(checkApp(app), kubeType(type));
export const serviceName = (app: string) => objectName(checkApp(app));

/** The labels of everything flowops creates for an app. */
export function labelsOf(app: string, extra: { release?: number; process?: string } = {}): Record<string, string> {
  return {
    [MANAGED_BY]: 'flowops',
    [APP_LABEL]: checkApp(app),
    ...(extra.release !== undefined ? { [RELEASE_LABEL]: String(checkVersion(extra.release)) } : {}),
    ...(extra.process !== undefined ? { [PROCESS_LABEL]: extra.process } : {}),
  };
}

/** A label selector for exactly these labels (their values are checked names). */
export function selectorOf(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
}
