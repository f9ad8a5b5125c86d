import type { App } from '@slack/bolt';
import type { SlackDeps } from '../../context.ts';
import { handleButton } from './handle-button.ts';

/** **Retry** on a failed deploy: deploys the same commit to the same app again. */
export function register(app: App, deps: SlackDeps): void {
  handleButton(app, deps, 'retry', async ({ actor, payload: { p, a, s, c }, follow }) => {
    await follow(await deps.engine.deploy(actor, { pipeline: p, ref: c, stage: s, app: a }));
  });
}
