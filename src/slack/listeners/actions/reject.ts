import type { App } from '@slack/bolt';
import { rejectDialog } from '../../../blocks/dialogs.ts';
import { mrkdwn } from '../../../blocks/mrkdwn.ts';
import { noticeMessage } from '../../../blocks/result-message.ts';
import type { SlackDeps } from '../../context.ts';
import { handleButton } from './handle-button.ts';

/** **Reject** on a request's message: opens the dialog that asks why, while the request still waits. */
export function register(app: App, deps: SlackDeps): void {
  handleButton(app, deps, 'reject', async ({ actor, payload: { i }, reply, triggerId, channel }) => {
    const request = await deps.engine.approval(actor, i);
    if (request.status !== 'pending') {
      await reply(noticeMessage(mrkdwn`:information_source: Request ${i} is ${request.status} already; nothing to reject.`));
      return;
    }
    await deps.api.call((web) => web.views.open({ trigger_id: triggerId, view: rejectDialog(request, channel) }));
  });
}
