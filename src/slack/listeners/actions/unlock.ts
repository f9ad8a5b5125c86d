import type { App } from '@slack/bolt';
import { mrkdwn } from '../../../blocks/mrkdwn.ts';
import { noticeMessage } from '../../../blocks/result-message.ts';
import type { SlackDeps } from '../../context.ts';
import { handleButton } from './handle-button.ts';

/** **Unlock** beside a deploy lock: ends it (operate is checked again); the feeds say who unlocked it. */
export function register(app: App, deps: SlackDeps): void {
  handleButton(app, deps, 'unlock', async ({ actor, payload: { t, i }, reply }) => {
    const lock = await deps.engine.unlock(actor, t, { ifLock: i });
    await reply(noticeMessage(mrkdwn`:unlock: Unlocked ${lock.target}${lock.holder === actor.name ? '' : ` (locked by ${lock.holder})`}.`));
  });
}
