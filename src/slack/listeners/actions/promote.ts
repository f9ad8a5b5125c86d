import type { App } from '@slack/bolt';
import { encodeAction } from '../../../blocks/actions.ts';
import { mrkdwn } from '../../../blocks/mrkdwn.ts';
import { staleMessage } from '../../../blocks/result-message.ts';
import { StaleRelease } from '../../../errors.ts';
import type { SlackDeps } from '../../context.ts';
import { handleButton } from './handle-button.ts';

/**
 * **Promote** on a release message or the board: promotes the release the
 * button was shown for, only if the app still runs it; otherwise says what runs
 * now and offers to promote that instead.
 */
export function register(app: App, deps: SlackDeps): void {
  handleButton(app, deps, 'promote', async ({ actor, payload: { p, a, v }, reply, follow }) => {
    let operation;
    try {
      operation = await deps.engine.promote(actor, { pipeline: p, fromApp: a, ifVersion: v });
    } catch (err) {
      if (!(err instanceof StaleRelease)) throw err;
      const now = err.current;
      await reply(
        staleMessage(mrkdwn`${err.message} Nothing was promoted. Promote v${now.version} instead?`, {
          action: 'promote',
          label: err.downstream ? `Promote to ${err.downstream}` : 'Promote',
          value: encodeAction('promote', { p, a: now.app, v: now.version }),
        }),
      );
      return;
    }
    await follow(operation);
  });
}
