import type { App, BlockStaticSelectAction } from '@slack/bolt';
import { HOME_PICK } from '../../../blocks/pipeline-board.ts';
import { afterAck, type SlackDeps } from '../../context.ts';

/**
 * The App Home's pipeline picker: the picked pipeline is shown first. The
 * value is only a name to look for among what this person may see when the
 * board is built; a forged one shows nothing new.
 */
export function register(app: App, deps: SlackDeps): void {
  app.action<BlockStaticSelectAction>(HOME_PICK, async ({ ack, body, action, context }) => {
    await ack();
    const picked = action.selected_option?.value?.slice(0, 200) ?? null;
    afterAck(deps, context, () => deps.homes.picked(body.team?.id, body.user.id, picked));
  });
}
