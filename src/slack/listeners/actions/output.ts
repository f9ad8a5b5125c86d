import type { App } from '@slack/bolt';
import { textMessage } from '../../../blocks/result-message.ts';
import type { SlackDeps } from '../../context.ts';
import { handleButton } from './handle-button.ts';

/** **Output** on a failed release: the release phase's output, to the clicking user only. */
export function register(app: App, deps: SlackDeps): void {
  handleButton(app, deps, 'output', async ({ actor, payload: { a, v }, reply }) => {
    const release = await deps.engine.releaseOutput(actor, a, v);
    await reply(
      textMessage(`v${release.version} ${release.description} (${release.status})\n${release.output.trimEnd() || '(no output)'}`),
    );
  });
}
