// @ts-check
// One JavaScript file per entry point, bundled from the TypeScript sources by esbuild
// when they change, so a program starts without compiling TypeScript: the CLI answers in
// a tenth of a second instead of a second and more through tsx.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';

const root = path.resolve(import.meta.dirname, '..');
/** Inside node_modules, so the bundle finds the packages it leaves out (they stay external). */
const cacheDir = path.join(root, 'node_modules', '.cache', 'flowops');

/**
 * The path of an up-to-date bundle of `entry` (a path from the repository root):
 * the existing one when none of the files it was made of changed since, a new one otherwise.
 * @param {string} entry
 * @param {string} name
 * @returns {Promise<string>}
 */
export async function bundled(entry, name) {
  // Named after the checkout too: checkouts that share a node_modules (git worktrees) keep their own bundles.
  const id = `${name}-${createHash('sha256').update(root).digest('hex').slice(0, 8)}`;
  const out = path.join(cacheDir, `${id}.mjs`);
  const inputsFile = path.join(cacheDir, `${id}.inputs.json`);
  if (fresh(out, inputsFile)) return out;
  const { build } = await import('esbuild');
  mkdirSync(cacheDir, { recursive: true });
  // Written aside and renamed: two processes bundling at once never read half a file.
  const tmp = `${out}.${process.pid}.tmp`;
  const result = await build({
    entryPoints: [path.join(root, entry)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile: tmp,
    metafile: true,
    logLevel: 'error',
  });
  const inputs = Object.keys(result.metafile.inputs).map((file) => path.resolve(root, file));
  writeFileSync(`${inputsFile}.${process.pid}.tmp`, JSON.stringify(inputs));
  renameSync(tmp, out);
  renameSync(`${inputsFile}.${process.pid}.tmp`, inputsFile);
  return out;
}

/**
 * @param {string} out
 * @param {string} inputsFile
 */
function fresh(out, inputsFile) {
  if (!existsSync(out) || !existsSync(inputsFile)) return false;
  const built = statSync(out).mtimeMs;
  try {
    /** @type {string[]} */
    const inputs = JSON.parse(readFileSync(inputsFile, 'utf8'));
    return inputs.every((file) => statSync(file).mtimeMs <= built);
  } catch {
    return false;
  }
}
