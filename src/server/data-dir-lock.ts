import { readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { processAlive } from '../exec.ts';

/** A start-up failure with the exit code the README documents for it. */
export class StartupError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** Data dirs this process holds (a pid file naming this process is stale unless it is here). */
const held = new Set<string>();

/**
 * Takes `<dataDir>/flowops.pid`: one flowops per data dir, since its apps, slugs
 * and the embedded database belong to one process. A pid file whose process is
 * gone (a crash, kill -9) is taken over. Another live flowops: a StartupError
 * naming it, exit code 75, and nothing touched.
 */
export async function lockDataDir(dataDir: string): Promise<{ release(): Promise<void> }> {
  const file = path.join(dataDir, 'flowops.pid');
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw err;
    }
    const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    const live = Number.isInteger(pid) && pid > 0 && (pid === process.pid ? held.has(dataDir) : processAlive(pid));
    if (live) {
      throw new StartupError(
        `another flowops (pid ${pid}) is using the data dir ${dataDir}; stop it first, or set FLOW_DATA_DIR to another directory`,
        75,
      );
    }
    await unlink(file).catch(() => undefined);
  }
  held.add(dataDir);
  return {
    async release() {
      if (!held.delete(dataDir)) return;
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (pid === process.pid) await unlink(file).catch(() => undefined);
    },
  };
}
