import type { ContextBlock, KnownBlock, MrkdwnElement, SectionBlock } from '@slack/types';
import { MAX_TEXT } from './limits.ts';

/**
 * Slack reads `&`, `<` and `>` as control characters in mrkdwn, in code spans
 * and code blocks too: `<!channel>` pings a channel, `<https://x|Open>` is a link
 * whose label lies about where it goes. Slack asks apps to write them as
 * `&amp;`, `&lt;` and `&gt;` wherever they are meant as text.
 */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const MINTED = Symbol('mrkdwn');

/**
 * Text that is safe to hand to Slack as mrkdwn. Only this module makes one: the
 * `mrkdwn` tag escapes everything it is given (values and the template's own
 * text), so the only markup in it is what `link` put there. Builders take a
 * `Mrkdwn`, not a string, so text that skipped the tag does not type-check.
 */
export class Mrkdwn {
  constructor(
    minted: typeof MINTED,
    readonly text: string,
  ) {
    // The symbol is private to this module: nobody else can mint unescaped mrkdwn.
    if (minted !== MINTED) throw new Error('Mrkdwn is made by mrkdwn`…`, link() or codeBlock()');
  }

  toString(): string {
    return this.text;
  }
}

const mint = (text: string) => new Mrkdwn(MINTED, text);

export type MrkdwnValue = string | number | Mrkdwn;

const piece = (value: MrkdwnValue): string => (value instanceof Mrkdwn ? value.text : escapeMrkdwn(String(value)));

/**
 * mrkdwn`:x: *${app}* failed: ${error}`: formatting characters (`*`, `_`, `` ` ``,
 * `:emoji:`) work as written; `&`, `<` and `>` are escaped everywhere, in the
 * values and in the template itself (so `<app>` in a usage line stays text).
 * A `Mrkdwn` value (a link, a nested piece) goes in as it is.
 */
export function mrkdwn(strings: TemplateStringsArray, ...values: MrkdwnValue[]): Mrkdwn {
  let text = escapeMrkdwn(strings[0]!);
  for (const [i, value] of values.entries()) text += piece(value) + escapeMrkdwn(strings[i + 1]!);
  return mint(text);
}

/** Plain text as mrkdwn: every character shows as it is. */
export function asMrkdwn(text: MrkdwnValue): Mrkdwn {
  return text instanceof Mrkdwn ? text : mint(piece(text));
}

/**
 * `<url|label>`, for URLs flowops made (an app's URL). Anything but http(s) is
 * shown as its label only; `|` in the URL is percent-encoded so it cannot end
 * the URL early and start a label of its own.
 */
export function link(url: string, label: MrkdwnValue): Mrkdwn {
  const shown = asMrkdwn(label);
  if (!/^https?:\/\/[^\s]+$/i.test(url)) return shown;
  return mint(`<${escapeMrkdwn(url.replace(/\|/g, '%7C'))}|${shown.text}>`);
}

/**
 * A person as a message names them: a mention (`<@U123>`, which Slack shows as
 * their name and which notifies them) when they came through Slack, else their
 * name as text. Only a well-formed Slack user id becomes a mention.
 */
export function mention(person: { name: string; slackUser: string | null }): Mrkdwn {
  if (person.slackUser && /^[UW][A-Z0-9]{1,20}$/.test(person.slackUser)) return mint(`<@${person.slackUser}>`);
  return asMrkdwn(person.name);
}

/** A channel as Slack shows it (`#deploys`, a link), for a well-formed channel id; the id as text otherwise. */
export function channelMention(channel: string): Mrkdwn {
  return /^[CG][A-Z0-9]{2,20}$/.test(channel) ? mint(`<#${channel}>`) : asMrkdwn(channel);
}

export function joinMrkdwn(parts: MrkdwnValue[], separator = '\n'): Mrkdwn {
  return mint(parts.map(piece).join(escapeMrkdwn(separator)));
}

/**
 * Cuts mrkdwn to `max` characters without splitting an escape (`&amp;`) or a
 * link (`<url|label>`): a cut inside one cuts before it, so what is left never
 * turns into markup that was not there.
 */
export function truncateMrkdwn(m: Mrkdwn, max = MAX_TEXT): Mrkdwn {
  if (m.text.length <= max) return m;
  let cut = max - 1;
  const open = m.text.lastIndexOf('<', cut - 1);
  if (open >= 0 && m.text.indexOf('>', open) >= cut) cut = open;
  const amp = m.text.lastIndexOf('&', cut - 1);
  if (amp >= 0 && m.text.indexOf(';', amp) >= cut) cut = amp;
  return mint(`${m.text.slice(0, cut)}…`);
}

/**
 * A preformatted block of text from elsewhere (release phase output, a build
 * log): escaped like any other text, since Slack still reads `<!here>` inside
 * a code block. Too long, it loses its end, or with `keep: 'end'` its start
 * (release output, where the error is usually last).
 */
export function codeBlock(text: string, max = MAX_TEXT, keep: 'start' | 'end' = 'start'): Mrkdwn {
  // Three backticks in the text would end the block early: what follows would be formatted.
  let body = escapeMrkdwn(text.replace(/```/g, 'ˋˋˋ').trimEnd() || ' ');
  const room = max - 6;
  if (body.length > room) {
    if (keep === 'start') {
      body = truncateMrkdwn(mint(body), room).text;
    } else {
      let start = body.length - room + 1;
      // Never start inside an escape: `amp;` alone would show as text, `&lt;` cut to `lt;` too.
      const amp = body.lastIndexOf('&', start - 1);
      if (amp >= 0 && amp > start - 5 && body.indexOf(';', amp) >= start) start = body.indexOf(';', amp) + 1;
      body = `…${body.slice(start)}`;
    }
  }
  return mint('```' + body + '```');
}

/**
 * A mrkdwn text object. `verbatim` stops Slack's automatic parsing (bare URLs,
 * `#channel` names, mentions in plain text), so only markup flowops wrote is
 * markup.
 */
export function mrkdwnText(m: Mrkdwn, max = MAX_TEXT): MrkdwnElement {
  return { type: 'mrkdwn', text: truncateMrkdwn(m, max).text, verbatim: true };
}

export function section(m: Mrkdwn, accessory?: SectionBlock['accessory']): SectionBlock {
  return { type: 'section', text: mrkdwnText(m), ...(accessory ? { accessory } : {}) };
}

/** A `code span`: escaped, with backticks (which would end it) shown as a look-alike. */
export function code(text: string): Mrkdwn {
  return mint('`' + escapeMrkdwn(text.replace(/`/g, 'ˋ').replace(/\n/g, ' ') || ' ') + '`');
}

export function contextBlock(m: Mrkdwn): ContextBlock {
  return { type: 'context', elements: [mrkdwnText(m)] };
}

/** Plain text as a message's fallback `text`: escaped (Slack reads it as mrkdwn) and cut to `max`. */
export function fallbackText(text: string, max = 300): string {
  return truncateMrkdwn(asMrkdwn(text), max).text;
}

/**
 * A message as the Web API and `response_url` take it. The fallback `text` is
 * what notifications show; Slack reads it as mrkdwn too, so it is escaped the same way.
 */
export function slackMessage(fallback: Mrkdwn, blocks: KnownBlock[], max = 200): { text: string; blocks: KnownBlock[] } {
  return { text: truncateMrkdwn(fallback, max).text, blocks };
}
