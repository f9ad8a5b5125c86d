import type { App, ViewSubmitAction } from '@slack/bolt';
import { decodeDialog, type DialogId, type DialogMeta } from '../../../blocks/dialogs.ts';
import type { Actor } from '../../../engine/access.ts';
import type { ApprovalView, OperationView } from '../../../engine/views.ts';
import { afterAck, type SlackDeps } from '../../context.ts';
import { answerFailure, follower, shownActor, type Reply } from '../actions/handle-button.ts';

/** A dialog's input values, by block id then action id, as Slack sends them. */
export type ViewValues = ViewSubmitAction['view']['state']['values'];

export interface Submission<Id extends DialogId> {
  actor: Actor;
  /** What the dialog was opened for; never trusted, the engine checks it again. */
  meta: DialogMeta<Id>;
  values: ViewValues;
  reply: Reply;
  /** Shows an operation (or approval request) the dialog started in the channel it was opened from. */
  follow(shown: OperationView | ApprovalView): Promise<void>;
}

/**
 * Registers a dialog's submission: `check` answers at once with errors to show
 * beside the inputs (the dialog stays open), otherwise the dialog closes and
 * `work` runs after the ack, in the bounded work queue, answering the person
 * in the channel the dialog came from (or by direct message).
 */
export function handleView<Id extends DialogId>(
  app: App,
  deps: SlackDeps,
  id: Id,
  check: (values: ViewValues) => Record<string, string> | null,
  work: (submission: Submission<Id>) => Promise<void>,
): void {
  app.view<ViewSubmitAction>(id, async ({ ack, body, view, context }) => {
    const errors = check(view.state.values);
    if (errors) {
      await ack({ response_action: 'errors', errors });
      return;
    }
    await ack();
    afterAck(deps, context, () => submit(body));
  });

  const submit = async (body: ViewSubmitAction) => {
    const team = body.team?.id ?? body.user.team_id;
    let channel: string | null = null;
    const reply: Reply = async (message) => {
      if (channel)
        await deps.api.call((web) =>
          web.chat.postEphemeral({ channel: channel!, user: body.user.id, text: message.text, blocks: message.blocks }),
        );
      else await deps.api.call((web) => web.chat.postMessage({ channel: body.user.id, text: message.text, blocks: message.blocks }));
    };
    try {
      const meta = decodeDialog(id, body.view.private_metadata);
      channel = (meta as { c: string | null }).c;
      const actor = await shownActor(deps, team, body.user, { channel });
      await work({ actor, meta, values: body.view.state.values, reply, follow: follower(deps, channel) });
    } catch (err) {
      await answerFailure(deps, team, err, reply, { dialog: id });
    }
  };
}
