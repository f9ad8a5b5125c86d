import { InvalidInput } from '../errors.ts';

const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
const ISO = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * `--since`: a length of time back from `now` (`30m`, `12h`, `7d`, `2w`) or a
 * date (`2026-11-20`, `2026-11-20T09:30`, UTC unless it names a zone).
 * Anything else, or a time to come, is refused saying what it takes.
 */
export function parseSince(text: string, now = Date.now()): Date {
  const ago = /^(\d{1,6})([mhdw])$/.exec(text);
  if (ago) {
    const n = Number(ago[1]);
    if (n === 0) throw new InvalidInput(`--since ${text} is now: give a length of time back, like 7d`);
    const back = now - n * UNITS[ago[2]!]!;
    if (back < 0) throw new InvalidInput(`--since ${text} is before 1970: audit records are kept FLOW_AUDIT_RETENTION_DAYS at most`);
    return new Date(back);
  }
  const iso = ISO.exec(text);
  const at = iso ? Date.parse(`${iso[1]}T${iso[2] ?? '00:00'}${iso[3] ?? 'Z'}`) : NaN;
  // Date.parse rolls 2026-02-30 over to March: a day that does not exist is refused.
  if (!iso || Number.isNaN(at) || (!iso[3] && new Date(at).toISOString().slice(0, 10) !== iso[1]))
    throw new InvalidInput(
      `--since takes a length of time back from now (30m, 12h, 7d, 2w) or a date (2026-11-20, 2026-11-20T09:30, UTC unless it says +02:00); got "${text.slice(0, 40)}"`,
    );
  if (at < 0)
    throw new InvalidInput(`--since ${text.slice(0, 40)} is before 1970: audit records are kept FLOW_AUDIT_RETENTION_DAYS at most`);
  if (at > now)
    throw new InvalidInput(`--since ${text.slice(0, 40)} is in the future (it is ${new Date(now).toISOString().slice(0, 16)} UTC now)`);
  return new Date(at);
}
