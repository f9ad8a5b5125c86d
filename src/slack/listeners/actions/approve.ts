import type { App } from '@slack/bolt';
import { mrkdwn } from '../../../blocks/mrkdwn.ts';
import { noticeMessage } from '../../../blocks/result-message.ts';
import type { SlackDeps } from '../../context.ts';
import { handleButton } from './handle-button.ts';

/**
 * **Approve** on a request's message: the engine checks the clicker has
 * deploy and is not the requester; with its last approval the request ships
 * at once, and its message becomes the operation's.
 */
export function register(app: App, deps: SlackDeps): void {
  handleButton(app, deps, 'approve', async ({ actor, payload: { i }, reply }) => {
    const request = await deps.engine.approve(actor, i);
    const left = request.needed - request.approvals.length;
    await reply(
      noticeMessage(
        request.status === 'shipped'
          ? mrkdwn`:white_check_mark: Approved: ${request.description} is shipping now.`
          : request.status === 'failed'
            ? mrkdwn`:x: Approved, but it did not start: ${request.reason ?? ''}`
            : mrkdwn`:white_check_mark: Approved: ${left} more approval${left === 1 ? '' : 's'} needed.`,
      ),
    );
  });
}
