import { describe, expect, it } from 'vitest';
import { run } from '../src/exec.ts';

describe('running a child process', () => {
  it('reports a child that exits without reading what it was handed on fd 3 by its exit status, not by an uncaught error', async () => {
    const results = await Promise.all(Array.from({ length: 5 }, () => run('sh', ['-c', 'exit 3'], { fd3: 'x'.repeat(4 << 20) })));

    expect(results.map((r) => r.code)).toEqual([3, 3, 3, 3, 3]);
    await new Promise((resolve) => setTimeout(resolve, 200));
  });
});
