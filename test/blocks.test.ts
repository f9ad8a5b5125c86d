import { promoteDialog } from '../src/blocks/dialogs.ts';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { MAX_BLOCKS_HOME, MAX_BUTTON_VALUE, MAX_CONFIRM_TEXT, MAX_TEXT } from '../src/blocks/limits.ts';
import type { KnownBlock } from '@slack/types';
import { promoteSummary } from '../src/blocks/buttons.ts';
import { pullRequestCard, pushCard } from '../src/blocks/change-cards.ts';
import { sourceLinks } from '../src/blocks/links.ts';
import type { PromoteOffer } from '../src/engine/views.ts';
import { operationReport, pullRequestReport, pushReport, SHA, target } from './helpers/reports.ts';
import { operationMessage } from '../src/blocks/operation-message.ts';
import { homeView, pipelineMessage, UNSANDBOXED_WARNING, type BoardPipeline } from '../src/blocks/pipeline-board.ts';
import { asSlashCommands } from '../src/slack/listeners/commands/flow.ts';

const commit = (i: number) => ({
  sha: `${i}`.padStart(40, 'a'),
  date: '2026-11-01T00:00:00Z',
  author: 'Dana Dev',
  message: `Change number ${i} with a fairly long commit message`,
});
const release = (version: number) => ({
  version,
  status: 'succeeded' as const,
  description: 'Deploy',
  slug: 's',
  commit: 'f'.repeat(40),
  createdAt: '2026-11-22T10:00:00Z',
  current: true,
});

function pipeline(name: string, apps = 2): BoardPipeline {
  return {
    name,
    canDeploy: true,
    apps: Array.from({ length: apps }, (_, i) => ({
      name: `${name}-${i}`,
      pipeline: name,
      stage: i % 2 ? ('production' as const) : ('staging' as const),
      platform: 'local' as const,
      url: null,
      release: release(i + 1),
    })),
  };
}

const links = sourceLinks('github:acme/shop', 'https://github.com');
const offer = (ahead: number, first = false): PromoteOffer => ({
  downstream: 'production',
  apps: ['shop'],
  ahead,
  commits: Array.from({ length: Math.min(ahead, 10) }, (_, i) => commit(i)),
  first,
  base: first ? null : 'b'.repeat(40),
});
type Actions = {
  elements: { action_id: string; value: string; style?: string; text: { text: string }; confirm: { text: { text: string } } }[];
};
const actionsOf = (blocks: KnownBlock[]) => (blocks.find((b) => b.type === 'actions') as Actions | undefined)?.elements ?? [];

describe('Block Kit builders keep within Slack limits', () => {
  it('lists what a promotion ships in the confirm dialog within 300 characters', () => {
    const { text } = promoteSummary(offer(40));

    expect(text.length).toBeLessThanOrEqual(MAX_CONFIRM_TEXT);
    expect(text).toMatch(/^Ships 40 commits to production:\n• aaaaaaa Change number 0/);
    expect(text).toMatch(/…and \d+ more$/);
  });

  it('says a promotion into an empty stage is its first release, never "nothing new"', () => {
    expect(promoteSummary(offer(3, true)).text).toMatch(/^First release to production: ships 3 commits:/);
  });

  it('puts one primary Promote (which opens the promote dialog) on a live staging release, links the app and the commit, and names no internal id', () => {
    const longName = 'p'.repeat(30);
    const message = operationMessage(
      operationReport({}, [target({ app: `${longName}-staging`, promote: offer(2), output: 'migrated' })]),
      links,
    );

    const buttons = actionsOf(message.blocks);
    expect(buttons.map((e) => [e.action_id, e.style])).toEqual([
      ['promote', 'primary'],
      ['output', undefined],
    ]);
    expect(buttons[0]!.text.text).toBe('Promote to production');
    expect(buttons[0]!.value.length).toBeLessThanOrEqual(MAX_BUTTON_VALUE);
    expect(buttons[0]!.confirm).toBeUndefined();
    // The dialog it opens says what the promotion ships.
    const dialog = promoteDialog(
      { pipeline: 'shop', from: { app: `${longName}-staging`, version: 4, commit: SHA }, offer: offer(2), approvals: 0, locks: [] },
      'CDEPLOY',
    );
    expect(JSON.stringify(dialog.blocks)).toContain('Ships 2 commits to production');
    expect(dialog.private_metadata!.length).toBeLessThanOrEqual(3000);
    expect(dialog.title.text.length).toBeLessThanOrEqual(24);
    expect(message.text).toBe(`✅ ${longName}-staging v4 is live`);
    const text = JSON.stringify(message.blocks);
    expect(text).toContain(`*<http://shop-staging.localhost:5000|${longName}-staging v4> is live*`);
    expect(text).toContain(`<https://github.com/acme/shop/commit/${SHA}|\`ccccccc\`> Add search`);
    expect(text).toContain('Started by <@UADA> · 42s');
    expect(text).not.toContain('41');
  });

  it('says what a running operation is doing now, in the message and its fallback text, with no placeholder', () => {
    const running = operationReport(
      {
        operation: { ...operationReport().operation, status: 'running' },
        step: 'Running release phase for shop-staging v4...',
        endedAt: null,
      },
      [target({ status: 'pending', current: false })],
    );

    const message = operationMessage(running, links);

    expect(message.text).toBe('🚀 Deploying ccccccc to shop-staging: Running release phase for shop-staging v4');
    expect(JSON.stringify(message.blocks)).toContain(':hourglass_flowing_sand: Running release phase for shop-staging v4…');
    expect(JSON.stringify(message.blocks)).not.toMatch(/ - |`-`/);
  });

  it('says what a failed release phase broke and what still serves, and asks its person in a broadcast reply', () => {
    const failed = target({
      status: 'failed',
      current: false,
      phase: 'release',
      error: 'release phase exited with 1',
      output: `${'noise\n'.repeat(5000)}migration 7: relation "users" already exists\n`,
      serving: { app: 'shop-staging', version: 3, commit: 'b'.repeat(40) },
    });
    const message = operationMessage(operationReport({ operation: { ...operationReport().operation, status: 'failed' } }, [failed]), links);

    expect(message.text).toBe('❌ shop-staging v4 failed in the release phase — v3 still serving');
    expect(JSON.stringify(message.blocks)).toContain(':x: *shop-staging v4 failed in the release phase* — v3 still serving');
    expect(actionsOf(message.blocks).map((e) => e.action_id)).toEqual(['retry', 'output']);
    expect(message.replies).toHaveLength(1);
    const reply = message.replies[0]!;
    expect(reply.broadcast).toBe(true);
    expect(JSON.stringify(reply.blocks)).toContain('<@UADA> :x: *shop-staging v4 failed in the release phase — v3 still serving*');
    expect(JSON.stringify(reply.blocks)).toContain('migration 7: relation \\"users\\" already exists');
    for (const block of reply.blocks) expect(JSON.stringify(block).length).toBeLessThan(MAX_TEXT + 200);
  });

  it('keeps a pull request card with a huge title and a push card with a long subject within Block Kit limits', () => {
    const pr = pullRequestCard(pullRequestReport({ title: 'x'.repeat(10_000), branch: 'b'.repeat(255) }), links);
    const push = pushCard(pushReport({ subject: 'y'.repeat(10_000) }), links);

    for (const card of [pr, push]) {
      expect(card.text.length).toBeLessThanOrEqual(300);
      for (const block of card.blocks) expect(JSON.stringify(block).length).toBeLessThan(MAX_TEXT + 200);
    }
  });

  it('summarizes a board that would pass the Home tab’s 100 blocks', () => {
    const view = homeView(Array.from({ length: 60 }, (_, i) => pipeline(`pipe-${i}`)));

    expect(view.blocks.length).toBeLessThanOrEqual(MAX_BLOCKS_HOME);
    expect(JSON.stringify(view.blocks.at(-1))).toMatch(/…and \d+ more pipelines/);
  });

  it('keeps a pipeline with many apps within a message’s 50 blocks and every text within 3000 characters', () => {
    const message = pipelineMessage(pipeline('huge', 80));

    expect(message.blocks.length).toBeLessThanOrEqual(50);
    for (const block of message.blocks) expect(JSON.stringify(block).length).toBeLessThan(MAX_TEXT);
  });

  it('warns on the board of a server that runs repository code unsandboxed, and only there', () => {
    const board = (unsandboxed: boolean) =>
      JSON.stringify(pipelineMessage({ name: 'shop', apps: [], canDeploy: true, unsandboxed }).blocks);

    expect(board(true)).toContain(UNSANDBOXED_WARNING.text);
    expect(board(false)).not.toContain('unsandboxed');
  });

  it('writes suggested commands as /flow commands', () => {
    expect(asSlashCommands('`promote shop` needs deploy on shop; ask: `access:add shop vic deploy`. `banana` stays')).toBe(
      '`/flow promote shop` needs deploy on shop; ask: `/flow access:add shop vic deploy`. `banana` stays',
    );
  });
});

describe('manifest.yml', () => {
  const manifest = parse(readFileSync(path.resolve(import.meta.dirname, '../manifest.yml'), 'utf8'));

  it('installs the /flow command, interactivity and the Home tab, with only the scopes flowops uses', () => {
    expect(manifest.features.slash_commands.map((c: { command: string }) => c.command)).toEqual(['/flow']);
    expect(manifest.features.slash_commands[0].should_escape).toBe(true);
    expect(manifest.features.app_home.home_tab_enabled).toBe(true);
    // Direct messages (nudges, answers to App Home clicks) show in a Messages tab nobody needs to write in.
    expect(manifest.features.app_home).toMatchObject({ messages_tab_enabled: true, messages_tab_read_only_enabled: true });
    expect(manifest.settings.interactivity.is_enabled).toBe(true);
    expect(manifest.settings.event_subscriptions.bot_events).toEqual(['app_home_opened']);
    expect(manifest.oauth_config.scopes.bot).toEqual(['commands', 'chat:write', 'files:write']);
    for (const url of [
      manifest.features.slash_commands[0].url,
      manifest.settings.interactivity.request_url,
      manifest.settings.event_subscriptions.request_url,
    ]) {
      expect(url).toMatch(/\/slack\/events$/);
    }
  });
});
