import type { App } from '@slack/bolt';
import { mrkdwn } from '../../../blocks/mrkdwn.ts';
import { noticeMessage } from '../../../blocks/result-message.ts';
import type { SlackDeps } from '../../context.ts';
import { handleView } from './handle-view.ts';

/** The reject dialog, submitted: rejects the request with the reason given (deploy, or its requester withdrawing it). */
export function register(app: App, deps: SlackDeps): void {
  handleView(
    app,
    deps,
    'reject_request',
    (values) => (values.reason?.reason?.value?.trim() ? null : { reason: 'Say why: the requester and the channel read it.' }),
    async ({ actor, meta: { i }, values, reply }) => {
      const request = await deps.engine.reject(actor, i, values.reason?.reason?.value ?? undefined);
      await reply(noticeMessage(mrkdwn`:no_entry: ${request.status === 'withdrawn' ? 'Withdrawn' : 'Rejected'}: ${request.description}.`));
    },
  );
}
