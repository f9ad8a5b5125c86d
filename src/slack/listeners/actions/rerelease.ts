import type { App } from '@slack/bolt';
import { mrkdwn } from '../../../blocks/mrkdwn.ts';
import { noticeMessage } from '../../../blocks/result-message.ts';
import { StaleRelease } from '../../../errors.ts';
import type { SlackDeps } from '../../context.ts';
import { handleButton } from './handle-button.ts';

/**
 * **Re-release vN** on a rollback's message: releases the version the rollback
 * went back from again, only if the app still runs the release the button was
 * shown on; otherwise says what runs now.
 */
export function register(app: App, deps: SlackDeps): void {
  handleButton(app, deps, 'rerelease', async ({ actor, payload: { a, v, c }, reply, follow }) => {
    let operation;
    try {
      operation = await deps.engine.rollback(actor, a, v, { ifCurrent: c, again: true });
    } catch (err) {
      if (!(err instanceof StaleRelease)) throw err;
      await reply(noticeMessage(mrkdwn`:warning: ${err.message} Nothing was released; see \`/flow releases ${a}\`.`));
      return;
    }
    await follow(operation);
  });
}
