import {
  ApiException,
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  NetworkingV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import { ExternalServiceError } from '../../errors.ts';

/** A refusal of the Kubernetes API, with its HTTP status; its message quotes only the API's own `message`. */
export class KubeError extends ExternalServiceError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The clients of the API groups flowops uses. */
export interface KubeApi {
  core: CoreV1Api;
  apps: AppsV1Api;
  batch: BatchV1Api;
  networking: NetworkingV1Api;
  server: string;
}

export function kubeApi(config: KubeConfig): KubeApi {
  return {
    core: config.makeApiClient(CoreV1Api),
    apps: config.makeApiClient(AppsV1Api),
    batch: config.makeApiClient(BatchV1Api),
    networking: config.makeApiClient(NetworkingV1Api),
    server: config.getCurrentCluster()?.server ?? '(no server)',
  };
}

/** Patches are JSON merge patches (RFC 7386): the body says the fields it sets. */
export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/**
 * Runs one API call; a refusal becomes a KubeError saying what flowops tried
 * (`create Deployment shop-web in shop`) and what the API answered. The API's
 * whole answer is never quoted: it may echo what was sent (config values).
 */
export async function kube<T>(api: KubeApi, what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ApiException) {
      const status = Number(err.code);
      let reason = '';
      try {
        const body = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as { message?: unknown };
        if (typeof body?.message === 'string') reason = body.message.slice(0, 500);
      } catch {
        /* not JSON: no reason quoted */
      }
      const hint =
        status === 401
          ? ' (the credentials in KUBECONFIG or the service account token were refused)'
          : status === 403
            ? " (flowops' service account lacks this permission: see deploy/kubernetes/rbac.yaml)"
            : '';
      throw new KubeError(status, `Kubernetes refused to ${what}: ${status}${reason ? ` ${reason}` : ''}${hint}`);
    }
    const cause = err instanceof Error ? err.message : String(err);
    throw new KubeError(0, `could not ${what}: the Kubernetes API at ${api.server} did not answer (${cause.slice(0, 200)})`);
  }
}

/** The object, or null when the API says there is none (404). */
export async function kubeOrNull<T>(api: KubeApi, what: string, call: () => Promise<T>): Promise<T | null> {
  try {
    return await kube(api, what, call);
  } catch (err) {
    if (err instanceof KubeError && err.status === 404) return null;
    throw err;
  }
}

/** Deletes; an object already gone is fine. */
export async function kubeDelete(api: KubeApi, what: string, call: () => Promise<unknown>): Promise<void> {
  await kubeOrNull(api, what, call);
}
