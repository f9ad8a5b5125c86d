import type { KnownBlock } from '@slack/types';
import type { FlowEvent } from '../db/entities.ts';
import { buttonValue, truncate } from './limits.ts';

const ICONS: Record<string, string> = {
  'testrun.succeeded': ':white_check_mark:',
  'testrun.failed': ':x:',
  'testrun.errored': ':warning:',
  'autodeploy.skipped': ':double_vertical_bar:',
  'autodeploy.failed': ':warning:',
  'pullrequest.opened': ':arrow_heading_up:',
  'pullrequest.merged': ':twisted_rightwards_arrows:',
  'pullrequest.closed': ':no_entry_sign:',
  'reviewapp.created': ':eyes:',
  'reviewapp.errored': ':warning:',
};

/**
 * A one-off line in a pipeline's feed for what is not an operation: a test
 * run's result (with **Re-run** when it failed), an auto-deploy that did not
 * happen, a pull request opened or merged, its review app up (with the link).
 */
export function feedEventMessage(event: FlowEvent): { text: string; blocks: KnownBlock[] } {
  const data = event.data as { number?: number; url?: string | null };
  const link = event.type === 'reviewapp.created' && data.url ? ` <${data.url}|Open the review app>` : '';
  const text = `${ICONS[event.type] ?? ''} *${event.pipeline}*: ${event.message}${link}`.trim();
  const section: KnownBlock = { type: 'section', text: { type: 'mrkdwn', text: truncate(text) } };
  if ((event.type === 'testrun.failed' || event.type === 'testrun.errored') && event.pipeline && data.number) {
    section.accessory = { type: 'button', action_id: 'ci_rerun', text: { type: 'plain_text', text: 'Re-run' }, value: buttonValue({ p: event.pipeline, n: data.number }) };
  }
  return { text: truncate(`${event.pipeline}: ${event.message}`, 200), blocks: [section] };
}
