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
 * The person behind a click or a dialog, with where they acted: a refusal may
 * name the pipeline (and its managers) when flowops showed it there — the
 * engine checks that the message is its own about that pipeline, or the
 * channel its feed, and never takes the click's word for it.
 */
export async function shownActor(
  deps: SlackDeps,
  team: string | undefined,
  user: { id: string; name?: string },
  where: { channel: string | null; ts?: string | undefined },
): Promise<Actor> {
  const actor = await slackActor(deps, team, user.id, user.name);
  if (!where.channel) return actor;
  return { ...actor, shown: where.ts ? { message: { channel: where.channel, ts: where.ts } } : { channel: where.channel } };
}

/** Shows an operation (or approval request) an interaction started, in the channel it came from; from App Home, only the feeds do. */
export function follower(deps: SlackDeps, channel: string | null): (shown: OperationView | ApprovalView) => Promise<void> {
  return async (shown) => {
    if (channel) await deps.engine.ensureStatusMessage(shown, channel);
  };
}

/** Answers a failed click or dialog: a FlowError in `/flow` words; anything else is logged and answered with a generic line. */
export async function answerFailure(
  deps: SlackDeps,
  team: string | undefined,
  err: unknown,
  reply: Reply,
  where: { action: string } | { dialog: string },
): Promise<void> {
  if (!(err instanceof FlowError)) log.error({ err, ...where }, 'action' in where ? 'button failed' : 'dialog failed');
  await reply(await refusal(deps, team, err)).catch((e: unknown) => log.warn({ err: e, ...where }, 'could not answer a click or dialog'));
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
    const channel = body.channel?.id ?? null;
    const team = body.team?.id ?? body.user.team_id;
    try {
      const actor = await shownActor(
        deps,
        team,
        { id: body.user.id, name: body.user.username ?? body.user.name },
        { channel, ts: messageTs(body) },
      );
      const payload = decodeAction(id, action.value);
      await work({ actor, payload, reply, follow: follower(deps, channel), triggerId: body.trigger_id, channel });
    } catch (err) {
      await answerFailure(deps, team, err, reply, { action: id });
    }
  };
}

/** The clicked message's ts (Slack's id of it in its channel); none in App Home. */
function messageTs(body: BlockAction<ButtonAction>): string | undefined {
  const container: unknown = body.container?.message_ts;
  return typeof container === 'string' ? container : body.message?.ts;
}
