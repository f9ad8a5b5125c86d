import { describe, expect, it } from 'vitest';
import type { KnownBlock } from '@slack/types';
import { promoteButton, promoteSummary } from '../src/blocks/buttons.ts';
import { pullRequestCard, pushCard } from '../src/blocks/change-cards.ts';
import { sourceLinks } from '../src/blocks/links.ts';
import { feedEventMessage } from '../src/blocks/feed-message.ts';
import { MAX_CONFIRM_TEXT, MAX_TEXT } from '../src/blocks/limits.ts';
import { codeBlock, escapeMrkdwn, link, mrkdwn, truncateMrkdwn } from '../src/blocks/mrkdwn.ts';
import { operationMessage } from '../src/blocks/operation-message.ts';
import { homeView, pipelineMessage } from '../src/blocks/pipeline-board.ts';
import { errorMessage, staleMessage, textMessage } from '../src/blocks/result-message.ts';
import type { FlowEvent } from '../src/db/entities.ts';
import { operationReport, pullRequestReport, pushReport, target } from './helpers/reports.ts';

const NO_LINKS = sourceLinks(null, null);

/** Text a pull request, a commit or a release phase can put in front of flowops. */
const HOSTILE = [
  ['a channel ping and a lying link', '<!channel> <https://evil|Open the review app>'],
  ['a user mention', 'hi <@U123ADMIN> please approve'],
  ['a user group ping', '<!subteam^S0614TZR7|@oncall> wake up'],
  ['a channel link', 'see <#C0123|general>'],
  ['a pre-escaped entity', '&lt;!here&gt; looks harmless'],
  ['a link split by a code fence', '```<!here>``` <http://x|y>'],
] as const;

/** Every piece of mrkdwn a message carries: block texts, context elements, confirm dialogs, and the fallback text. */
function mrkdwnTexts(message: { text?: string; blocks: KnownBlock[] }): string[] {
  const found: string[] = message.text !== undefined ? [message.text] : [];
  JSON.stringify(message.blocks, (_key, value: unknown) => {
    if (value && typeof value === 'object' && (value as { type?: string }).type === 'mrkdwn') found.push((value as { text: string }).text);
    return value;
  });
  return found;
}

const OUR_LINK = '<http://shop-pr-7.localhost:5000|Open the review app>';

/** Slack's control sequences: `<` starts a mention or link, `&` an entity. Apart from our escapes and the link flowops made, there must be none. */
function markupIn(text: string): string[] {
  return [
    ...text
      .replaceAll(OUR_LINK, '')
      .replace(/&(amp|lt|gt);/g, '')
      .matchAll(/<[^>]*>?|&/g),
  ].map((m) => m[0]);
}

const event = (type: string, message: string, data: Record<string, unknown> = {}): FlowEvent =>
  ({
    id: '1',
    type,
    pipeline: 'shop',
    app: null,
    operationId: null,
    actor: null,
    via: 'github',
    message,
    data,
    createdAt: new Date(),
  }) as unknown as FlowEvent;

describe('untrusted text in Block Kit mrkdwn', () => {
  it('escapes &, < and > as Slack documents, and nothing else', () => {
    expect(escapeMrkdwn('a & b <!channel> *bold* _it_ `code` :x:')).toBe('a &amp; b &lt;!channel&gt; *bold* _it_ `code` :x:');
  });

  it('escapes the template too, and keeps a link it was given', () => {
    const m = mrkdwn`*${'<b>'}* runs \`apps:create <app>\` ${link('http://shop.localhost:5000/?a=1&b=2', 'Open <it>')}`;

    expect(m.text).toBe('*&lt;b&gt;* runs `apps:create &lt;app&gt;` <http://shop.localhost:5000/?a=1&amp;b=2|Open &lt;it&gt;>');
  });

  it('links only http(s) URLs, and a | in the URL cannot start a label of its own', () => {
    expect(link('javascript:alert(1)', 'x').text).toBe('x');
    expect(link('https://ok.example/a|<!channel>', 'x').text).toBe('<https://ok.example/a%7C&lt;!channel&gt;|x>');
  });

  it('never cuts inside an escape or a link when it truncates', () => {
    expect(truncateMrkdwn(mrkdwn`${'a'.repeat(8)}<`, 10).text).toBe(`${'a'.repeat(8)}…`);
    expect(truncateMrkdwn(mrkdwn`ab ${link('https://x.example/long/path', 'label')}`, 12).text).toBe('ab …');
  });

  it('keeps the end of a long output, starting on a whole escape', () => {
    const block = codeBlock(`${'x'.repeat(5000)}<!here> the error`, 100, 'end');

    expect(block.text.length).toBeLessThanOrEqual(100);
    expect(block.text).toMatch(/^```….*&lt;!here&gt; the error```$/);
    expect(markupIn(block.text)).toEqual([]);
  });

  it.each(HOSTILE)('renders %s as text in every builder', (_, hostile) => {
    const commit = { sha: 'a'.repeat(40), date: '2026-11-01T00:00:00Z', author: hostile, message: hostile };
    const offer = { downstream: 'production' as const, apps: [hostile], ahead: 1, commits: [commit], first: false, base: 'b'.repeat(40) };
    const person = { name: hostile, slackUser: hostile, via: 'github' };
    const failed = target({
      app: hostile,
      status: 'failed',
      error: hostile,
      output: `migrating...\n${hostile}\n`,
      url: null,
      serving: { app: hostile, version: 1, commit: null },
    });
    const live = target({
      app: hostile,
      url: null,
      promote: offer,
      fate: { kind: 'promoted', by: person, to: [{ app: hostile, version: 2, commit: null }] },
    });
    const report = operationReport(
      {
        operation: { ...operationReport().operation, pipeline: hostile, status: 'failed', description: hostile, error: hostile },
        actor: person,
        details: { commit: { sha: 'a'.repeat(40), subject: hostile, author: hostile } },
      },
      [failed, live],
    );
    const run = { number: 3, status: 'failed' as const, commit: 'a'.repeat(40), branch: hostile, output: hostile, latest: true };
    const app = {
      name: hostile,
      pipeline: hostile,
      stage: 'staging' as const,
      platform: 'local' as const,
      url: null,
      release: {
        version: 2,
        status: 'succeeded' as const,
        description: hostile,
        slug: 's',
        commit: 'f'.repeat(40),
        createdAt: '2026-11-22T10:00:00Z',
        current: true,
      },
    };
    const op = operationMessage(report, NO_LINKS);
    const pr = pullRequestCard(
      pullRequestReport({
        title: hostile,
        author: hostile,
        branch: hostile,
        tests: run,
        reviewApp: { app: hostile, status: 'errored', url: null, error: hostile, deploying: false },
      }),
      NO_LINKS,
    );
    const push = pushCard(
      pushReport({ subject: hostile, pusher: hostile, branch: hostile, tests: run, autodeployNote: hostile }),
      NO_LINKS,
    );
    const messages: { text?: string; blocks: KnownBlock[] }[] = [
      op,
      ...op.replies,
      pr,
      ...pr.replies,
      push,
      ...push.replies,
      feedEventMessage(event('github.status_refused', `GitHub refused the status of aaaaaaa: ${hostile}`)),
      pipelineMessage({ name: hostile, canDeploy: true, apps: [{ ...app, promote: offer }] }),
      homeView([{ name: hostile, canDeploy: true, apps: [app] }]),
      textMessage(`v2 ${hostile} (failed)\n${hostile}`),
      errorMessage(`"${hostile}" is not a flowops command`),
      staleMessage(mrkdwn`${hostile} has moved on`, { action: 'promote', label: 'Promote to production', value: '{}' }),
      {
        blocks: [
          {
            type: 'section',
            text: { type: 'mrkdwn', text: 'x' },
            accessory: promoteButton({ pipeline: 'shop', app: 'shop-staging', version: 2, offer }),
          },
        ],
      },
    ];

    const texts = messages.flatMap(mrkdwnTexts).filter((t) => t !== 'x');

    expect(texts.length).toBeGreaterThan(15);
    for (const text of texts) expect({ text, markup: markupIn(text) }).toEqual({ text, markup: [] });
    expect(texts.join('\n')).toContain(escapeMrkdwn(hostile));
  });

  it('links the review app, and only it, on its pull request card', () => {
    const card = pullRequestCard(
      pullRequestReport({
        title: '<!channel>',
        reviewApp: { app: 'shop-pr-7', status: 'created', url: 'http://shop-pr-7.localhost:5000', error: null, deploying: false },
      }),
      NO_LINKS,
    );

    const text = (card.blocks[0] as { text: { text: string } }).text.text;
    expect(text).toContain(':arrow_heading_up: #7 &lt;!channel&gt;\n');
    expect(text).toContain(':eyes: Review app <http://shop-pr-7.localhost:5000|shop-pr-7> is up');
    expect(markupIn(text.replace('<http://shop-pr-7.localhost:5000|shop-pr-7>', ''))).toEqual([]);
  });

  it('counts the confirm dialog’s 300 characters after escaping', () => {
    const commits = Array.from({ length: 20 }, (_, i) => ({
      sha: `${i}`.padStart(40, 'a'),
      date: '',
      author: '<&>',
      message: '<<<<>>>>&&&&',
    }));

    const summary = promoteSummary({ downstream: 'production', apps: ['shop'], ahead: 20, commits, first: false, base: null }).text;

    expect(summary.length).toBeLessThanOrEqual(MAX_CONFIRM_TEXT);
    expect(markupIn(summary)).toEqual([]);
  });

  it('keeps an escaped text object within 3000 characters', () => {
    const message = errorMessage('<'.repeat(MAX_TEXT));

    const text = (message.blocks[0] as { text: { text: string } }).text.text;
    expect(text.length).toBeLessThanOrEqual(MAX_TEXT);
    expect(text).toMatch(/(&lt;)+…$/);
  });
});
