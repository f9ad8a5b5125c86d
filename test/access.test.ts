import { describe, expect, it } from 'vitest';
import { REQUIRED, permits } from '../src/engine/access.ts';
import type { Permission } from '../src/db/entities.ts';

describe('permissions: view < deploy < operate < manage', () => {
  const table: [Permission | null, keyof typeof REQUIRED, boolean][] = [
    [null, 'read', false],
    ['view', 'read', true],
    ['view', 'deploy', false],
    ['view', 'promote', false],
    ['deploy', 'promote', true],
    ['deploy', 'rollback', true],
    ['deploy', 'config', true],
    ['deploy', 'manageApps', false],
    ['operate', 'deploy', true],
    ['operate', 'manageAccess', false],
    ['manage', 'manageApps', true],
    ['manage', 'manageAccess', true],
  ];

  it.each(table)('a user with %s may %s: %s', (held, operation, allowed) => {
    expect(permits(held, REQUIRED[operation])).toBe(allowed);
  });
});
