import type { App } from '@slack/bolt';
import { mrkdwn } from '../../../blocks/mrkdwn.ts';
import { noticeMessage } from '../../../blocks/result-message.ts';
import type { SlackDeps } from '../../context.ts';
import { handleButton } from './handle-button.ts';

/** **Restart** on a crash message: restarts that dyno (deploy is checked again, the app looked up again). */
export function register(app: App, deps: SlackDeps): void {
  handleButton(app, deps, 'restart', async ({ actor, payload: { a, d }, reply }) => {
    const restarted = await deps.engine.restartDynos(actor, a, d);
    await reply(noticeMessage(mrkdwn`:arrows_counterclockwise: Restarting ${restarted.dynos.join(', ') || d} of ${restarted.app}.`));
  });
}
