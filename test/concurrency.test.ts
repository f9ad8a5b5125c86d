import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OperationView, ReleaseView } from '../src/engine/views.ts';
import { GitRepo } from './helpers/git-repo.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { startWitness, type Witness } from './helpers/witness.ts';

/** Reads the release phases' `start` / `end` reports, in order, and says whether any two overlapped. */
function overlaps(lines: string[]): { phases: number; overlapping: boolean } {
  let open = 0;
  let overlapping = false;
  for (const line of lines) {
    open += line.startsWith('start') ? 1 : -1;
    if (open > 1) overlapping = true;
  }
  return { phases: lines.length / 2, overlapping };
}

describe('release operations on one app', () => {
  let t: TestServer;
  let witness: Witness;

  beforeAll(async () => {
    t = await startTestServer();
    witness = await startWitness();
    // A worker-only app whose release phase reports when it runs.
    const release = `release: ${witness.report('start')}; sleep 0.05; ${witness.report('end')}`;
    const repo = await GitRepo.create(path.join(t.dir, 'repo'), { Procfile: `worker: sleep 600\n${release}\n`, 'README.md': 'x\n' });
    await t.cli(['pipelines:create', 'busy', '--repo', repo.dir]);
    await t.cli(['apps:create', 'busy-staging', '--pipeline', 'busy', '--stage', 'staging']);
    await t.cli(['deploy', 'busy', 'to', 'staging']);
  });
  afterAll(async () => {
    await t.close();
    await witness.close();
  });

  it('gives many simultaneous deploys and config changes versions 1..N, no gaps, no duplicates, never overlapping', async () => {
    const deploys = Array.from({ length: 12 }, () => t.json<OperationView>(['deploy', 'busy', 'to', 'staging', '--no-wait']));
    const configs = Array.from({ length: 6 }, (_, i) => t.json<OperationView>(['config:set', 'busy-staging', `N${i}=${i}`, '--no-wait']));

    const started = await Promise.all([...deploys, ...configs]);
    await t.server.engine.idle();

    expect(new Set(started.map((op) => op.id)).size).toBe(18);
    const releases = await t.json<ReleaseView[]>(['releases', 'busy-staging']);
    expect(releases.map((r) => r.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
    expect(releases.every((r) => r.status === 'succeeded')).toBe(true);
    expect(releases.filter((r) => r.current).map((r) => r.version)).toEqual([19]);
    expect(await t.json(['config', 'busy-staging'])).toEqual({ N0: '0', N1: '1', N2: '2', N3: '3', N4: '4', N5: '5' });
    expect(overlaps(witness.reports)).toEqual({ phases: 19, overlapping: false });
  });

  it.runIf(process.env.DATABASE_URL)('serializes releases on one app across two flowops processes sharing Postgres', async () => {
    const other = await startTestServer({ sharedDatabaseUrl: t.databaseUrl });
    try {
      const before = (await t.json<ReleaseView[]>(['releases', 'busy-staging'])).length;
      const phasesBefore = overlaps(witness.reports).phases;

      await Promise.all(
        Array.from({ length: 8 }, (_, i) => (i % 2 ? t : other).json<OperationView>(['deploy', 'busy', 'to', 'staging', '--no-wait'])),
      );
      await Promise.all([t.server.engine.idle(), other.server.engine.idle()]);

      const releases = await t.json<ReleaseView[]>(['releases', 'busy-staging']);
      expect(releases.map((r) => r.version).sort((a, b) => a - b)).toEqual(Array.from({ length: before + 8 }, (_, i) => i + 1));
      expect(releases.every((r) => r.status === 'succeeded')).toBe(true);
      expect(overlaps(witness.reports)).toEqual({ phases: phasesBefore + 8, overlapping: false });
    } finally {
      await other.close();
    }
  });
});
