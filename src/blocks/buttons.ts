import type { Button } from '@slack/types';
import type { Commit } from '../source/source.ts';
import { actionButton } from './actions.ts';
import { MAX_CONFIRM_TEXT, truncate } from './limits.ts';
import { mrkdwn, mrkdwnText, truncateMrkdwn, type Mrkdwn } from './mrkdwn.ts';

/** What a promotion would ship, for the confirm dialog (Block Kit allows 300 characters, counted after escaping). */
export function commitsSummary(ahead: number, commits: Commit[], downstream: string): Mrkdwn {
  if (ahead === 0) return mrkdwn`Nothing new: ${downstream} already runs these commits.`;
  let text = mrkdwn`Ships ${ahead} commit${ahead === 1 ? '' : 's'} to ${downstream}:`;
  for (const [i, commit] of commits.entries()) {
    const line = mrkdwn`• ${commit.sha.slice(0, 7)} ${commit.message} (${commit.author})`;
    const rest = ahead - i - 1;
    const more = rest > 0 ? mrkdwn`\n…and ${rest} more` : mrkdwn``;
    if (mrkdwn`${text}\n${line}${more}`.text.length > MAX_CONFIRM_TEXT)
      return truncateMrkdwn(mrkdwn`${text}\n…and ${ahead - i} more`, MAX_CONFIRM_TEXT);
    text = mrkdwn`${text}\n${line}`;
  }
  return text;
}

/** **Promote to <downstream>**, confirmed with the commits it ships. The value names the release it was shown for. */
export function promoteButton(p: {
  pipeline: string;
  app: string;
  version: number;
  downstream: string;
  ahead: number;
  commits: Commit[];
}): Button {
  return actionButton(
    'promote',
    { p: p.pipeline, a: p.app, v: p.version },
    {
      style: 'primary',
      text: { type: 'plain_text', text: truncate(`Promote to ${p.downstream}`, 75) },
      confirm: {
        title: { type: 'plain_text', text: truncate(`Promote ${p.app} v${p.version}?`, 100) },
        text: mrkdwnText(commitsSummary(p.ahead, p.commits, p.downstream), MAX_CONFIRM_TEXT),
        confirm: { type: 'plain_text', text: 'Promote' },
        deny: { type: 'plain_text', text: 'Cancel' },
      },
    },
  );
}

/** **Rollback**, confirmed. The value names the release it was shown for. */
export function rollbackButton(r: { app: string; version: number }): Button {
  return actionButton(
    'rollback',
    { a: r.app, v: r.version },
    {
      style: 'danger',
      text: { type: 'plain_text', text: 'Rollback' },
      confirm: {
        title: { type: 'plain_text', text: truncate(`Roll back ${r.app}?`, 100) },
        text: mrkdwnText(mrkdwn`This releases the release before v${r.version} again, with its slug and config vars.`),
        confirm: { type: 'plain_text', text: 'Roll back' },
        deny: { type: 'plain_text', text: 'Cancel' },
      },
    },
  );
}
