import type { KnownBlock } from '@slack/types';
import type { EventView as FlowEvent } from '../engine/views.ts';
import { actionButton } from './actions.ts';
import { link, mrkdwn, section, slackMessage } from './mrkdwn.ts';

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
  'github.status_refused': ':warning:',
  'github.deployment_refused': ':warning:',
};

/**
 * A one-off line in a pipeline's feed for what is not an operation: a test
 * run's result (with **Re-run** when it failed), an auto-deploy that did not
 * happen, a pull request opened or merged, its review app up (with the link).
 * The event's message quotes PR titles, branches and authors as GitHub sent
 * them: it is text, never markup.
 */
export function feedEventMessage(event: FlowEvent): { text: string; blocks: KnownBlock[] } {
  const data = event.data as { number?: number; url?: string | null };
  const icon = ICONS[event.type];
  const pipeline = event.pipeline ?? '';
  const open = event.type === 'reviewapp.created' && data.url ? mrkdwn` ${link(data.url, 'Open the review app')}` : mrkdwn``;
  const line = icon ? mrkdwn`${icon} *${pipeline}*: ${event.message}${open}` : mrkdwn`*${pipeline}*: ${event.message}${open}`;
  const rerun =
    (event.type === 'testrun.failed' || event.type === 'testrun.errored') && event.pipeline && data.number
      ? actionButton('ci_rerun', { p: event.pipeline, n: data.number }, { text: { type: 'plain_text', text: 'Re-run' } })
      : undefined;
  return slackMessage(mrkdwn`${pipeline}: ${event.message}`, [section(line, rerun)]);
}
