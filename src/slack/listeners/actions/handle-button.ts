import type { App, BlockAction, ButtonAction, RespondFn } from '@slack/bolt';
import type { KnownBlock } from '@slack/types';
import { decodeAction, type ActionId, type ActionPayload } from '../../../blocks/actions.ts';
import type { Actor } from '../../../engine/access.ts';
import type { ApprovalView, OperationView } from '../../../engine/views.ts';
import { FlowError } from '../../../errors.ts';
import { log } from '../../../log.ts';
import { afterAck, slackActor, type SlackDeps } from '../../context.ts';
import { refusal } from '../commands/flow.ts';

/** An answer only the clicking user sees: ephemeral in the channel, or a direct message from App Home. */
export type Reply = (message: { text: string; blocks?: KnownBlock[] }) => Promise<void>;

/** A click on a button of action `Id`, its value decoded and typed by the id. */
export interface ButtonClick<Id extends ActionId> {
  actor: Actor;
  /** What the button was shown for; never trusted, the engine looks it up and checks it again. */
  payload: ActionPayload<Id>;
  reply: Reply;
  /** The click's trigger, to open a dialog (valid for 3 seconds). */
  triggerId: string;
  /** The channel of the clicked message; null in App Home. */
  channel: string | null;
  /** Shows an operation the click started (or the approval request it became): in the clicked message's channel, or only in the feeds when clicked in App Home. */
  follow(operation: OperationView | ApprovalView): Promise<void>;
}

/**
 * Registers the listener of one button: acks at once, then (in the bounded
 * work queue) resolves the clicking user, decodes the value and runs `work`.
 * A FlowError is answered to that user in `/flow` words; anything else is
 * logged and answered with a generic line.
 */
export function handleButton<Id extends ActionId>(
  app: App,
  deps: SlackDeps,
  id: Id,
  work: (click: ButtonClick<Id>) => Promise<void>,
): void {
  app.action<BlockAction<ButtonAction>>(id, async ({ ack, body, action, respond, context }) => {
    await ack();
    afterAck(deps, context, () => click(body, action, respond));
  });

  const click = async (body: BlockAction<ButtonAction>, action: ButtonAction, respond: RespondFn) => {
    const reply: Reply = async (message) => {
      if (body.response_url) await respond({ response_type: 'ephemeral', replace_original: false, ...message });
      else await deps.api.call((web) => web.chat.postMessage({ channel: body.user.id, text: message.text, blocks: message.blocks }));
    };
    const channel = body.channel?.id;
    const follow = async (operation: OperationView | ApprovalView) => {
      if (channel) await deps.engine.ensureStatusMessage(operation, channel);
    };
    try {
      const who = await slackActor(deps, body.team?.id ?? body.user.team_id, body.user.id, body.user.username ?? body.user.name);
      // The button sat on a message about its pipeline: a refusal may name it (and its managers).
      const actor = { ...who, shown: { message: true } };
      await work({ actor, payload: decodeAction(id, action.value), reply, follow, triggerId: body.trigger_id, channel: channel ?? null });
    } catch (err) {
      if (!(err instanceof FlowError)) log.error({ err, action: id }, 'button failed');
      await reply(await refusal(deps, body.team?.id ?? body.user.team_id, err)).catch((e: unknown) =>
        log.warn({ err: e }, 'could not answer a button'),
      );
    }
  };
}
