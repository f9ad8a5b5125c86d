import { describe, expect, it } from 'vitest';
import { COMMAND_NAMES, helpText, helpTopics, parseCommand, suggest, tokenize } from '../src/commands/grammar.ts';

describe('the command grammar shared by /flow and the CLI', () => {
  it.each([
    ['pipelines', { name: 'pipelines' }],
    ['pipelines:create shop --repo /src/shop', { name: 'pipelines:create', pipeline: 'shop', repo: '/src/shop', branch: undefined }],
    [
      'pipelines:create shop --repo /src/shop --branch trunk',
      { name: 'pipelines:create', pipeline: 'shop', repo: '/src/shop', branch: 'trunk' },
    ],
    ['pipelines:info shop', { name: 'pipelines:info', pipeline: 'shop' }],
    ['pipelines:destroy shop --confirm shop', { name: 'pipelines:destroy', pipeline: 'shop', confirm: 'shop' }],
    [
      'apps:create shop-staging --pipeline shop --stage staging',
      { name: 'apps:create', app: 'shop-staging', pipeline: 'shop', stage: 'staging' },
    ],
    ['apps:move shop-qa --stage prod', { name: 'apps:move', app: 'shop-qa', stage: 'prod' }],
    ['deploy shop to staging', { name: 'deploy', pipeline: 'shop', ref: undefined, stage: 'staging', app: undefined }],
    [
      'deploy shop/feature/x to staging/shop-staging',
      { name: 'deploy', pipeline: 'shop', ref: 'feature/x', stage: 'staging', app: 'shop-staging' },
    ],
    ['promote shop', { name: 'promote', pipeline: 'shop' }],
    [
      'promote shop from staging/shop-eu to prod',
      { name: 'promote', pipeline: 'shop', fromStage: 'staging', fromApp: 'shop-eu', toStage: 'prod' },
    ],
    ['promote shop to shop-eu,shop-us', { name: 'promote', pipeline: 'shop', toApps: ['shop-eu', 'shop-us'] }],
    ['releases shop', { name: 'releases', app: 'shop' }],
    ['releases:output shop v7', { name: 'releases:output', app: 'shop', version: 7 }],
    ['rollback shop', { name: 'rollback', app: 'shop' }],
    ['rollback shop 5', { name: 'rollback', app: 'shop', version: 5 }],
    ['config:set shop A=1 B=x=y', { name: 'config:set', app: 'shop', vars: { A: '1', B: 'x=y' } }],
    ['config:unset shop A B', { name: 'config:unset', app: 'shop', keys: ['A', 'B'] }],
    ['diff shop', { name: 'diff', pipeline: 'shop' }],
    ['access:add shop alice deploy', { name: 'access:add', pipeline: 'shop', user: 'alice', permission: 'deploy' }],
    ['access:remove shop alice', { name: 'access:remove', pipeline: 'shop', user: 'alice' }],
    ['users:create alice', { name: 'users:create', user: 'alice' }],
    ['help promote', { name: 'help', command: 'promote' }],
    [
      'lock shop:staging --reason "migrating orders" --for 2h',
      { name: 'lock', target: 'shop:staging', reason: 'migrating orders', for: '2h' },
    ],
    ['lock shop-staging --reason “typed on a phone”', { name: 'lock', target: 'shop-staging', reason: 'typed on a phone', for: undefined }],
    ['unlock shop-staging', { name: 'unlock', target: 'shop-staging' }],
    ['locks', { name: 'locks', pipeline: undefined }],
    [
      'deploy shop to staging --force --reason "checkout is down"',
      { name: 'deploy', pipeline: 'shop', ref: undefined, stage: 'staging', app: undefined, force: true, reason: 'checkout is down' },
    ],
    ['rollback shop --force --reason hotfix', { name: 'rollback', app: 'shop', force: true, reason: 'hotfix' }],
  ])('parses `%s`', (text, expected) => {
    expect(parseCommand(tokenize(text))).toEqual(expected);
  });

  it.each([
    ['promte shop', '"promte" is not a flowops command. Did you mean `promote`?'],
    ['deploy shop staging', 'missing "to" before staging. Usage: deploy <pipeline>[/<ref>] to <stage>[/<app>]'],
    ['deploy shop at staging', 'expected "to" after shop, got "at"'],
    ['pipelines:create shop', 'missing --repo. Usage: pipelines:create'],
    ['pipelines:create shop --repo', "Option '--repo <value>' argument missing"],
    ['apps:create x --pipeline p --stage s --colour red', "Unknown option '--colour'"],
    ['releases', 'missing <app>'],
    ['releases a b c', 'unexpected "b c"'],
    ['rollback shop five', '"five" is not a release version (like v5)'],
    ['config:set shop A', '"A" is not KEY=value'],
    ['promote shop to', 'missing a stage or app after "to"'],
    ['promote shop to prod to staging', '"to" given twice'],
    ['xyzzy', '"xyzzy" is not a flowops command. `help` lists the commands'],
    ['deploy shop to staging --reason why', '--reason goes with --force'],
    ['lock', 'missing <target>'],
  ])('refuses `%s` with a message that says what is wrong', (text, message) => {
    expect(() => parseCommand(tokenize(text))).toThrow(message);
  });

  it('suggests only near misses', () => {
    expect(suggest('relases')).toBe('releases');
    expect(suggest('pipelines:inf')).toBe('pipelines:info');
    expect(suggest('banana')).toBeUndefined();
  });

  it('keeps quoted words together, as a shell would', () => {
    expect(tokenize(`config:set shop GREETING="hello world" NAME='a b'`)).toEqual([
      'config:set',
      'shop',
      'GREETING=hello world',
      'NAME=a b',
    ]);
  });

  it("lists every command in help, and explains one; Slack's short help has every command in a topic", () => {
    const inTopics = helpTopics().flatMap((t) => t.commands.map((c) => c.usage.split(' ')[0]));
    expect(new Set(inTopics)).toEqual(new Set(COMMAND_NAMES));
    expect(helpText()).toContain('promote <pipeline> [from <stage>[/<app>]]');
    expect(helpText('rollback')).toBe(
      'rollback <app> [vN] [--force --reason "…"]\n  release an earlier release\'s slug and config again (default: the previous one)',
    );
  });
});
