import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * True when `hex` is the HMAC-SHA256 of `parts`, in order, with `secret`:
 * GitHub's and Slack's request signatures, computed over the raw bytes as they
 * arrived and compared in constant time.
 */
export function hmacMatches(secret: string, parts: (string | Buffer)[], hex: string): boolean {
  const hmac = createHmac('sha256', secret);
  for (const part of parts) hmac.update(part);
  return timingSafeEqual(hmac.digest(), Buffer.from(hex, 'hex'));
}
