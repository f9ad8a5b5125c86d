import type { App } from '@slack/bolt';
import { encodeAction } from '../../../blocks/actions.ts';
import { mrkdwn } from '../../../blocks/mrkdwn.ts';
import { staleMessage } from '../../../blocks/result-message.ts';
import { StaleRelease } from '../../../errors.ts';
import type { SlackDeps } from '../../context.ts';
import { handleButton } from './handle-button.ts';

/**
 * **Rollback** on a production release: rolls back only if the app still runs
 * the release the button was shown for; otherwise says what runs now and
 * offers to roll that back instead.
 */
export function register(app: App, deps: SlackDeps): void {
  handleButton(app, deps, 'rollback', async ({ actor, payload: { a, v }, reply, follow }) => {
    let operation;
    try {
      operation = await deps.engine.rollback(actor, a, undefined, { ifCurrent: v });
    } catch (err) {
      if (!(err instanceof StaleRelease)) throw err;
      const now = err.current;
      await reply(
        staleMessage(mrkdwn`${err.message}`, {
          action: 'rollback',
          label: `Roll back v${now.version}`,
          value: encodeAction('rollback', { a: now.app, v: now.version }),
        }),
      );
      return;
    }
    await follow(operation);
  });
}
