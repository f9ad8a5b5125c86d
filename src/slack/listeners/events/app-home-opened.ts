import type { App } from '@slack/bolt';
import { afterAck, type SlackDeps } from '../../context.ts';

/** The App Home tab: the board of the pipelines this user can see, kept up to date while they look (src/slack/home.ts). */
export function register(app: App, deps: SlackDeps): void {
  app.event('app_home_opened', async ({ event, body, context }) => {
    if (event.tab !== 'home') return;
    afterAck(deps, context, () => deps.homes.opened(body.team_id, event.user));
  });
}
