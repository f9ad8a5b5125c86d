import type { KnownBlock } from '@slack/types';
import type { ActionId } from './actions.ts';
import { codeBlock, mrkdwn, section, slackMessage, type Mrkdwn } from './mrkdwn.ts';

/** A command's text result as an ephemeral Slack message: preformatted, escaped, within the text limit. */
export function textMessage(text: string): { text: string; blocks: KnownBlock[] } {
  return slackMessage(mrkdwn`${text}`, [section(codeBlock(text))]);
}

/** A refusal or an error: what went wrong and what to do next, never a stack trace. Its text quotes what was typed, so it is escaped. */
export function errorMessage(message: string): { text: string; blocks: KnownBlock[] } {
  return slackMessage(mrkdwn`${message}`, [section(mrkdwn`:no_entry: ${message}`)]);
}

/** A short ephemeral answer (a Re-run started). */
export function noticeMessage(message: Mrkdwn): { text: string; blocks: KnownBlock[] } {
  return slackMessage(message, [section(message)]);
}

/** An answer that offers the current release instead of a stale one, with the button for it. */
export function staleMessage(
  message: Mrkdwn,
  button: { action: Extract<ActionId, 'promote'>; label: string; value: string },
): { text: string; blocks: KnownBlock[] } {
  return slackMessage(message, [
    section(mrkdwn`:warning: ${message}`),
    {
      type: 'actions',
      elements: [
        {
          type: 'button',
          style: 'primary',
          action_id: button.action,
          text: { type: 'plain_text', text: button.label },
          value: button.value,
        },
      ],
    },
  ]);
}
