import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';

/**
 * A secret every flowops replica on this database shares: made once, by
 * whichever replica asks first, and read by all (the key that signs slug URLs).
 */
export async function instanceKey(db: DataSource, name: string): Promise<Buffer> {
  await db.query('INSERT INTO instance_keys (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [
    name,
    randomBytes(32).toString('base64'),
  ]);
  const rows = (await db.query('SELECT value FROM instance_keys WHERE name = $1', [name])) as { value: string }[];
  return Buffer.from(rows[0]!.value, 'base64');
}
