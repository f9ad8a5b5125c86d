import type { KnownBlock } from '@slack/types';
import type { EventView as FlowEvent } from '../engine/views.ts';
import { restartButton } from './buttons.ts';
import { code, codeBlock, contextBlock, mrkdwn, section, slackMessage } from './mrkdwn.ts';

/**
 * A one-off line in a pipeline's feed for an event no message follows: GitHub
 * refused a commit status or a deployment for good; a deploy lock taken,
 * ended, expired or shipped through with --force. (Test runs, pull requests
 * and pushes have messages of their own: src/blocks/change-cards.ts.) The
 * event's message quotes what GitHub answered, or a lock's reason: text, never markup.
 */
export function feedEventMessage(event: FlowEvent): { text: string; blocks: KnownBlock[] } {
  const pipeline = event.pipeline ?? '';
  if (event.type === 'dyno.crashed') return crashMessage(event, pipeline);
  const [emoji, icon] = ICONS[event.type] ?? ['⚠️', ':warning:'];
  return slackMessage(mrkdwn`${emoji} ${pipeline}: ${event.message}`, [section(mrkdwn`${icon} *${pipeline}*: ${event.message}`)]);
}

/**
 * A dyno that crashed: one message per crash episode, with the last lines it
 * printed and **Restart** (deploy is checked on the click); the dyno manager
 * restarts it anyway, at once and then with a growing back-off.
 */
function crashMessage(event: FlowEvent, pipeline: string): { text: string; blocks: KnownBlock[] } {
  const data = event.data as { dyno?: unknown; lines?: unknown };
  const dyno = typeof data.dyno === 'string' ? data.dyno : '';
  const lines = Array.isArray(data.lines) ? data.lines.filter((l): l is string => typeof l === 'string') : [];
  const blocks: KnownBlock[] = [
    section(mrkdwn`:boom: *${pipeline}*: ${event.message}. flowops restarts it, at once and then backing off up to 5 minutes.`),
  ];
  if (lines.length) blocks.push(section(codeBlock(lines.join('\n'), 2500, 'end')));
  if (event.app && dyno) blocks.push({ type: 'actions', elements: [restartButton(event.app, dyno)] });
  blocks.push(contextBlock(mrkdwn`${code(`/flow logs ${event.app ?? ''}`)} · ${code(`/flow ps ${event.app ?? ''}`)}`));
  return slackMessage(mrkdwn`💥 ${pipeline}: ${event.message}`, blocks);
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
