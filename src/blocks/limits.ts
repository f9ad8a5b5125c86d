/** Block Kit's limits (https://api.slack.com/reference/block-kit): kept here, checked by every builder. */
export const MAX_BLOCKS_MESSAGE = 50;
export const MAX_BLOCKS_HOME = 100;
export const MAX_TEXT = 3000;
/** Slack allows 2000 characters; ours is stricter (values are names, numbers and a commit sha). */
export const MAX_BUTTON_VALUE = 255;
export const MAX_CONFIRM_TEXT = 300;

/** Cuts text to `max` characters, marking the cut. */
export function truncate(text: string, max = MAX_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
