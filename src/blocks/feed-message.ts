import type { KnownBlock } from '@slack/types';
import type { EventView as FlowEvent } from '../engine/views.ts';
import { mrkdwn, section, slackMessage } from './mrkdwn.ts';

/**
 * A one-off line in a pipeline's feed for an event no message follows: GitHub
 * refused a commit status or a deployment for good. (Test runs, pull requests
 * and pushes have messages of their own: src/blocks/change-cards.ts.) The
 * event's message quotes what GitHub answered: it is text, never markup.
 */
export function feedEventMessage(event: FlowEvent): { text: string; blocks: KnownBlock[] } {
  const pipeline = event.pipeline ?? '';
  return slackMessage(mrkdwn`⚠️ ${pipeline}: ${event.message}`, [section(mrkdwn`:warning: *${pipeline}*: ${event.message}`)]);
}
