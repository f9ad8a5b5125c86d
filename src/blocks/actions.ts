import type { Button } from '@slack/types';
import { z } from 'zod';
import { InvalidInput } from '../errors.ts';
import { MAX_BUTTON_VALUE } from './limits.ts';

const name = z.string();
const number = z.number().int();

/**
 * Every button flowops puts in Slack, by action id, with the schema of its value:
 * the builders that encode a button and the listeners that decode a click both
 * read it from here, so the action id types the payload. Keys are one letter to
 * stay within MAX_BUTTON_VALUE; buttons already posted in channels keep this
 * shape, so a change here is a new action id, not a new key. A payload is never
 * trusted: listeners look the pipeline, app and release up again.
 */
export const ACTIONS = {
  /** Promote the release `v` of app `a` in pipeline `p` to the downstream stage. */
  promote: z.object({ p: name, a: name, v: number }),
  /** Roll app `a`, running release `v`, back to the release before. */
  rollback: z.object({ a: name, v: number }),
  /** Release `v` of app `a` again (after a rollback), if it still runs `c`. */
  rerelease: z.object({ a: name, v: number, c: number }),
  /** Deploy commit `c` of pipeline `p` to app `a` in stage `s` again. */
  retry: z.object({ p: name, a: name, s: name, c: name }),
  /** Re-run test run `n` of pipeline `p`. */
  ci_rerun: z.object({ p: name, n: number }),
  /** End deploy lock `i` on `t` (an app, or `pipeline:stage`), if it is still the one there. */
  unlock: z.object({ t: name, i: number }),
  /** Extend deploy lock `i` on `t` by an hour, if it is still the one there and the clicker holds it. */
  extend: z.object({ t: name, i: number }),
  /** Approve approval request `i`. */
  approve: z.object({ i: number }),
  /** Reject approval request `i` (a modal asks why). */
  reject: z.object({ i: number }),
  /** Restart dyno `d` (or process type) of app `a`. */
  restart: z.object({ a: name, d: name }),
  /** Show the release phase output of release `v` of app `a`. */
  output: z.object({ a: name, v: number }),
} satisfies Record<string, z.ZodType<Record<string, string | number>>>;

export type ActionId = keyof typeof ACTIONS;
export type ActionPayload<Id extends ActionId> = z.infer<(typeof ACTIONS)[Id]>;

/** What a click on an older flowops message (or a forged one) is told. */
const OLDER_BUTTON = 'this button is from an older flowops message; run the command instead (`/flow help`)';

/** A button's value for action `id`: compact JSON, refused if it does not fit (a bug, not user input). */
export function encodeAction<Id extends ActionId>(id: Id, payload: ActionPayload<Id>): string {
  const json = JSON.stringify(ACTIONS[id].parse(payload));
  if (json.length > MAX_BUTTON_VALUE) throw new Error(`${id} button value over ${MAX_BUTTON_VALUE} characters`);
  return json;
}

/** JSON that flowops put in Slack (a button's value, a dialog's metadata) and Slack sent back: checked against `schema`, else refused with `refusal`. */
export function decodeJson(schema: z.ZodType, text: string | undefined, refusal: string): unknown {
  try {
    return schema.parse(JSON.parse(text ?? ''));
  } catch {
    throw new InvalidInput(refusal);
  }
}

/** The payload of a click on action `id`; a value that does not match its schema is refused as input. */
export function decodeAction<Id extends ActionId>(id: Id, value: string | undefined): ActionPayload<Id> {
  return decodeJson(ACTIONS[id], value, OLDER_BUTTON) as ActionPayload<Id>;
}

/** A button for action `id` whose value carries `payload`: the id and its value cannot disagree. */
export function actionButton<Id extends ActionId>(
  id: Id,
  payload: ActionPayload<Id>,
  button: Omit<Button, 'type' | 'action_id' | 'value'>,
): Button {
  return { type: 'button', action_id: id, ...button, value: encodeAction(id, payload) };
}
