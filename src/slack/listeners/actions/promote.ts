import type { App } from '@slack/bolt';
import type { KnownBlock } from '@slack/types';
import { encodeAction } from '../../../blocks/actions.ts';
import { promoteDialog } from '../../../blocks/dialogs.ts';
import { mrkdwn } from '../../../blocks/mrkdwn.ts';
import { staleMessage } from '../../../blocks/result-message.ts';
import { StaleRelease } from '../../../errors.ts';
import type { SlackDeps } from '../../context.ts';
import { handleButton } from './handle-button.ts';

/** What a click or a dialog for a release that has moved on is told: what runs now, and a button to promote that instead. */
export function promoteInstead(err: StaleRelease, pipeline: string): { text: string; blocks: KnownBlock[] } {
  const now = err.current;
  return staleMessage(mrkdwn`${err.message} Nothing was promoted. Promote v${now.version} instead?`, {
    action: 'promote',
    label: err.downstream ? `Promote to ${err.downstream}` : 'Promote',
    value: encodeAction('promote', { p: pipeline, a: now.app, v: now.version }),
  });
}

/**
 * **Promote** on a release message or the board: opens the promote dialog
 * for the release the button was shown for (permission checked first), or, if
 * the app has moved on, says what runs now and offers to promote that instead.
 */
export function register(app: App, deps: SlackDeps): void {
  handleButton(app, deps, 'promote', async ({ actor, payload: { p, a, v }, reply, triggerId, channel }) => {
    let preview;
    try {
      preview = await deps.engine.promotePreview(actor, { pipeline: p, fromApp: a, ifVersion: v });
    } catch (err) {
      if (!(err instanceof StaleRelease)) throw err;
      await reply(promoteInstead(err, p));
      return;
    }
    await deps.api.call((web) => web.views.open({ trigger_id: triggerId, view: promoteDialog(preview, channel) }));
  });
}
