import { readdirSync, readFileSync } from 'node:fs';

/**
 * Host pids of the processes flowops started in a data dir whose tag starts with
 * `tag` (`shop/web.1`, `shop/release`, `shop/`), read from /proc as an operator
 * would. In a sandbox the app's own `process.pid` is its pid namespace's, so
 * tests find processes by the marker flowops sets on each (FLOWOPS_SANDBOX).
 */
export function processesOf(dataDir: string, tag: string): number[] {
  const prefix = `FLOWOPS_SANDBOX=${dataDir}\n${tag}`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      if (
        readFileSync(`/proc/${entry}/environ`, 'latin1')
          .split('\0')
          .some((v) => v.startsWith(prefix))
      )
        pids.push(Number(entry));
    } catch {
      /* gone, or not ours */
    }
  }
  return pids;
}
