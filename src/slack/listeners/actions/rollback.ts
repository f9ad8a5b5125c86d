import type { App } from '@slack/bolt';
import { mrkdwn } from '../../../blocks/mrkdwn.ts';
import { noticeMessage } from '../../../blocks/result-message.ts';
import { StaleRelease } from '../../../errors.ts';
import type { SlackDeps } from '../../context.ts';
import { handleButton } from './handle-button.ts';

/**
 * **Rollback** on a production release: rolls back only if the app still runs
 * the release the button was shown for; otherwise says what runs now and
 * does nothing (what a rollback would take away has changed: the current
 * release's own message offers the right one).
 */
export function register(app: App, deps: SlackDeps): void {
  handleButton(app, deps, 'rollback', async ({ actor, payload: { a, v }, reply, follow }) => {
    let operation;
    try {
      operation = await deps.engine.rollback(actor, a, undefined, { ifCurrent: v });
    } catch (err) {
      if (!(err instanceof StaleRelease)) throw err;
      await reply(noticeMessage(mrkdwn`:warning: ${err.message} Nothing was rolled back; see \`/flow releases ${a}\`.`));
      return;
    }
    await follow(operation);
  });
}
