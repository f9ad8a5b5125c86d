import type { App } from '@slack/bolt';
import { mrkdwn } from '../../../blocks/mrkdwn.ts';
import { noticeMessage } from '../../../blocks/result-message.ts';
import type { SlackDeps } from '../../context.ts';
import { handleButton } from './handle-button.ts';

/** **Re-run** on a failed test run in a feed: starts a new run of the same commit; its result comes to the feed. */
export function register(app: App, deps: SlackDeps): void {
  handleButton(app, deps, 'ci_rerun', async ({ actor, payload: { p, n }, reply }) => {
    const run = await deps.engine.rerunTests(actor, p, n);
    await reply(noticeMessage(mrkdwn`Started test run #${run.number} of ${run.commit.slice(0, 7)}; its result comes to the feed.`));
  });
}
