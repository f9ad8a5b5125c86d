import type { ParseArgsConfig } from 'node:util';
import { MAX_NUMBER, isCount } from '../engine/input.ts';
import { InvalidInput } from '../errors.ts';
import type { Command, CommandName } from './command.ts';
import { SPECS } from './specs.ts';

/* The pieces every command's parse is made of: words, options, numbers, usage errors. */

type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

export interface Spec {
  usage: string;
  summary: string;
  options?: Options;
  /** Positional words: exactly these many, or a custom parse. */
  parse(words: string[], values: Values): Command;
}

export function usageError(name: CommandName, problem: string): InvalidInput {
  return new InvalidInput(`${problem}. Usage: ${SPECS[name].usage}`);
}

/** Exactly `count` positional words, or a usage error naming what is missing or extra. */
export function words(name: CommandName, given: string[], names: string[]): string[] {
  if (given.length < names.length)
    throw usageError(
      name,
      `missing ${names
        .slice(given.length)
        .map((n) => `<${n}>`)
        .join(' ')}`,
    );
  if (given.length > names.length) throw usageError(name, `unexpected "${given.slice(names.length).join(' ')}"`);
  return given;
}

export function required(name: CommandName, values: Values, option: string): string {
  const value = values[option];
  if (typeof value !== 'string' || !value) throw usageError(name, `missing --${option}`);
  return value;
}

export function optional(values: Values, option: string): string | undefined {
  const value = values[option];
  return typeof value === 'string' ? value : undefined;
}

/** A test run or pull request number: 1 to 2^31-1, what the database can hold. */
export function runNumber(name: CommandName, word: string, what = 'a test run number'): number {
  const match = /^#?(\d+)$/.exec(word);
  if (!match) throw usageError(name, `"${word}" is not ${what} (like 12)`);
  const n = Number(match[1]);
  if (!isCount(n)) throw usageError(name, `"${word}" is not ${what}: numbers run from 1 to ${MAX_NUMBER}`);
  return n;
}

/** A release version, `v5` or `5`: 1 to 2^31-1, what the database can hold. */
export function version(name: CommandName, word: string | undefined): number | undefined {
  if (word === undefined) return undefined;
  const match = /^v?(\d+)$/.exec(word);
  if (!match) throw usageError(name, `"${word}" is not a release version (like v5)`);
  const n = Number(match[1]);
  if (!isCount(n)) throw usageError(name, `"${word}" is not a release version: versions run from v1 to v${MAX_NUMBER}`);
  return n;
}

/** Splits `a/b` at the first slash: `shop/feature/x` is pipeline `shop`, ref `feature/x`. */
export function splitSlash(word: string): [string, string | undefined] {
  const at = word.indexOf('/');
  return at < 0 ? [word, undefined] : [word.slice(0, at), word.slice(at + 1) || undefined];
}
