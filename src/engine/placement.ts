import { PLATFORM_KINDS, type PlatformKind } from '../db/entities.ts';
import { InvalidInput, PermissionDenied } from '../errors.ts';
import { checkApp, isNamespace } from '../platform/kubernetes/names.ts';

/** Where apps may run on this flowops, and where they run unless `apps:create --platform` says. */
export interface PlacementSettings {
  /** FLOW_PLATFORM: the platform of new apps (and review apps); `kubernetes` also lets replicas share the database. */
  default: PlatformKind;
  /** Whether the Kubernetes platform is set up (a cluster from KUBECONFIG or the pod's service account). */
  kubernetes: boolean;
  /** FLOW_K8S_NAMESPACE: the namespace of a Kubernetes app created without `--namespace`. */
  namespace: string;
}

export const DEFAULT_PLACEMENT: PlacementSettings = { default: 'local', kubernetes: false, namespace: 'default' };

/** Kubernetes' own namespaces: no app of anyone's runs there. */
const SYSTEM_NAMESPACE = /^kube-/;

/**
 * Where a new app runs: the `--platform` and `--namespace` asked for, checked
 * against what this flowops can do. A namespace other than FLOW_K8S_NAMESPACE
 * is the cluster's operator's choice (`admin`), as a pipeline is: a pipeline's
 * manager cannot put repository code beside another team's apps.
 */
export function placeApp(
  settings: PlacementSettings,
  asked: { platform?: string; namespace?: string; name?: string },
  by: { admin: boolean } = { admin: false },
): { platform: PlatformKind; namespace: string | null } {
  const platform = (asked.platform ?? settings.default) as PlatformKind;
  if (!PLATFORM_KINDS.includes(platform))
    throw new InvalidInput(`--platform is one of ${PLATFORM_KINDS.join(', ')}, not "${String(asked.platform).slice(0, 40)}"`);
  if (platform === 'kubernetes' && !settings.kubernetes)
    throw new InvalidInput(
      'the Kubernetes platform is not set up on this flowops: set KUBECONFIG to a kubeconfig file (or run flowops in the cluster) and restart it',
    );
  if (platform === 'local' && settings.default === 'kubernetes')
    throw new InvalidInput(
      'this flowops runs apps on Kubernetes (FLOW_PLATFORM=kubernetes), so that its replicas can share the work; the local platform runs apps on one machine. Create the app without --platform',
    );
  if (platform === 'local') {
    if (asked.namespace !== undefined) throw new InvalidInput('--namespace is for apps on Kubernetes (--platform kubernetes)');
    return { platform, namespace: null };
  }
  // Its objects are named after it: an app whose name Kubernetes refuses is refused now, not at its first deploy.
  if (asked.name !== undefined) checkApp(asked.name);
  const namespace = asked.namespace ?? settings.namespace;
  if (!isNamespace(namespace))
    throw new InvalidInput(
      `"${namespace.slice(0, 70)}" is not a Kubernetes namespace: at most 63 lowercase letters, digits or "-", starting and ending with a letter or digit`,
    );
  if (asked.namespace !== undefined && SYSTEM_NAMESPACE.test(namespace))
    throw new InvalidInput(`${namespace} is Kubernetes' own namespace; apps run elsewhere: leave out --namespace (${settings.namespace})`);
  if (namespace !== settings.namespace && !by.admin)
    throw new PermissionDenied(
      `\`--namespace ${namespace}\` needs an admin: apps run in ${settings.namespace} (FLOW_K8S_NAMESPACE) unless an admin places them; leave out --namespace, or ask an admin to create the app`,
    );
  return { platform, namespace };
}
