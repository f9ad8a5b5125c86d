import { InvalidInput } from '../errors.ts';

/**
 * What text flowops accepts from a person, in one place for the grammar (every
 * word of every command, from any front) and the engine (the rules). Postgres
 * refuses NUL in text and jsonb, a lone surrogate in jsonb, and an integer
 * column holds at most 2^31-1: input that would hit those limits is refused
 * here with a message, before anything changes.
 */

/** The longest word (name, ref, repo, option value) a command takes. Config values have their own limit. */
export const MAX_WORD = 1024;
/** Config vars of one app, keys and values together, in UTF-8 bytes (Heroku's limit). */
/** A config var's name: letters, digits and `_`, not starting with a digit. */
export const CONFIG_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const MAX_CONFIG_BYTES = 32 * 1024;
/** The largest version, test run or pull request number (a Postgres integer). */
export const MAX_NUMBER = 2_147_483_647;

// C0 and C1 controls and DEL; TAB, LF and CR are told apart where a config value may hold them.
const CONTROL = /\p{Cc}/u;
const CONTROL_BUT_LINE_BREAKS = /[^\P{Cc}\t\n\r]/u;
// Bidi overrides, zero-width characters, soft hyphens: they make text display as something it is not.
const INVISIBLE = /\p{Cf}/u;
const LONE_SURROGATE = /\p{Cs}/u;

const codePoint = (c: string) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** A word as an error message may show it: controls, invisible characters and lone surrogates as \uXXXX, at most 60 characters. */
export function visible(text: string): string {
  const shown = text.length > 60 ? `${text.slice(0, 60)}…` : text;
  return `"${shown.replace(/[\p{Cc}\p{Cf}\p{Cs}"\\]/gu, (c) => {
    if (c === '"' || c === '\\') return `\\${c}`;
    const code = c.codePointAt(0)!;
    return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
  })}"`;
}

/** Where and what the first character matching `pattern` is: "U+0000 at character 3". */
function locate(text: string, pattern: RegExp): string {
  const match = pattern.exec(text)!;
  return `${codePoint(match[0])} at character ${[...text.slice(0, match.index)].length + 1}`;
}

/**
 * Refuses a word that is not plain one-line text: control characters (NUL
 * first of all), invisible formatting characters, lone surrogates, or more
 * than MAX_WORD characters. `what` names the word in the message.
 */
export function checkWord(text: string, what = visible(text)): void {
  if (LONE_SURROGATE.test(text))
    throw new InvalidInput(`${what} is not valid Unicode (a lone surrogate, ${locate(text, LONE_SURROGATE)}); retype it`);
  if (CONTROL.test(text)) {
    throw new InvalidInput(
      `${what} contains a control character (${locate(text, CONTROL)}): names, refs, keys and options are plain text on one line; remove it`,
    );
  }
  if (INVISIBLE.test(text)) {
    throw new InvalidInput(
      `${what} contains an invisible formatting character (${locate(text, INVISIBLE)}) that makes it display as something else; remove it`,
    );
  }
  if (text.length > MAX_WORD) throw new InvalidInput(`${what} is too long (${text.length} characters; at most ${MAX_WORD})`);
}

/**
 * Refuses a config value Postgres or a process environment cannot hold, or a
 * terminal would act on: NUL, other control characters, lone surrogates. TAB,
 * LF and CR are allowed (PEM keys, certificates). The message names the key,
 * never the value.
 */
export function checkConfigValue(key: string, value: string): void {
  if (LONE_SURROGATE.test(value))
    throw new InvalidInput(`the value of ${key} is not valid Unicode (a lone surrogate, ${locate(value, LONE_SURROGATE)}); set it again`);
  if (CONTROL_BUT_LINE_BREAKS.test(value)) {
    throw new InvalidInput(
      `the value of ${key} contains a control character (${locate(value, CONTROL_BUT_LINE_BREAKS)}): config values may hold tabs and line breaks, but never NUL or other control characters`,
    );
  }
}

/** Config vars' size as Heroku counts it: every key and value, in UTF-8 bytes. */
export function configSize(config: Record<string, string>): number {
  return Object.entries(config).reduce((sum, [key, value]) => sum + Buffer.byteLength(key) + Buffer.byteLength(value), 0);
}

/** "32,785 bytes": exact, since a limit is near when this is shown. */
export function formatBytes(bytes: number): string {
  return `${bytes.toLocaleString('en-US')} bytes`;
}

/** True for a whole number a version, test run or pull request number can be. */
export function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 1 && n <= MAX_NUMBER;
}
