import type { KnownBlock } from '@slack/types';
import { describe, expect, it } from 'vitest';
import { pullRequestCard, pushCard } from '../src/blocks/change-cards.ts';
import { sourceLinks } from '../src/blocks/links.ts';
import { operationMessage } from '../src/blocks/operation-message.ts';
import type { PromoteOffer, RollbackOffer, TestRunBrief } from '../src/engine/views.ts';
import { operationReport, pullRequestReport, pushReport, SHA, target } from './helpers/reports.ts';

/* Messages of operations on several apps, and GitHub text in odd places: the builders, with the fixtures of test/helpers/reports.ts. */

const links = sourceLinks('github:acme/shop', 'https://github.com');
type Button = { action_id: string; text: { text: string }; value: string };
const actionBlocks = (blocks: KnownBlock[]) => blocks.filter((b) => b.type === 'actions') as unknown as { elements: Button[] }[];
const failedOp = (targets: ReturnType<typeof target>[], overrides = {}) =>
  operationReport({ operation: { ...operationReport().operation, status: 'failed' }, ...overrides }, targets);
const offer: PromoteOffer = { downstream: 'production', apps: ['shop'], ahead: 2, commits: [], first: false, base: 'b'.repeat(40) };
const rollback = (app: string): RollbackOffer => ({
  from: { app, version: 5, commit: SHA },
  to: { app, version: 4, commit: 'b'.repeat(40) },
  ahead: 1,
  commits: [],
});
const failedRun: TestRunBrief = { number: 5, status: 'failed', commit: SHA, branch: 'feature/search', output: 'FAIL', latest: true };

describe('buttons of an operation with several apps', () => {
  // Slack refuses a message (invalid_blocks) whose actions block has two elements with the same action_id;
  // the notifier then retries it on every sweep, so the message never appears at all.
  const cases = {
    'a deploy to two staging apps, both offering Promote': operationReport({}, [
      target({ app: 'shop-us-staging', promote: offer }),
      target({ app: 'shop-eu-staging', promote: offer }),
    ]),
    'a promotion to two production apps, both offering Rollback': operationReport(
      { operation: { ...operationReport().operation, kind: 'promote' } },
      [
        target({ app: 'shop-us', stage: 'production', rollback: rollback('shop-us') }),
        target({ app: 'shop-eu', stage: 'production', rollback: rollback('shop-eu') }),
      ],
    ),
    'a deploy to two apps that failed to build': failedOp([
      target({ app: 'shop-us-staging', version: null, status: 'failed', phase: 'build', current: false }),
      target({ app: 'shop-eu-staging', version: null, status: 'failed', phase: 'build', current: false }),
    ]),
  };
  for (const [name, report] of Object.entries(cases)) {
    it(`gives every button in an actions block its own action_id: ${name}`, () => {
      for (const block of actionBlocks(operationMessage(report, links).blocks)) {
        const ids = block.elements.map((e) => e.action_id);
        expect(new Set(ids).size).toBe(ids.length);
      }
    });
  }

  it('labels buttons so a reader can tell which app each acts on', () => {
    const message = operationMessage(cases['a deploy to two apps that failed to build'], links);
    const labels = actionBlocks(message.blocks).flatMap((b) => b.elements.map((e) => e.text.text));
    // Each button names its app: two "Retry" buttons would be indistinguishable.
    expect(new Set(labels).size).toBe(labels.length);
  });
});

describe('a build failure of a multi-app deploy', () => {
  const report = failedOp(
    ['shop-us-staging', 'shop-eu-staging', 'shop-ap-staging'].map((app) =>
      target({ app, version: null, status: 'failed', phase: 'build', current: false, serving: { app, version: 3, commit: SHA } }),
    ),
    { buildOutput: 'npm ERR! missing script: build' },
  );

  it('says the deploy failed in the past tense, not "Deploying … failed"', () => {
    const message = operationMessage(report, links);
    expect(message.text).not.toMatch(/^❌ Deploying /);
  });

  it('broadcasts one build failure once, not once per app (one build, one log, one ping)', () => {
    const message = operationMessage(report, links);
    expect(message.replies.filter((r) => r.broadcast)).toHaveLength(1);
  });
});

describe('a pull request that is no longer open', () => {
  for (const state of ['merged', 'closed'] as const) {
    it(`offers Re-run tests nowhere once ${state}, thread reply included`, () => {
      const card = pullRequestCard(pullRequestReport({ state, tests: failedRun }), links);
      expect(actionBlocks(card.blocks)).toEqual([]);
      // The card drops Re-run when the PR is not open; its thread reply (same key, redrawn) keeps it.
      for (const reply of card.replies) expect(actionBlocks(reply.blocks)).toEqual([]);
    });
  }
});

describe('GitHub text in code spans', () => {
  // Git allows a backtick in a branch name; `code()` in mrkdwn.ts swaps it for a look-alike, these spans do not.
  const branch = 'fix`*all*`';

  it('keeps a branch name with a backtick inside its code span on a pull request card', () => {
    const text = JSON.stringify(pullRequestCard(pullRequestReport({ branch }), links).blocks);
    expect(text).not.toContain('`fix`*all*``');
  });

  it('keeps a branch name with a backtick inside its code span on a push card', () => {
    const text = JSON.stringify(pushCard(pushReport({ branch }), links).blocks);
    expect(text).not.toContain('`fix`*all*``');
  });
});
