import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
// @ts-expect-error -- plain JavaScript, checked by its own JSDoc
import { bundled } from '../bin/bundled.js';

/**
 * The CLI answers in a blink because its bundle is only the command grammar
 * and an HTTP client: a module that drags in the database layer (TypeORM's
 * entities), Slack or the engine's services costs every call hundreds of
 * milliseconds (a grammar import of the Feeds service once did).
 */
describe('the CLI bundle', () => {
  it('leaves the database layer, Slack and the server out', async () => {
    const out = (await bundled('src/cli/main.ts', 'cli')) as string;
    const code = await readFile(out, 'utf8');
    const packages = [...code.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]!).filter((p) => !p.startsWith('node:'));
    expect(packages.sort()).toEqual(['fastest-levenshtein']);
    const inputs = JSON.parse(await readFile(out.replace(/\.mjs$/, '.inputs.json'), 'utf8')) as string[];
    expect(inputs.filter((f) => /\/src\/(db\/entities|db\/data-source|slack|server|engine\/engine)\b/.test(f))).toEqual([]);
  });
});
