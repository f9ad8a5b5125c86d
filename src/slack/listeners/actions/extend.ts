import type { App } from '@slack/bolt';
import { mrkdwn } from '../../../blocks/mrkdwn.ts';
import { noticeMessage } from '../../../blocks/result-message.ts';
import { until } from '../../../format.ts';
import type { SlackDeps } from '../../context.ts';
import { handleButton } from './handle-button.ts';

/** **Extend 1h** on a lock's reminder: the engine checks operate and that the clicker holds that very lock. */
export function register(app: App, deps: SlackDeps): void {
  handleButton(app, deps, 'extend', async ({ actor, payload: { t, i }, reply }) => {
    const lock = await deps.engine.extendLock(actor, t, { ifLock: i });
    await reply(noticeMessage(mrkdwn`:lock: ${lock.target} stays locked until ${until(lock.until)}.`));
  });
}
