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
