/**
 * The load side of the webhook benchmark, in a process of its own (as GitHub is):
 * sends `count` signed push deliveries, `concurrency` at a time, then redelivers
 * every tenth; prints each answer's latency and status as JSON.
 * Args: url secret count concurrency [id prefix].
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { deliver, githubSignature } from '../test/helpers/fake-github.ts';

const [url, secret, count, concurrency, prefix = 'bench'] = process.argv.slice(2) as [string, string, string, string, string?];
const total = Number(count);
const ids = [
  ...Array.from({ length: total }, (_, i) => `${prefix}-${i}`),
  ...Array.from({ length: total / 10 }, (_, i) => `${prefix}-${i * 10}`),
];
const results: { ms: number; status: number }[] = [];
let next = 0;
async function worker(): Promise<void> {
  while (next < ids.length) {
    const id = ids[next++]!;
    const body = JSON.stringify({
      ref: 'refs/heads/main',
      after: createHash('sha1').update(id).digest('hex'),
      repository: { full_name: 'acme/bench' },
      pusher: { name: 'bench' },
    });
    const start = performance.now();
    const res = await deliver(url, 'push', id, body, githubSignature(secret, body));
    await res.arrayBuffer();
    results.push({ ms: performance.now() - start, status: res.status });
  }
}
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
console.log(JSON.stringify(results));
