import type { KnownBlock, ModalView, PlainTextOption } from '@slack/types';
import { z } from 'zod';
import type { ApprovalView, PromotePreview } from '../engine/views.ts';
import { short } from '../format.ts';
import { decodeJson } from './actions.ts';
import { lockLine, promoteSummary } from './buttons.ts';
import { truncate } from './limits.ts';
import { code, contextBlock, mrkdwn, section } from './mrkdwn.ts';

const plain = (text: string, max = 75) => ({ type: 'plain_text' as const, text: truncate(text, max) });

/**
 * The dialogs flowops opens, by callback id, with the schema of their
 * `private_metadata`: what the dialog was opened for (and the channel to answer
 * in). Like a button's value it is never trusted: the listener checks it again.
 */
export const DIALOGS = {
  /** Promote release `v` of app `a` in pipeline `p`; answer in channel `c`. */
  promote_dialog: z.object({ p: z.string(), a: z.string(), v: z.number().int(), c: z.string().nullable() }),
  /** Reject approval request `i`; answer in channel `c`. */
  reject_request: z.object({ i: z.number().int(), c: z.string().nullable() }),
} satisfies Record<string, z.ZodType>;

export type DialogId = keyof typeof DIALOGS;
export type DialogMeta<Id extends DialogId> = z.infer<(typeof DIALOGS)[Id]>;

/** What a submitted dialog was opened for; metadata that does not match its schema is refused as input. */
export function decodeDialog<Id extends DialogId>(id: Id, metadata: string | undefined): DialogMeta<Id> {
  return decodeJson(
    DIALOGS[id],
    metadata,
    'this dialog is from an older flowops; run the command instead (`/flow help`)',
  ) as DialogMeta<Id>;
}

/** Slack shows at most 10 checkboxes; more apps than that get a multi-select. */
const MAX_CHECKBOXES = 10;

/**
 * **Promote** as a dialog: the release, the commits it ships, the downstream
 * apps as checkboxes (all checked, as `promote` with no `to`), a note, and
 * what stands in the way (approvals, locks). Submitting promotes to the
 * checked apps, or files the approval request.
 */
export function promoteDialog(preview: PromotePreview, channel: string | null): ModalView {
  const { from, offer } = preview;
  const options: PlainTextOption[] = offer.apps.slice(0, 100).map((app) => ({ text: plain(app), value: app }));
  const blocks: KnownBlock[] = [
    section(mrkdwn`*${from.app} v${from.version}* ${code(short(from.commit))} → ${offer.downstream}`),
    section(promoteSummary(offer)),
  ];
  if (preview.approvals)
    blocks.push(
      contextBlock(
        mrkdwn`:raising_hand: ${offer.downstream} needs ${preview.approvals} approval${preview.approvals === 1 ? '' : 's'}: submitting asks for ${preview.approvals === 1 ? 'it' : 'them'}, and it ships once someone else with deploy approves`,
      ),
    );
  for (const lock of preview.locks.slice(0, 5)) blocks.push(contextBlock(lockLine(lock)));
  blocks.push(
    {
      type: 'input',
      block_id: 'apps',
      label: plain(`Promote to ${offer.downstream}`),
      element:
        options.length <= MAX_CHECKBOXES
          ? { type: 'checkboxes', action_id: 'apps', options, initial_options: options }
          : { type: 'multi_static_select', action_id: 'apps', options, initial_options: options },
    },
    {
      type: 'input',
      block_id: 'note',
      optional: true,
      label: plain('Note'),
      element: {
        type: 'plain_text_input',
        action_id: 'note',
        multiline: true,
        max_length: 500,
        placeholder: plain('What this ships, for the channel'),
      },
    },
  );
  return {
    type: 'modal',
    callback_id: 'promote_dialog',
    private_metadata: JSON.stringify({
      p: preview.pipeline,
      a: from.app,
      v: from.version,
      c: channel,
    } satisfies DialogMeta<'promote_dialog'>),
    title: plain('Promote', 24),
    submit: plain(preview.approvals ? 'Ask for approval' : 'Promote', 24),
    close: plain('Cancel', 24),
    blocks,
  };
}

/** **Reject** as a dialog that asks why (the requester and the channel read it). */
export function rejectDialog(request: ApprovalView, channel: string | null): ModalView {
  return {
    type: 'modal',
    callback_id: 'reject_request',
    private_metadata: JSON.stringify({ i: request.id, c: channel } satisfies DialogMeta<'reject_request'>),
    title: plain('Reject request', 24),
    submit: plain('Reject', 24),
    close: plain('Cancel', 24),
    blocks: [
      section(mrkdwn`${request.requester} asks to ship: *${request.description}*`),
      {
        type: 'input',
        block_id: 'reason',
        label: plain('Why?'),
        element: { type: 'plain_text_input', action_id: 'reason', multiline: true, min_length: 1, max_length: 500 },
      },
    ],
  };
}
