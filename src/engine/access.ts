import { PERMISSIONS, type Permission } from '../db/entities.ts';

/** The person or token acting, as the engine sees them. `via` says which front they came through. */
export interface Actor {
  id: number;
  name: string;
  admin: boolean;
  via: 'cli' | 'slack' | 'api' | 'github' | 'system';
  /**
   * Where the person acted (Slack: the message whose button they clicked, or the
   * channel they typed in). When flowops itself showed them the pipeline there —
   * the message is one of its status messages about it, or the channel is one of
   * its feeds — a refusal names the permission and the pipeline's managers
   * instead of "not found". Claims only: the engine looks both up.
   */
  shown?: { message?: { channel: string; ts: string }; channel?: string };
  /** A Slack user of another workspace (a Slack Connect channel): `access:default` does not reach them. */
  guest?: boolean;
}

/** What each operation needs on the pipeline it touches. */
export const REQUIRED = {
  read: 'view',
  deploy: 'deploy',
  promote: 'deploy',
  rollback: 'deploy',
  config: 'deploy',
  manageApps: 'manage',
  manageAccess: 'manage',
  audit: 'manage',
} as const satisfies Record<string, Permission>;

/** True when `held` includes `needed` (view < deploy < operate < manage). */
export function permits(held: Permission | null, needed: Permission): boolean {
  return held !== null && PERMISSIONS.indexOf(held) >= PERMISSIONS.indexOf(needed);
}

export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

/** The acting identity of flowops itself (the notifier, recovery): an admin that is nobody. */
export const SYSTEM: Actor = { id: 0, name: 'flowops', admin: true, via: 'system' };
