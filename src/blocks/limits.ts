/** Block Kit's limits (https://api.slack.com/reference/block-kit): kept here, checked by every builder. */
export const MAX_BLOCKS_MESSAGE = 50;
export const MAX_BLOCKS_HOME = 100;
export const MAX_TEXT = 3000;
export const MAX_BUTTON_VALUE = 255;
export const MAX_CONFIRM_TEXT = 300;

/** Cuts text to `max` characters, marking the cut. */
export function truncate(text: string, max = MAX_TEXT): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** A button's value: compact JSON, refused if it would not fit (a bug, not user input). */
export function buttonValue(value: Record<string, string | number>): string {
  const json = JSON.stringify(value);
  if (json.length > MAX_BUTTON_VALUE) throw new Error(`button value over ${MAX_BUTTON_VALUE} characters`);
  return json;
}
