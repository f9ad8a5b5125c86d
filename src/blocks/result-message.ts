import type { KnownBlock } from '@slack/types';
import { MAX_TEXT, truncate } from './limits.ts';

/** A command's text result as an ephemeral Slack message: preformatted, within the text limit. */
export function textMessage(text: string): { text: string; blocks: KnownBlock[] } {
  return { text: truncate(text, 200), blocks: [{ type: 'section', text: { type: 'mrkdwn', text: '```' + truncate(text, MAX_TEXT - 6) + '```' } }] };
}

/** A refusal or an error: what went wrong and what to do next, never a stack trace. */
export function errorMessage(message: string): { text: string; blocks: KnownBlock[] } {
  return { text: truncate(message, 200), blocks: [{ type: 'section', text: { type: 'mrkdwn', text: truncate(`:no_entry: ${message}`) } }] };
}
