import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import type { DynoView } from '../platform.ts';
import { JOB_LABEL, PROCESS_LABEL, RELEASE_LABEL, TYPE_ANNOTATION } from './names.ts';

/** A pod of a process type with its Heroku dyno name (`web.1`). */
export interface Dyno {
  name: string;
  type: string;
  pod: V1Pod;
}

const iso = (at: Date | string | undefined, fallback: string) => (at ? new Date(at).toISOString() : fallback);

/** The Procfile type a pod runs (from its annotation), or null for a Job's pod (the release phase, a one-off command). */
export function podType(pod: V1Pod): string | null {
  const process = pod.metadata?.labels?.[PROCESS_LABEL];
  if (!process || pod.metadata?.labels?.[JOB_LABEL]) return null;
  return pod.metadata?.annotations?.[TYPE_ANNOTATION] ?? process;
}

/**
 * The app's running pods as dynos: per type, oldest first, `web.1`, `web.2`…
 * A pod's number is its place among the type's pods now (pods have no number
 * of their own): it may change when an older pod goes away.
 */
export function dynosOf(pods: V1Pod[]): Dyno[] {
  const byType = new Map<string, V1Pod[]>();
  for (const pod of pods) {
    const type = podType(pod);
    if (!type || pod.metadata?.deletionTimestamp) continue;
    byType.set(type, [...(byType.get(type) ?? []), pod]);
  }
  const dynos: Dyno[] = [];
  for (const [type, list] of [...byType].sort(([a], [b]) => a.localeCompare(b))) {
    list.sort(
      (a, b) =>
        new Date(a.metadata?.creationTimestamp ?? 0).getTime() - new Date(b.metadata?.creationTimestamp ?? 0).getTime() ||
        (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''),
    );
    list.forEach((pod, i) => dynos.push({ name: `${type}.${i + 1}`, type, pod }));
  }
  return dynos;
}

const CRASH_REASONS = new Set(['CrashLoopBackOff', 'Error', 'RunContainerError', 'CreateContainerError', 'StartError']);

function crashedStatus(statuses: V1ContainerStatus[] | undefined): V1ContainerStatus | undefined {
  return statuses?.find(
    (s) => CRASH_REASONS.has(s.state?.waiting?.reason ?? '') || (s.state?.terminated && s.state.terminated.exitCode !== 0),
  );
}

/** Whether the pod's process keeps crashing (CrashLoopBackOff, a failed start, an exit). */
export function isCrashed(pod: V1Pod): boolean {
  if (pod.status?.phase === 'Failed') return true;
  return Boolean(crashedStatus(pod.status?.initContainerStatuses) ?? crashedStatus(pod.status?.containerStatuses));
}

export function dynoView(dyno: Dyno): DynoView {
  const { pod } = dyno;
  const created = iso(pod.metadata?.creationTimestamp, new Date(0).toISOString());
  const main = pod.status?.containerStatuses?.[0];
  const command = pod.spec?.containers?.[0]?.command?.[2] ?? '';
  const version = Number(pod.metadata?.labels?.[RELEASE_LABEL] ?? 0);
  const base = { name: dyno.name, type: dyno.type, command, version };
  if (isCrashed(pod)) {
    const status = crashedStatus(pod.status?.initContainerStatuses) ?? crashedStatus(pod.status?.containerStatuses) ?? main;
    const ended = status?.state?.terminated ?? status?.lastState?.terminated;
    return { ...base, state: 'crashed', since: iso(ended?.finishedAt, created), exitCode: ended?.exitCode ?? null };
  }
  const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  if (ready && main?.state?.running) return { ...base, state: 'up', since: iso(main.state.running.startedAt, created), exitCode: null };
  return { ...base, state: 'starting', since: created, exitCode: null };
}

/** Why a pod is not up, in a few words: `CrashLoopBackOff, exit code 1`. */
export function podTrouble(pod: V1Pod): string {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  for (const s of statuses) {
    const waiting = s.state?.waiting?.reason;
    const ended = s.state?.terminated ?? s.lastState?.terminated;
    if (waiting && waiting !== 'PodInitializing')
      return `${waiting}${ended?.exitCode !== undefined ? `, exit code ${ended.exitCode}` : ''}${s.state?.waiting?.message ? `: ${s.state.waiting.message.slice(0, 200)}` : ''}`;
    if (s.state?.terminated && s.state.terminated.exitCode !== 0) return `exited with code ${s.state.terminated.exitCode}`;
  }
  return pod.status?.phase === 'Pending' ? 'pending' : 'not ready';
}

/** A line of `kubectl logs --timestamps`: its time in microseconds since the epoch, and its text. */
export function parseLogLine(line: string): { micros: number; text: string } | null {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d) ?(.*)$/.exec(line);
  if (!match) return null;
  const ms = Date.parse(`${match[1]}${match[3]}`);
  if (Number.isNaN(ms)) return null;
  const fraction = Number((match[2] ?? '').padEnd(6, '0').slice(0, 6));
  return { micros: ms * 1000 + fraction, text: match[4]! };
}
