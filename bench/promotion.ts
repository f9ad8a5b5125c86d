import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Actor } from '../src/engine/access.ts';
import type { Engine } from '../src/engine/engine.ts';
import { GitRepo } from '../test/helpers/git-repo.ts';

const admin: Actor = { id: 1, name: 'admin', admin: true, via: 'system' };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Promotion time of a 1 MB and a 100 MB slug: a pipeline `<prefix>-1mb` and `<prefix>-100mb`,
 * each a staging app and 3 production apps, its repository `files`, the Procfile and that many
 * random bytes. Deployed and promoted once (a warm-up), then promoted 11 times, the two sizes
 * alternating so neither gains from running later; the medians, in ms.
 */
export async function promotionMedians(
  engine: Engine,
  dir: string,
  prefix: string,
  files: Record<string, string>,
  procfile: string,
): Promise<{ one: number; hundred: number }> {
  const sizes = [1, 100] as const;
  for (const mb of sizes) {
    const name = `${prefix}-${mb}mb`;
    const repoDir = path.join(dir, name);
    const repo = await GitRepo.create(repoDir, { 'README.md': `${mb} MB of random bytes\n`, ...files });
    await writeFile(path.join(repoDir, 'payload.bin'), randomBytes(mb << 20));
    await repo.commit({ Procfile: procfile }, 'Add payload');
    await engine.createPipeline(admin, { name, repo: repoDir });
    await engine.createApp(admin, { name: `${name}-stg`, pipeline: name, stage: 'staging' });
    for (const i of [1, 2, 3]) await engine.createApp(admin, { name: `${name}-prod${i}`, pipeline: name, stage: 'production' });
    await engine.deploy(admin, { pipeline: name, stage: 'staging' });
    await engine.idle();
    await engine.promote(admin, { pipeline: name }); // warm-up, not counted
    await engine.idle();
  }
  const runs: Record<(typeof sizes)[number], number[]> = { 1: [], 100: [] };
  for (let i = 0; i < 11; i++) {
    for (const mb of sizes) {
      const start = performance.now();
      await engine.promote(admin, { pipeline: `${prefix}-${mb}mb` });
      await engine.idle();
      runs[mb].push(performance.now() - start);
    }
  }
  return { one: median(runs[1]), hundred: median(runs[100]) };
}
