import type { DataSource } from 'typeorm';

/** Expired keys are swept at most this often per process: one cheap DELETE, not one per request. */
const SWEEP_EVERY_MS = 60_000;

/**
 * Keys of signed requests already taken (a Slack request's timestamp and
 * signature, a Slack event's id), each until it expires. Held in the database,
 * so a replay sent to another flowops process sharing it is caught too.
 */
export class SeenRequests {
  private nextSweep = 0;

  constructor(private readonly db: DataSource) {}

  /**
   * Marks `key` as seen for `seconds`: true the first time, false while an
   * earlier mark has not expired. Atomic: of two simultaneous marks, one wins.
   */
  async markSeen(key: string, seconds: number): Promise<boolean> {
    if (Date.now() >= this.nextSweep) {
      this.nextSweep = Date.now() + SWEEP_EVERY_MS;
      await this.db.query('DELETE FROM seen_requests WHERE expires_at < now()');
    }
    const rows: { key: string }[] = await this.db.query(
      `INSERT INTO seen_requests (key, expires_at) VALUES ($1, now() + make_interval(secs => $2::float8))
       ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE seen_requests.expires_at < now()
       RETURNING key`,
      [key, seconds],
    );
    return rows.length === 1;
  }
}
