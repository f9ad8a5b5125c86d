import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';

/** Procfile, package.json, app.json: small files; a larger one is refused rather than read. */
const LIMIT = 1 << 20;

/**
 * Reads a top-level file of a repository tree on flowops' side of the sandbox: a
 * regular file only, never through a symlink (a repository can commit
 * `package.json -> /path/to/admin-token`), at most `limit` bytes. Null when there is none.
 */
export async function readRepoFile(dir: string, name: string, limit = LIMIT): Promise<string | null> {
  let handle;
  try {
    handle = await open(path.join(dir, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw new Error(`${name} is a symbolic link; flowops reads it only as a regular file`);
    throw err;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error(`${name} is not a regular file`);
    if (stat.size > limit) throw new Error(`${name} is larger than ${Math.round(limit / (1 << 20))} MB`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * A JSON file of a repository tree ({} when there is none). Invalid JSON is an
 * error that names the file but never quotes it: what a symlink or a hostile
 * file holds must not reach a build log.
 */
export async function readRepoJson(dir: string, name: string): Promise<Record<string, unknown>> {
  const text = await readRepoFile(dir, name);
  if (text === null) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${name} is not valid JSON`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${name} must hold a JSON object`);
  return value as Record<string, unknown>;
}
