import type { App } from '@slack/bolt';
import { homeView } from '../../../blocks/pipeline-board.ts';
import { log } from '../../../log.ts';
import { board } from '../../board.ts';
import { afterAck, slackActor, type SlackDeps } from '../../context.ts';

/** The App Home tab: the board of the pipelines this user can see, with the buttons this user may use. */
export function register(app: App, deps: SlackDeps): void {
  app.event('app_home_opened', async ({ event, body, context }) => {
    if (event.tab !== 'home') return;
    afterAck(deps, context, async () => {
      try {
        const actor = await slackActor(deps, body.team_id, event.user);
        const view = homeView(await board(deps.engine, actor));
        await deps.api.call((web) => web.views.publish({ user_id: event.user, view }));
      } catch (err) {
        log.warn({ err, user: event.user }, 'app home not published');
      }
    });
  });
}
