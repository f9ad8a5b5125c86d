import { describe, expect, it } from 'vitest';
import { reviewAppName } from '../src/engine/review-apps.ts';
import { checkApp } from '../src/platform/kubernetes/names.ts';

const APP_NAME = /^[a-z][a-z0-9-]{2,29}$/;

describe('review app names', () => {
  it('are <pipeline>-pr-<N>, as on Heroku, when that fits in 30 characters', () => {
    expect(reviewAppName('shop', 7)).toBe('shop-pr-7');
    expect(reviewAppName('payments-gateway-for-eu', 123)).toBe('payments-gateway-for-eu-pr-123');
  });

  it('shorten a long pipeline name, never the PR number: two pull requests never share an app', () => {
    const names = [123, 124, 2_147_483_647].map((pr) => reviewAppName('payments-gateway-for-europe-x', pr));
    expect(new Set(names).size).toBe(3);
    for (const name of names) {
      expect(name).toMatch(APP_NAME);
      expect(name).toMatch(/^payments-ga[a-z-]*-[0-9a-f]{4}-pr-(123|124|2147483647)$/);
    }
  });

  it('keep two long pipelines that begin alike apart, and stay the same for one pipeline', () => {
    const a = reviewAppName('payments-gateway-for-europe-a', 5);
    const b = reviewAppName('payments-gateway-for-europe-b', 5);
    expect(a).not.toBe(b);
    expect(reviewAppName('payments-gateway-for-europe-a', 5)).toBe(a);
  });

  it('never end the shortened part in a dash, which Kubernetes refuses', () => {
    for (let at = 10; at < 29; at++) {
      const pipeline = `${'a'.repeat(at)}-${'b'.repeat(29 - at - 1)}`;
      for (const pr of [1, 12, 12345, 2_147_483_647]) {
        const name = reviewAppName(pipeline, pr);
        expect(name).toMatch(APP_NAME);
        expect(name).not.toMatch(/--/);
        expect(checkApp(name)).toBe(name);
      }
    }
  });

  it('have a marked form for a short pipeline named what a long one is shortened to (the engine picks it when the name is taken)', () => {
    const long = reviewAppName('payments-gateway-for-europe-x', 123);
    const short = long.replace(/-pr-123$/, ''); // a valid pipeline name of its own
    expect(reviewAppName(short, 123)).toBe(long);
    expect(reviewAppName(short, 123, { marked: true })).not.toBe(long);
    expect(reviewAppName(short, 123, { marked: true })).toMatch(APP_NAME);
  });
});
