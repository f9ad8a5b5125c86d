import { parseSince } from '../engine/since.ts';
import { FEED_OPT_INS } from '../engine/feed-kinds.ts';
import { STAGE_WORDS } from '../engine/stages.ts';
import { InvalidInput } from '../errors.ts';
import type { Command, CommandName } from './command.ts';
import { optional, required, runNumber, splitSlash, usageError, version, words, type Spec } from './words.ts';

/*
 * Each command's usage, summary, options and how its words become a Command:
 * the one grammar of the CLI and Slack. parseCommand (grammar.ts) applies it.
 */

/** `--force --reason "…"`: ship through someone else's deploy lock (manage). */
const FORCE = { force: { type: 'boolean' }, reason: { type: 'string' } } as const;

function forceOf(name: CommandName, v: Record<string, string | boolean | undefined>): { force?: boolean; reason?: string } {
  if (v.force !== true) {
    if (v.reason !== undefined) throw usageError(name, "--reason goes with --force (a lock's reason: `lock … --reason`)");
    return {};
  }
  return { force: true, reason: optional(v, 'reason') };
}

/** A flag per feed opt-in (`--nudges`): what a feed asks for beyond its events. */
const OPT_IN_FLAGS = Object.fromEntries(FEED_OPT_INS.map((o) => [o, { type: 'boolean' as const }]));

function optInsOf(v: Record<string, string | boolean | undefined>): { optIns?: string[] } {
  const optIns = FEED_OPT_INS.filter((o) => v[o] === true);
  return optIns.length ? { optIns } : {};
}

export const SPECS: Record<CommandName, Spec> = {
  pipelines: {
    usage: 'pipelines',
    summary: 'list the pipelines you can see',
    parse: (w) => (words('pipelines', w, []), { name: 'pipelines' }),
  },
  'pipelines:create': {
    usage: 'pipelines:create <pipeline> --repo <path-or-url> [--branch main]',
    summary: 'create a pipeline from a git repository (admin)',
    options: { repo: { type: 'string' }, branch: { type: 'string' } },
    parse: (w, v) => {
      const [pipeline] = words('pipelines:create', w, ['pipeline']);
      return {
        name: 'pipelines:create',
        pipeline: pipeline!,
        repo: required('pipelines:create', v, 'repo'),
        branch: optional(v, 'branch'),
      };
    },
  },
  'pipelines:info': {
    usage: 'pipelines:info <pipeline>',
    summary: "show a pipeline's apps by stage, with their releases",
    parse: (w) => ({ name: 'pipelines:info', pipeline: words('pipelines:info', w, ['pipeline'])[0]! }),
  },
  'pipelines:connect': {
    usage: 'pipelines:connect <pipeline> <owner/name>',
    summary: "take the pipeline's code from a GitHub repository (admin)",
    parse: (w) => {
      const [pipeline, repository] = words('pipelines:connect', w, ['pipeline', 'owner/name']);
      return { name: 'pipelines:connect', pipeline: pipeline!, repository: repository! };
    },
  },
  'pipelines:destroy': {
    usage: 'pipelines:destroy <pipeline> --confirm <pipeline>',
    summary: 'destroy a pipeline and all its apps (manage)',
    options: { confirm: { type: 'string' } },
    parse: (w, v) => ({
      name: 'pipelines:destroy',
      pipeline: words('pipelines:destroy', w, ['pipeline'])[0]!,
      confirm: optional(v, 'confirm'),
    }),
  },
  'apps:create': {
    usage: 'apps:create <app> --pipeline <pipeline> --stage <stage> [--platform local|kubernetes] [--namespace <namespace>]',
    summary: 'add an app to a stage of a pipeline (manage); --platform kubernetes runs it on Kubernetes',
    options: { pipeline: { type: 'string' }, stage: { type: 'string' }, platform: { type: 'string' }, namespace: { type: 'string' } },
    parse: (w, v) => ({
      name: 'apps:create',
      app: words('apps:create', w, ['app'])[0]!,
      pipeline: required('apps:create', v, 'pipeline'),
      stage: required('apps:create', v, 'stage'),
      platform: optional(v, 'platform'),
      namespace: optional(v, 'namespace'),
    }),
  },
  'apps:move': {
    usage: 'apps:move <app> --stage <stage>',
    summary: 'move an app to another stage (manage)',
    options: { stage: { type: 'string' } },
    parse: (w, v) => ({ name: 'apps:move', app: words('apps:move', w, ['app'])[0]!, stage: required('apps:move', v, 'stage') }),
  },
  'apps:destroy': {
    usage: 'apps:destroy <app> --confirm <app>',
    summary: 'stop an app and delete it (manage)',
    options: { confirm: { type: 'string' } },
    parse: (w, v) => ({ name: 'apps:destroy', app: words('apps:destroy', w, ['app'])[0]!, confirm: optional(v, 'confirm') }),
  },
  deploy: {
    usage: 'deploy <pipeline>[/<ref>] to <stage>[/<app>] [--force --reason "…"]',
    summary: 'build a commit (default: the pipeline branch) and release it to a stage or one app',
    options: FORCE,
    parse: (w, v) => {
      if (w.length === 2 && w[1] !== 'to') throw usageError('deploy', `missing "to" before ${w[1]}`);
      const [target, to, where] = words('deploy', w, ['pipeline', 'to', 'stage']);
      if (to !== 'to') throw usageError('deploy', `expected "to" after ${target}, got "${to}"`);
      const [pipeline, ref] = splitSlash(target!);
      const [stage, app] = splitSlash(where!);
      return { name: 'deploy', pipeline, ref, stage, app, ...forceOf('deploy', v) };
    },
  },
  promote: {
    usage: 'promote <pipeline> [from <stage>[/<app>]] [to <stage> | to <app>[,<app>...]] [--force --reason "…"]',
    summary: 'copy the slug the source app runs, unchanged, to the downstream stage or named apps',
    options: FORCE,
    parse: (w, v) => {
      const [pipeline, ...rest] = w;
      if (!pipeline) throw usageError('promote', 'missing <pipeline>');
      const command: Extract<Command, { name: 'promote' }> = { name: 'promote', pipeline, ...forceOf('promote', v) };
      for (let i = 0; i < rest.length; i += 2) {
        const [keyword, value] = [rest[i], rest[i + 1]];
        if (keyword !== 'from' && keyword !== 'to') throw usageError('promote', `expected "from" or "to", got "${keyword}"`);
        if (!value) throw usageError('promote', `missing a stage or app after "${keyword}"`);
        if (keyword === 'from' ? command.fromStage !== undefined : command.toStage !== undefined || command.toApps !== undefined)
          throw usageError('promote', `"${keyword}" given twice`);
        if (keyword === 'from') [command.fromStage, command.fromApp] = splitSlash(value);
        else if (STAGE_WORDS.has(value)) command.toStage = value;
        else {
          command.toApps = value.split(',').filter(Boolean);
          // One release per target: an app named twice would be released twice.
          const twice = command.toApps.find((app, i) => command.toApps!.indexOf(app) !== i);
          if (twice) throw usageError('promote', `${twice} is named twice after "to"`);
        }
      }
      return command;
    },
  },
  releases: {
    usage: 'releases <app>',
    summary: "list an app's releases, newest first",
    parse: (w) => ({ name: 'releases', app: words('releases', w, ['app'])[0]! }),
  },
  'releases:output': {
    usage: 'releases:output <app> [vN]',
    summary: 'show the release phase output of a release (default: the newest)',
    parse: (w) => {
      if (w.length === 2) return { name: 'releases:output', app: w[0]!, version: version('releases:output', w[1]) };
      return { name: 'releases:output', app: words('releases:output', w, ['app'])[0]! };
    },
  },
  rollback: {
    usage: 'rollback <app> [vN] [--force --reason "…"]',
    summary: "release an earlier release's slug and config again (default: the previous one)",
    options: FORCE,
    parse: (w, v) => {
      if (w.length === 2) return { name: 'rollback', app: w[0]!, version: version('rollback', w[1]), ...forceOf('rollback', v) };
      return { name: 'rollback', app: words('rollback', w, ['app'])[0]!, ...forceOf('rollback', v) };
    },
  },
  lock: {
    usage: 'lock <app> | lock <pipeline>:<stage> [--reason "…"] [--for 2h]',
    summary: 'only you may ship there until you unlock or it expires (operate)',
    options: { reason: { type: 'string' }, for: { type: 'string' } },
    parse: (w, v) => ({ name: 'lock', target: words('lock', w, ['target'])[0]!, reason: optional(v, 'reason'), for: optional(v, 'for') }),
  },
  unlock: {
    usage: 'unlock <app> | unlock <pipeline>:<stage>',
    summary: "end a deploy lock, yours or anyone's (operate)",
    parse: (w) => ({ name: 'unlock', target: words('unlock', w, ['target'])[0]! }),
  },
  locks: {
    usage: 'locks [<pipeline>]',
    summary: 'the deploy locks of a pipeline, or of every pipeline you can see',
    parse: (w) => {
      if (w.length > 1) throw usageError('locks', `unexpected "${w.slice(1).join(' ')}"`);
      return { name: 'locks', pipeline: w[0] };
    },
  },
  'approvals:require': {
    usage: 'approvals:require <pipeline> <stage> [--approvers 1]',
    summary: 'deploys, promotions and rollbacks into the stage wait for approval by someone else with deploy (manage)',
    options: { approvers: { type: 'string' } },
    parse: (w, v) => {
      const [pipeline, stage] = words('approvals:require', w, ['pipeline', 'stage']);
      const approvers = optional(v, 'approvers');
      if (approvers !== undefined && !/^[1-5]$/.test(approvers))
        throw usageError('approvals:require', `--approvers is how many people must approve, 1 to 5; got "${approvers.slice(0, 20)}"`);
      return {
        name: 'approvals:require',
        pipeline: pipeline!,
        stage: stage!,
        approvers: approvers === undefined ? undefined : Number(approvers),
      };
    },
  },
  'approvals:disable': {
    usage: 'approvals:disable <pipeline> <stage>',
    summary: 'the stage no longer needs approvals; waiting requests stay (manage)',
    parse: (w) => {
      const [pipeline, stage] = words('approvals:disable', w, ['pipeline', 'stage']);
      return { name: 'approvals:disable', pipeline: pipeline!, stage: stage! };
    },
  },
  approvals: {
    usage: 'approvals [<pipeline>]',
    summary: 'the stages that need approvals, and the requests waiting',
    parse: (w) => {
      if (w.length > 1) throw usageError('approvals', `unexpected "${w.slice(1).join(' ')}"`);
      return { name: 'approvals', pipeline: w[0] };
    },
  },
  approve: {
    usage: 'approve <request>',
    summary: "approve someone else's request; with its approvals it ships at once (deploy)",
    parse: (w) => ({ name: 'approve', id: runNumber('approve', words('approve', w, ['request'])[0]!, 'a request number') }),
  },
  reject: {
    usage: 'reject <request> --reason "…"',
    summary: 'stop a request, saying why; the requester may withdraw their own (deploy)',
    options: { reason: { type: 'string' } },
    parse: (w, v) => ({
      name: 'reject',
      id: runNumber('reject', words('reject', w, ['request'])[0]!, 'a request number'),
      reason: required('reject', v, 'reason'),
    }),
  },
  config: {
    usage: 'config <app>',
    summary: "show an app's config vars",
    parse: (w) => ({ name: 'config', app: words('config', w, ['app'])[0]! }),
  },
  'config:set': {
    usage: 'config:set <app> KEY=value... [--force --reason "…"]',
    summary: 'set config vars (a new release)',
    options: FORCE,
    parse: (w, v) => {
      const [app, ...pairs] = w;
      if (!app) throw usageError('config:set', 'missing <app>');
      if (!pairs.length) throw usageError('config:set', 'missing KEY=value');
      const entries: [string, string][] = [];
      for (const pair of pairs) {
        // The first "=" ends the key: `URL=a=b` sets URL to "a=b". The message never shows the value.
        const at = pair.indexOf('=');
        if (at < 0) throw usageError('config:set', `"${pair}" is not KEY=value`);
        if (at === 0) throw usageError('config:set', 'a KEY=value has no key before "="');
        const key = pair.slice(0, at);
        if (entries.some(([k]) => k === key)) throw usageError('config:set', `${key} is given twice; set each key once`);
        entries.push([key, pair.slice(at + 1)]);
      }
      // fromEntries defines own properties, so a key like __proto__ stays a key.
      return { name: 'config:set', app, vars: Object.fromEntries(entries), ...forceOf('config:set', v) };
    },
  },
  'config:unset': {
    usage: 'config:unset <app> KEY... [--force --reason "…"]',
    summary: 'remove config vars (a new release)',
    options: FORCE,
    parse: (w, v) => {
      const [app, ...keys] = w;
      if (!app) throw usageError('config:unset', 'missing <app>');
      if (!keys.length) throw usageError('config:unset', 'missing KEY');
      const twice = keys.find((key, i) => keys.indexOf(key) !== i);
      if (twice) throw usageError('config:unset', `${twice} is given twice; name each key once`);
      return { name: 'config:unset', app, keys, ...forceOf('config:unset', v) };
    },
  },
  diff: {
    usage: 'diff <pipeline>',
    summary: 'the commits each stage runs that its downstream stage does not',
    parse: (w) => ({ name: 'diff', pipeline: words('diff', w, ['pipeline'])[0]! }),
  },
  logs: {
    usage: 'logs <app> [--tail] [--num 100] [--ps web|web.1|router|api] [--source app|flowops]',
    summary: "an app's log: its dynos' output, its router's requests and flowops' own lines (`--tail` follows it)",
    options: {
      tail: { type: 'boolean', short: 't' },
      num: { type: 'string', short: 'n' },
      ps: { type: 'string' },
      dyno: { type: 'string', short: 'd' },
      source: { type: 'string', short: 's' },
    },
    parse: (w, v) => {
      const [app] = words('logs', w, ['app']);
      const num = optional(v, 'num');
      if (num !== undefined && !/^\d{1,5}$/.test(num))
        throw usageError('logs', `--num is a number of lines, like 100; got "${num.slice(0, 20)}"`);
      const source = optional(v, 'source');
      if (source !== undefined && source !== 'app' && source !== 'flowops')
        throw usageError('logs', `--source is app or flowops; got "${source.slice(0, 20)}"`);
      const dyno = optional(v, 'dyno') ?? optional(v, 'ps');
      if (dyno !== undefined && !/^[a-z0-9_-]+(\.\d+)?$/i.test(dyno))
        throw usageError('logs', `--ps is a process type or dyno, like web or web.1`);
      return {
        name: 'logs',
        app: app!,
        tail: v.tail === true,
        ...(num !== undefined ? { num: Math.max(1, Number(num)) } : {}),
        ...(dyno !== undefined ? { dyno } : {}),
        ...(source ? { source } : {}),
      };
    },
  },
  ps: {
    usage: 'ps <app>',
    summary: "an app's dynos: state (starting, up, crashed, idle), since when, and command",
    parse: (w) => ({ name: 'ps', app: words('ps', w, ['app'])[0]! }),
  },
  'ps:scale': {
    usage: 'ps:scale <app> <type>=<count>...',
    summary: 'run this many dynos of each process type, kept across releases and restarts (deploy)',
    parse: (w) => {
      const [app, ...pairs] = w;
      if (!app) throw usageError('ps:scale', 'missing <app>');
      if (!pairs.length) throw usageError('ps:scale', 'missing <type>=<count>, like web=2');
      // No prototype: `__proto__=1` is a process type like any other (and refused as one the Procfile lacks).
      const formation: Record<string, number> = Object.create(null) as Record<string, number>;
      for (const pair of pairs) {
        const match = /^([A-Za-z0-9_-]+)[=:](\d{1,3})$/.exec(pair);
        if (!match) throw usageError('ps:scale', `"${pair.slice(0, 40)}" is not <type>=<count>, like web=2`);
        formation[match[1]!] = Number(match[2]);
      }
      return { name: 'ps:scale', app, formation };
    },
  },
  'ps:restart': {
    usage: 'ps:restart <app> [web|web.1]',
    summary: "restart an app's dynos, a process type's, or one (deploy)",
    parse: (w) => {
      if (w.length === 2) return { name: 'ps:restart', app: w[0]!, target: w[1]! };
      return { name: 'ps:restart', app: words('ps:restart', w, ['app'])[0]! };
    },
  },
  'ps:stop': {
    usage: 'ps:stop <app> <web|web.1>',
    summary: 'stop a dyno or a process type until the next restart, scale or release (deploy)',
    parse: (w) => {
      const [app, target] = words('ps:stop', w, ['app', 'dyno']);
      return { name: 'ps:stop', app: app!, target: target! };
    },
  },
  apps: {
    usage: 'apps',
    summary: 'list the apps you can see, with their pipeline and stage',
    parse: (w) => (words('apps', w, []), { name: 'apps' }),
  },
  'apps:info': {
    usage: 'apps:info <app>',
    summary: "an app's pipeline, stage, release, URL, lock and crashed dynos",
    parse: (w) => ({ name: 'apps:info', app: words('apps:info', w, ['app'])[0]! }),
  },
  'config:get': {
    usage: 'config:get <app> KEY',
    summary: 'print the value of one config var',
    parse: (w) => {
      const [app, key] = words('config:get', w, ['app', 'KEY']);
      return { name: 'config:get', app: app!, key: key! };
    },
  },
  open: {
    usage: 'open <app>',
    summary: "the app's URL",
    parse: (w) => ({ name: 'open', app: words('open', w, ['app'])[0]! }),
  },
  access: {
    usage: 'access <pipeline>',
    summary: 'who has which permission on a pipeline',
    parse: (w) => ({ name: 'access', pipeline: words('access', w, ['pipeline'])[0]! }),
  },
  'access:add': {
    usage: 'access:add <pipeline> <user> <view|deploy|operate|manage>',
    summary: 'grant a user a permission on a pipeline (manage)',
    parse: (w) => {
      const [pipeline, user, permission] = words('access:add', w, ['pipeline', 'user', 'permission']);
      return { name: 'access:add', pipeline: pipeline!, user: user!, permission: permission! };
    },
  },
  'access:remove': {
    usage: 'access:remove <pipeline> <user>',
    summary: "remove a user's access to a pipeline (manage)",
    parse: (w) => {
      const [pipeline, user] = words('access:remove', w, ['pipeline', 'user']);
      return { name: 'access:remove', pipeline: pipeline!, user: user! };
    },
  },
  'access:default': {
    usage: 'access:default <pipeline> <none|view|deploy>',
    summary: 'what every member of the Slack workspace holds on the pipeline at least (manage)',
    parse: (w) => {
      const [pipeline, permission] = words('access:default', w, ['pipeline', 'none|view|deploy']);
      return { name: 'access:default', pipeline: pipeline!, permission: permission! };
    },
  },
  'users:create': {
    usage: 'users:create <user>',
    summary: "create a user and print the user's API token (admin)",
    parse: (w) => ({ name: 'users:create', user: words('users:create', w, ['user'])[0]! }),
  },
  users: {
    usage: 'users',
    summary: 'every user, with their Slack account and CLI token (admin)',
    parse: (w) => (words('users', w, []), { name: 'users' }),
  },
  'users:unlink': {
    usage: 'users:unlink <user>',
    summary: "undo a user's link to a Slack account (admin)",
    parse: (w) => ({ name: 'users:unlink', user: words('users:unlink', w, ['user'])[0]! }),
  },
  login: {
    usage: 'login [<code>]',
    summary: 'one identity: `/flow login` in Slack gives a code, `flowops login <code>` links your Slack account to your CLI user',
    parse: (w) => {
      if (w.length > 1) throw usageError('login', `unexpected "${w.slice(1).join(' ')}"`);
      return { name: 'login', code: w[0] };
    },
  },
  ci: {
    usage: 'ci <pipeline>',
    summary: "the pipeline's latest test runs",
    parse: (w) => ({ name: 'ci', pipeline: words('ci', w, ['pipeline'])[0]! }),
  },
  'ci:info': {
    usage: 'ci:info <pipeline> <N>',
    summary: 'a test run with its output',
    parse: (w) => {
      const [pipeline, n] = words('ci:info', w, ['pipeline', 'N']);
      return { name: 'ci:info', pipeline: pipeline!, number: runNumber('ci:info', n!) };
    },
  },
  'ci:rerun': {
    usage: 'ci:rerun <pipeline> [N]',
    summary: "run a test run's commit again (default: the latest) (deploy)",
    parse: (w) => {
      if (w.length === 2) return { name: 'ci:rerun', pipeline: w[0]!, number: runNumber('ci:rerun', w[1]!) };
      return { name: 'ci:rerun', pipeline: words('ci:rerun', w, ['pipeline'])[0]! };
    },
  },
  'ci:cancel': {
    usage: 'ci:cancel <pipeline> <N>',
    summary: 'stop a test run (manage)',
    parse: (w) => {
      const [pipeline, n] = words('ci:cancel', w, ['pipeline', 'N']);
      return { name: 'ci:cancel', pipeline: pipeline!, number: runNumber('ci:cancel', n!) };
    },
  },
  'ci:enable': {
    usage: 'ci:enable <pipeline>',
    summary: "test every push to the pipeline's GitHub repository (manage)",
    parse: (w) => ({ name: 'ci:enable', pipeline: words('ci:enable', w, ['pipeline'])[0]! }),
  },
  'ci:disable': {
    usage: 'ci:disable <pipeline>',
    summary: 'stop testing pushes (manage)',
    parse: (w) => ({ name: 'ci:disable', pipeline: words('ci:disable', w, ['pipeline'])[0]! }),
  },
  'autodeploy:enable': {
    usage: 'autodeploy:enable <pipeline> --branch <branch> [--stage staging] [--wait-for-ci]',
    summary: 'deploy every push to a branch to a stage, with --wait-for-ci only once its tests pass (manage)',
    options: { branch: { type: 'string' }, stage: { type: 'string' }, 'wait-for-ci': { type: 'boolean' } },
    parse: (w, v) => ({
      name: 'autodeploy:enable',
      pipeline: words('autodeploy:enable', w, ['pipeline'])[0]!,
      branch: required('autodeploy:enable', v, 'branch'),
      stage: optional(v, 'stage'),
      waitForCi: v['wait-for-ci'] === true,
    }),
  },
  'autodeploy:disable': {
    usage: 'autodeploy:disable <pipeline>',
    summary: 'stop deploying pushes (manage)',
    parse: (w) => ({ name: 'autodeploy:disable', pipeline: words('autodeploy:disable', w, ['pipeline'])[0]! }),
  },
  reviewapps: {
    usage: 'reviewapps <pipeline>',
    summary: "the pipeline's review apps, one per pull request",
    parse: (w) => ({ name: 'reviewapps', pipeline: words('reviewapps', w, ['pipeline'])[0]! }),
  },
  'reviewapps:enable': {
    usage: 'reviewapps:enable <pipeline> [--autodeploy] [--autodestroy] [--stale-days 5] [--wait-for-ci]',
    summary: 'a review app per pull request: created on open, redeployed on push, destroyed on close (manage)',
    options: {
      autodeploy: { type: 'boolean' },
      autodestroy: { type: 'boolean' },
      'stale-days': { type: 'string' },
      'wait-for-ci': { type: 'boolean' },
    },
    parse: (w, v) => {
      const days = optional(v, 'stale-days');
      if (days !== undefined && !/^\d+$/.test(days))
        throw usageError('reviewapps:enable', `--stale-days takes a number of days, got "${days}"`);
      return {
        name: 'reviewapps:enable',
        pipeline: words('reviewapps:enable', w, ['pipeline'])[0]!,
        autodeploy: v.autodeploy === true,
        autodestroy: v.autodestroy === true,
        staleDays: days === undefined ? undefined : Number(days),
        waitForCi: v['wait-for-ci'] === true,
      };
    },
  },
  'reviewapps:disable': {
    usage: 'reviewapps:disable <pipeline>',
    summary: 'stop creating review apps (manage)',
    parse: (w) => ({ name: 'reviewapps:disable', pipeline: words('reviewapps:disable', w, ['pipeline'])[0]! }),
  },
  'reviewapps:create': {
    usage: 'reviewapps:create <pipeline> --pr <N>',
    summary: "create or update a pull request's review app (deploy)",
    options: { pr: { type: 'string' } },
    parse: (w, v) => ({
      name: 'reviewapps:create',
      pipeline: words('reviewapps:create', w, ['pipeline'])[0]!,
      pr: runNumber('reviewapps:create', required('reviewapps:create', v, 'pr'), 'a pull request number'),
    }),
  },
  'reviewapps:destroy': {
    usage: 'reviewapps:destroy <pipeline> --pr <N>',
    summary: "destroy a pull request's review app (deploy)",
    options: { pr: { type: 'string' } },
    parse: (w, v) => ({
      name: 'reviewapps:destroy',
      pipeline: words('reviewapps:destroy', w, ['pipeline'])[0]!,
      pr: runNumber('reviewapps:destroy', required('reviewapps:destroy', v, 'pr'), 'a pull request number'),
    }),
  },
  subscribe: {
    usage: 'subscribe <pipeline> [deploy|promote|rollback|config|ci|pulls...] [--nudges] [--digest] [--channel <channel>]',
    summary:
      "make a channel the pipeline's feed (in Slack: this channel, or <#channel>); --nudges: reminders too; --digest: a weekly digest of delivery metrics (operate)",
    options: { channel: { type: 'string' }, ...OPT_IN_FLAGS },
    parse: (w, v) => {
      const [pipeline, ...events] = w;
      if (!pipeline) throw usageError('subscribe', 'missing <pipeline>');
      return { name: 'subscribe', pipeline, events, channel: optional(v, 'channel'), ...optInsOf(v) };
    },
  },
  unsubscribe: {
    usage: 'unsubscribe <pipeline> [--nudges] [--digest] [--channel <channel>]',
    summary: "stop a channel's feed of the pipeline; with --nudges or --digest, only those (operate)",
    options: { channel: { type: 'string' }, ...OPT_IN_FLAGS },
    parse: (w, v) => ({
      name: 'unsubscribe',
      pipeline: words('unsubscribe', w, ['pipeline'])[0]!,
      channel: optional(v, 'channel'),
      ...optInsOf(v),
    }),
  },
  subscriptions: {
    usage: 'subscriptions [--channel <channel>]',
    summary: 'the pipelines a channel is a feed of',
    options: { channel: { type: 'string' } },
    parse: (w, v) => (words('subscriptions', w, []), { name: 'subscriptions', channel: optional(v, 'channel') }),
  },
  audit: {
    usage: 'audit <pipeline> [--since 7d] [--user <user>]',
    summary: 'who did what to a pipeline, when, from where, and how it ended (manage)',
    options: { since: { type: 'string' }, user: { type: 'string' } },
    parse: (w, v) => {
      const pipeline = words('audit', w, ['pipeline'])[0]!;
      const since = optional(v, 'since');
      if (since !== undefined) {
        try {
          parseSince(since);
        } catch (err) {
          throw err instanceof InvalidInput ? usageError('audit', err.message) : err;
        }
      }
      const user = optional(v, 'user');
      if (user === '') throw usageError('audit', '--user needs a user name');
      return { name: 'audit', pipeline, since, user };
    },
  },
  metrics: {
    usage: 'metrics <pipeline> [--days 30]',
    summary: "the four DORA keys of the pipeline's production stage, with their bands (`--json` for the numbers)",
    options: { days: { type: 'string' } },
    parse: (w, v) => {
      const days = optional(v, 'days');
      if (days !== undefined && !/^\d{1,3}$/.test(days))
        throw usageError('metrics', `--days takes a number of days, like --days 30; got "${days.slice(0, 20)}"`);
      return { name: 'metrics', pipeline: words('metrics', w, ['pipeline'])[0]!, ...(days !== undefined ? { days: Number(days) } : {}) };
    },
  },
  help: {
    usage: 'help [command]',
    summary: 'list the commands, or explain one',
    parse: (w) => {
      if (w.length > 1) throw usageError('help', `unexpected "${w.slice(1).join(' ')}"`);
      return { name: 'help', command: w[0] };
    },
  },
};
