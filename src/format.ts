/** Small formatting helpers every layer may use (a leaf module). */

/** A commit's short sha, as git and Heroku print it; `-` for none. */
export const short = (sha: string | null | undefined) => (sha ? sha.slice(0, 7) : '-');

/** "3 minutes ago", as Heroku prints release ages. */
export function age(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  const units: [number, string][] = [
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ];
  for (const [size, unit] of units) {
    if (seconds >= size) {
      const n = Math.floor(seconds / size);
      return `${n} ${unit}${n === 1 ? '' : 's'} ago`;
    }
  }
  return `${seconds} second${seconds === 1 ? '' : 's'} ago`;
}

/**
 * Text for a terminal: control characters other than line feed and tab (escape
 * sequences that clear the screen, retitle the window or hide text, from build
 * output or commit messages) are shown as `\xNN` instead of acting.
 */
export function forTerminal(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** How long something took: "8s", "2m 05s", "1h 03m". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** When something ends, for messages: "14:05 UTC" today, "Tue 24 Nov 14:05 UTC" on another day. */
export function until(iso: string, now = Date.now()): string {
  const at = new Date(iso);
  const time = `${at.toISOString().slice(11, 16)} UTC`;
  if (at.toISOString().slice(0, 10) === new Date(now).toISOString().slice(0, 10)) return time;
  const day = at.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short', timeZone: 'UTC' }).replace(',', '');
  return `${day} ${time}`;
}
