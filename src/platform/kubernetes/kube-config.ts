import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * The cluster flowops runs apps on: the kubeconfig file `KUBECONFIG` names
 * (its current context), else the service account of the pod flowops runs in.
 * Neither: an error that says what to set.
 */
export function kubeConfigFromEnv(env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const config = new KubeConfig();
  const file = env.KUBECONFIG?.split(':').find(Boolean);
  if (file) {
    if (!existsSync(file)) throw new Error(`KUBECONFIG=${file}: no such file; set KUBECONFIG to the kubeconfig of the cluster apps run on`);
    try {
      config.loadFromFile(file);
    } catch (err) {
      // Only the parser's first line: the lines after it quote the file around the mistake, tokens and keys included.
      const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200);
      throw new Error(`KUBECONFIG=${file} is not a kubeconfig flowops can read: ${reason}`);
    }
    if (!config.getCurrentCluster())
      throw new Error(`KUBECONFIG=${file} has no current context with a cluster; set its current-context (kubectl config use-context)`);
    return config;
  }
  if (env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) {
    config.loadFromCluster();
    return config;
  }
  throw new Error(
    'no Kubernetes cluster: set KUBECONFIG to a kubeconfig file, or run flowops in a pod with a service account (deploy/kubernetes/)',
  );
}
