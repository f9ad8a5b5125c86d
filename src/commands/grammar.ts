import { parseArgs } from 'node:util';
import { closest, distance } from 'fastest-levenshtein';
import { InvalidInput } from '../errors.ts';
import { checkConfigValue, checkWord, visible } from '../engine/input.ts';
import type { Command, CommandName } from './command.ts';
import { SPECS } from './specs.ts';
import { usageError, type Values } from './words.ts';

export type { Command, CommandName } from './command.ts';

export const COMMAND_NAMES = Object.keys(SPECS) as CommandName[];

function isCommandName(word: string): word is CommandName {
  return Object.hasOwn(SPECS, word);
}

/** The known command nearest to a mistyped one, if it is near enough to be a typo. */
export function suggest(word: string): string | undefined {
  const nearest = closest(word, COMMAND_NAMES);
  return distance(word, nearest) <= Math.max(2, Math.floor(word.length / 3)) ? nearest : undefined;
}

/** Parses a command's words (argv without the program name). Throws InvalidInput with the usage or the nearest command. */
export function parseCommand(argv: string[]): Command {
  const [word, ...rest] = argv;
  if (!word) return { name: 'help' };
  checkWords(word, rest);
  if (!isCommandName(word)) {
    const near = suggest(word);
    throw new InvalidInput(`"${word}" is not a flowops command.${near ? ` Did you mean \`${near}\`?` : ''} \`help\` lists the commands`);
  }
  const spec = SPECS[word];
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options: spec.options ?? {}, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0]!.replace(/\. To specify a positional.*$/, '') : String(err);
    throw usageError(word, message.replace(/\.$/, ''));
  }
  return spec.parse(parsed.positionals, parsed.values);
}

/**
 * Every word a command is given is plain one-line text of bounded length
 * (see checkWord), whichever front it came from; a config value may also hold
 * tabs and line breaks and is bounded by the app's config size instead.
 */
function checkWords(command: string, rest: string[]): void {
  checkWord(command);
  rest.forEach((word, i) => {
    const at = word.indexOf('=');
    if (command === 'config:set' && i > 0 && at > 0) {
      const key = word.slice(0, at);
      checkWord(key, `config var name ${visible(key)}`);
      checkConfigValue(key, word.slice(at + 1));
    } else {
      checkWord(word);
    }
  });
}

/** Splits a line of text into words as a shell would for simple quoting: `config:set a K="two words"`. */
export function tokenize(text: string): string[] {
  const tokens: string[] = [];
  const pattern = /([^\s"']*(?:"[^"]*"|'[^']*')[^\s"']*)+|[^\s]+/g;
  // Phones and some keyboards type “smart” quotes: they quote as straight ones do.
  const straight = text.replace(/[“”]/g, '"').replace(/[‘’]/g, "'");
  for (const match of straight.trim().matchAll(pattern)) tokens.push(match[0].replace(/"([^"]*)"|'([^']*)'/g, '$1$2'));
  return tokens;
}

/** The commands by topic, for a short help (Slack's `/flow help`); every command is in one topic. */
const HELP_TOPICS: { title: string; commands: CommandName[] }[] = [
  { title: 'Ship', commands: ['deploy', 'promote', 'rollback', 'diff', 'releases', 'releases:output'] },
  { title: 'Deploy locks', commands: ['lock', 'unlock', 'locks'] },
  { title: 'Approvals', commands: ['approvals', 'approve', 'reject', 'approvals:require', 'approvals:disable'] },
  {
    title: 'Apps and config',
    commands: ['pipelines', 'pipelines:info', 'apps:create', 'apps:move', 'apps:destroy', 'config', 'config:set', 'config:unset'],
  },
  { title: 'Feeds in Slack', commands: ['subscribe', 'unsubscribe', 'subscriptions'] },
  {
    title: 'CI and review apps',
    commands: [
      'ci',
      'ci:info',
      'ci:rerun',
      'ci:cancel',
      'ci:enable',
      'ci:disable',
      'autodeploy:enable',
      'autodeploy:disable',
      'reviewapps',
      'reviewapps:enable',
      'reviewapps:disable',
      'reviewapps:create',
      'reviewapps:destroy',
    ],
  },
  {
    title: 'People and pipelines (admins, managers)',
    commands: [
      'access',
      'access:add',
      'access:remove',
      'access:default',
      'login',
      'users',
      'users:create',
      'users:unlink',
      'pipelines:create',
      'pipelines:connect',
      'pipelines:destroy',
      'help',
    ],
  },
];

/** The commands by topic with their usage and summary: help as short sections. */
export function helpTopics(): { title: string; commands: { usage: string; summary: string }[] }[] {
  return HELP_TOPICS.map((t) => ({
    title: t.title,
    commands: t.commands.map((n) => ({ usage: SPECS[n].usage, summary: SPECS[n].summary })),
  }));
}

/** The help text: every command with its usage, or one command in full. */
export function helpText(command?: string): string {
  if (command) {
    if (!isCommandName(command)) {
      const near = suggest(command);
      throw new InvalidInput(`"${command}" is not a flowops command.${near ? ` Did you mean \`${near}\`?` : ''}`);
    }
    return `${SPECS[command].usage}\n  ${SPECS[command].summary}`;
  }
  const width = Math.max(...COMMAND_NAMES.map((n) => SPECS[n].usage.length));
  return ['Commands:', ...COMMAND_NAMES.map((n) => `  ${SPECS[n].usage.padEnd(width)}  ${SPECS[n].summary}`)].join('\n');
}
