import type { KnownBlock } from '@slack/types';
import type { EventView as FlowEvent } from '../engine/views.ts';
import { mrkdwn, section, slackMessage } from './mrkdwn.ts';

/**
 * A one-off line in a pipeline's feed for an event no message follows: GitHub
 * refused a commit status or a deployment for good; a deploy lock taken,
 * ended, expired or shipped through with --force. (Test runs, pull requests
 * and pushes have messages of their own: src/blocks/change-cards.ts.) The
 * event's message quotes what GitHub answered, or a lock's reason: text, never markup.
 */
export function feedEventMessage(event: FlowEvent): { text: string; blocks: KnownBlock[] } {
  const pipeline = event.pipeline ?? '';
  const [emoji, icon] = ICONS[event.type] ?? ['⚠️', ':warning:'];
  return slackMessage(mrkdwn`${emoji} ${pipeline}: ${event.message}`, [section(mrkdwn`${icon} *${pipeline}*: ${event.message}`)]);
}

const ICONS: Record<string, [string, string]> = {
  'lock.added': ['🔒', ':lock:'],
  'lock.removed': ['🔓', ':unlock:'],
  'lock.expired': ['🔓', ':unlock:'],
  'lock.overridden': ['⚠️', ':warning:'],
  'approval.bypassed': ['⚠️', ':warning:'],
  'approvals.required': ['🙋', ':raising_hand:'],
  'approvals.disabled': ['🙋', ':raising_hand:'],
};
