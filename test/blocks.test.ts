import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { MAX_BLOCKS_HOME, MAX_BUTTON_VALUE, MAX_CONFIRM_TEXT, MAX_TEXT } from '../src/blocks/limits.ts';
import { commitsSummary } from '../src/blocks/buttons.ts';
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
      url: null,
      release: release(i + 1),
    })),
  };
}

describe('Block Kit builders keep within Slack limits', () => {
  it('lists what a promotion ships in the confirm dialog within 300 characters', () => {
    const { text } = commitsSummary(
      40,
      Array.from({ length: 40 }, (_, i) => commit(i)),
      'production',
    );

    expect(text.length).toBeLessThanOrEqual(MAX_CONFIRM_TEXT);
    expect(text).toMatch(/^Ships 40 commits to production:\n• aaaaaaa Change number 0/);
    expect(text).toMatch(/…and \d+ more$/);
  });

  it('says when a promotion ships nothing new', () => {
    expect(commitsSummary(0, [], 'production').text).toBe('Nothing new: production already runs these commits.');
  });

  it('puts Promote (with its confirm) on a staging release and keeps button values under 255 characters', () => {
    const longName = 'p'.repeat(30);
    const message = operationMessage({
      operation: {
        id: 7,
        kind: 'deploy',
        pipeline: longName,
        status: 'succeeded',
        description: 'Deploy abc',
        targets: [],
        error: null,
        createdAt: '',
      },
      pipeline: longName,
      actor: 'ada',
      via: 'slack',
      targets: [{ app: `${longName}-staging`, stage: 'staging', version: 3, commit: 'c'.repeat(40), status: 'succeeded', releasing: true }],
      promote: { app: `${longName}-staging`, version: 3, downstream: 'production', ahead: 2, commits: [commit(1), commit(2)] },
    });

    const actions = message.blocks.find((b) => b.type === 'actions') as {
      elements: { action_id: string; value: string; confirm: { text: { text: string } } }[];
    };
    expect(actions.elements.map((e) => e.action_id)).toEqual(['promote']);
    expect(actions.elements[0]!.value.length).toBeLessThanOrEqual(MAX_BUTTON_VALUE);
    expect(actions.elements[0]!.confirm.text.text).toContain('Ships 2 commits to production');
  });

  it('offers Retry and Output on a failed release phase', () => {
    const message = operationMessage({
      operation: {
        id: 8,
        kind: 'deploy',
        pipeline: 'shop',
        status: 'failed',
        description: 'Deploy abc',
        targets: [],
        error: null,
        createdAt: '',
      },
      pipeline: 'shop',
      actor: 'ada',
      via: 'cli',
      targets: [
        {
          app: 'shop-staging',
          stage: 'staging',
          version: 4,
          commit: 'c'.repeat(40),
          status: 'failed',
          releasing: true,
          error: 'release phase exited with 1',
        },
      ],
      failed: { app: 'shop-staging', version: 4, stage: 'staging', commit: 'c'.repeat(40) },
    });

    expect(JSON.stringify(message.blocks)).toContain(':x: *shop-staging* (staging) v4 `ccccccc` failed: release phase exited with 1');
    expect(
      (message.blocks.find((b) => b.type === 'actions') as { elements: { action_id: string }[] }).elements.map((e) => e.action_id),
    ).toEqual(['retry', 'output']);
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
    expect(manifest.settings.interactivity.is_enabled).toBe(true);
    expect(manifest.settings.event_subscriptions.bot_events).toEqual(['app_home_opened']);
    expect(manifest.oauth_config.scopes.bot).toEqual(['commands', 'chat:write']);
    for (const url of [
      manifest.features.slash_commands[0].url,
      manifest.settings.interactivity.request_url,
      manifest.settings.event_subscriptions.request_url,
    ]) {
      expect(url).toMatch(/\/slack\/events$/);
    }
  });
});
