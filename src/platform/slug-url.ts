import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The token that lets whoever holds it read one slug for one app:
 * HMAC-SHA256(key, `${app}:${slugId}`), hex. It never expires, so a pod
 * started days after its release was made still fetches its slug; it reads
 * that slug and nothing else.
 */
export function slugToken(key: Buffer, app: string, slugId: string): string {
  return createHmac('sha256', key).update(`${app}:${slugId}`).digest('hex');
}

/** Whether `token` is slugToken(key, app, slugId), compared in constant time. */
export function slugTokenMatches(key: Buffer, app: string, slugId: string, token: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(token)) return false;
  return timingSafeEqual(Buffer.from(slugToken(key, app, slugId), 'hex'), Buffer.from(token, 'hex'));
}

/**
 * Where a pod fetches its slug from flowops: `<publicUrl>/slugs/<sha256>.tgz?app=<app>&token=<hex>`.
 * flowops streams the archive (slugs in the data dir) or redirects to a presigned URL good for minutes (slugs in S3).
 */
export function slugUrl(publicUrl: string, key: Buffer, app: string, slugId: string): string {
  const query = new URLSearchParams({ app, token: slugToken(key, app, slugId) });
  return `${publicUrl.replace(/\/+$/, '')}/slugs/${slugId}.tgz?${query}`;
}
