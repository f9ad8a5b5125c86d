import { setTimeout as sleep } from 'node:timers/promises';

/** Asks `probe` every 100 ms until it answers something truthy, and returns it; past `timeoutMs`, fails naming `what`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
