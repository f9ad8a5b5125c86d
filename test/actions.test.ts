import { describe, expect, it } from 'vitest';
import { ACTIONS, actionButton, decodeAction, encodeAction, type ActionId, type ActionPayload } from '../src/blocks/actions.ts';
import { MAX_BUTTON_VALUE } from '../src/blocks/limits.ts';
import { InvalidInput } from '../src/errors.ts';

const OLDER = 'this button is from an older flowops message; run the command instead (`/flow help`)';
const sha = '0f0a53b'.padEnd(40, 'c');

/** One payload per action id, as the builders make them. */
const examples: { [Id in ActionId]: ActionPayload<Id> } = {
  promote: { p: 'shop', a: 'shop-staging', v: 6 },
  rollback: { a: 'shop', v: 12 },
  rerelease: { a: 'shop', v: 12, c: 14 },
  unlock: { t: 'shop:staging', i: 3 },
  extend: { t: 'shop-staging', i: 3 },
  retry: { p: 'shop', a: 'shop-staging', s: 'staging', c: sha },
  ci_rerun: { p: 'shop', n: 41 },
  output: { a: 'shop-staging', v: 7 },
  approve: { i: 3 },
  reject: { i: 3 },
  restart: { a: 'shop-staging-long-name', d: 'worker.10' },
};

describe('the registry of Slack actions', () => {
  it('has an example for every action id', () => {
    expect(Object.keys(examples).sort()).toEqual(Object.keys(ACTIONS).sort());
  });

  it.each(Object.keys(ACTIONS) as ActionId[])('decodes what it encodes for %s, as compact JSON within the limit', (id) => {
    const payload = examples[id];

    const value = encodeAction(id, payload);

    expect(value).toBe(JSON.stringify(payload));
    expect(value.length).toBeLessThanOrEqual(MAX_BUTTON_VALUE);
    expect(decodeAction(id, value)).toEqual(payload);
  });

  it('decodes the values of buttons already posted in channels', () => {
    expect(decodeAction('promote', '{"p":"shop","a":"shop-staging","v":6}')).toEqual({ p: 'shop', a: 'shop-staging', v: 6 });
    expect(decodeAction('ci_rerun', '{"p":"shop","n":41}')).toEqual({ p: 'shop', n: 41 });
  });

  it.each([
    ['no value', 'promote', undefined],
    ['an empty value', 'promote', ''],
    ['a value that is not JSON', 'promote', '{"p":"shop",'],
    ['JSON that is not an object', 'rollback', '"shop"'],
    ['a missing key', 'promote', '{"p":"shop","a":"shop-staging"}'],
    ['a version as text', 'rollback', '{"a":"shop","v":"12"}'],
    ['a fractional version', 'output', '{"a":"shop","v":1.5}'],
    ["another action's payload", 'retry', '{"p":"shop","a":"shop-staging","v":6}'],
    ['null', 'ci_rerun', 'null'],
  ] as const)('refuses %s as a button from an older flowops message', (_what, id, value) => {
    expect(() => decodeAction(id, value)).toThrow(InvalidInput);
    expect(() => decodeAction(id, value)).toThrow(OLDER);
  });

  it('keeps only the keys of the schema from a forged value', () => {
    expect(decodeAction('rollback', '{"a":"shop","v":3,"admin":true}')).toEqual({ a: 'shop', v: 3 });
  });

  it('refuses to encode a value over the limit, naming the action', () => {
    const long = 'x'.repeat(MAX_BUTTON_VALUE);

    expect(() => encodeAction('retry', { p: 'shop', a: 'shop-staging', s: 'staging', c: long })).toThrow(
      `retry button value over ${MAX_BUTTON_VALUE} characters`,
    );
  });

  it('refuses to encode a payload that does not match its schema', () => {
    // @ts-expect-error the action id types the payload: rollback takes no pipeline and a numeric version
    expect(() => encodeAction('rollback', { p: 'shop', a: 'shop', v: 'v3' })).toThrow();
    expect(() => encodeAction('output', { a: 'shop', v: 1.5 })).toThrow();
  });

  it('builds a button whose action id and value agree', () => {
    const button = actionButton('output', examples.output, { text: { type: 'plain_text', text: 'Output' } });

    expect(button).toEqual({
      type: 'button',
      action_id: 'output',
      text: { type: 'plain_text', text: 'Output' },
      value: '{"a":"shop-staging","v":7}',
    });
  });
});
