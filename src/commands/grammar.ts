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
  const nearest = closest(word, [...COMMAND_NAMES, ...Object.keys(HEROKU_NAMES)]);
  return distance(word, nearest) <= Math.max(2, Math.floor(word.length / 3)) ? nearest : undefined;
}

/**
 * Heroku CLI's names for what flowops calls otherwise, each turned into
 * flowops' words: `pipelines:promote -a shop-staging --to shop` is `promote`
 * from that app. `app` is the `-a/--app` value, when given.
 */
const HEROKU_NAMES: Record<string, (rest: string[], app: string | undefined) => Command> = {
  'pipelines:add': (rest, app) => {
    const { values, positionals } = parseArgs({ args: rest, options: { stage: { type: 'string', short: 's' } }, allowPositionals: true });
    return parseCommand(['apps:create', app ?? '', '--pipeline', positionals[0] ?? '', '--stage', values.stage ?? '']);
  },
  'pipelines:promote': (rest, app) => {
    const { values } = parseArgs({ args: rest, options: { to: { type: 'string', short: 't' } }, allowPositionals: false });
    if (!app) throw new InvalidInput('missing -a <app>, the app to promote from. Usage: pipelines:promote -a <app> [--to <app>,<app>]');
    const toApps = values.to?.split(',').filter(Boolean);
    if (toApps && !toApps.length) throw new InvalidInput('--to needs the apps to promote to, like --to shop,shop-eu');
    return { name: 'promote', pipeline: '', fromApp: app, ...(toApps ? { toApps } : {}) };
  },
  'pipelines:diff': (rest, app) => {
    if (rest.length || !app) throw new InvalidInput('Usage: pipelines:diff -a <app> (or `diff <pipeline>`)');
    return { name: 'diff', pipeline: '', app };
  },
  'releases:info': (rest, app) => parseCommand(['releases:output', ...(app ? [app] : []), ...rest]),
};

/** Help for Heroku's names: their usage, and the flowops command each stands for. */
const HEROKU_HELP: Record<keyof typeof HEROKU_NAMES, { usage: string; summary: string }> = {
  'pipelines:add': {
    usage: 'pipelines:add <pipeline> -a <app> --stage <stage>',
    summary: "Heroku's name for `apps:create <app> --pipeline <pipeline> --stage <stage>` (manage)",
  },
  'pipelines:promote': {
    usage: 'pipelines:promote -a <app> [--to <app>,<app>]',
    summary: "Heroku's name for `promote`: copies the app's slug to the next stage, or to the apps named (deploy)",
  },
  'pipelines:diff': {
    usage: 'pipelines:diff -a <app>',
    summary: "Heroku's name for `diff <pipeline>`: the commits the app's stage runs that the next one does not (view)",
  },
  'releases:info': {
    usage: 'releases:info [v<version>] -a <app>',
    summary: "Heroku's name for `releases:output <app> [v<version>]`: a release's release-phase output (view)",
  },
};

/** Commands whose first word is an app: `-a <app>` (Heroku's habit) stands for it. */
function takesApp(name: CommandName): boolean {
  return SPECS[name].usage.startsWith(`${name} <app>`);
}

/** `-a shop`, `--app shop`, `--app=shop` out of the words: the app, and the words without it. */
function appOption(words: string[]): { app: string | undefined; rest: string[] } {
  const rest: string[] = [];
  let app: string | undefined;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '-a' || word === '--app') {
      if (app !== undefined) throw new InvalidInput('-a/--app given twice');
      app = words[++i];
      if (app === undefined || app.startsWith('-')) throw new InvalidInput(`${word} needs an app name, like ${word} shop`);
    } else if (word.startsWith('--app=')) {
      if (app !== undefined) throw new InvalidInput('-a/--app given twice');
      app = word.slice('--app='.length);
      if (!app) throw new InvalidInput('--app= needs an app name, like --app=shop');
    } else rest.push(word);
  }
  return { app, rest };
}

/** Parses a command's words (argv without the program name). Throws InvalidInput with the usage or the nearest command. */
export function parseCommand(argv: string[]): Command {
  const [word, ...given] = argv;
  if (!word || word === '--help' || word === '-h') return { name: 'help' };
  // `flowops ps --help`: that command's help.
  if (given.includes('--help') || given.includes('-h')) return { name: 'help', command: word };
  const { app, rest: withoutApp } = appOption(given);
  if (app !== undefined) checkWord(app);
  const heroku = HEROKU_NAMES[word];
  if (heroku) {
    checkWords(word, withoutApp);
    try {
      return heroku(withoutApp, app);
    } catch (err) {
      if (err instanceof InvalidInput) throw err;
      throw new InvalidInput(`${err instanceof Error ? err.message.split('\n')[0] : String(err)}. \`help\` lists the commands`);
    }
  }
  let rest = withoutApp;
  if (app !== undefined) {
    if (!isCommandName(word) || !takesApp(word))
      throw new InvalidInput(`-a/--app does not go with \`${word}\`${isCommandName(word) ? `. Usage: ${SPECS[word].usage}` : ''}`);
    rest = [app, ...rest];
  }
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
    commands: [
      'pipelines',
      'pipelines:info',
      'apps',
      'apps:info',
      'apps:create',
      'apps:move',
      'apps:destroy',
      'config',
      'config:get',
      'config:set',
      'config:unset',
    ],
  },
  { title: 'Run apps', commands: ['ps', 'ps:scale', 'ps:restart', 'ps:stop', 'logs', 'open'] },
  { title: 'Feeds in Slack', commands: ['subscribe', 'unsubscribe', 'subscriptions'] },
  { title: 'Delivery metrics and audit', commands: ['metrics', 'audit'] },
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
    const heroku = HEROKU_HELP[command];
    if (heroku) return `${heroku.usage}\n  ${heroku.summary}`;
    if (!isCommandName(command)) {
      const near = suggest(command);
      throw new InvalidInput(`"${command}" is not a flowops command.${near ? ` Did you mean \`${near}\`?` : ''}`);
    }
    return `${SPECS[command].usage}\n  ${SPECS[command].summary}`;
  }
  const width = Math.max(...COMMAND_NAMES.map((n) => SPECS[n].usage.length));
  return ['Commands:', ...COMMAND_NAMES.map((n) => `  ${SPECS[n].usage.padEnd(width)}  ${SPECS[n].summary}`)].join('\n');
}
