import { EventEmitter } from 'node:events';
import type { DataSource } from 'typeorm';
import { AppEntity } from '../db/entities.ts';
import { untilDatabaseAnswers } from '../db/outage.ts';
import { NotFound } from '../errors.ts';

const POLL_MS = 200;

/**
 * Serializes release operations on one app, across processes: the lock is the
 * app row's `locked_by` column (the operation holding it), taken with one
 * conditional UPDATE. No connection is held while the lock is, so it also works
 * on the one-connection embedded database. Waiters in this process are woken at
 * once; waiters elsewhere poll. Taking and freeing the lock wait out a
 * database outage: a lock left taken would hold the app until a restart.
 */
export class AppLocks {
  private readonly released = new EventEmitter().setMaxListeners(0);

  constructor(private readonly db: DataSource) {}

  async withLock<T>(appId: number, operationId: number, work: () => Promise<T>): Promise<T> {
    const context = { operation: operationId, step: 'app lock' };
    for (;;) {
      const taken = await untilDatabaseAnswers(context, () =>
        this.db
          .createQueryBuilder()
          .update(AppEntity)
          .set({ lockedBy: operationId })
          .where('id = :appId AND (locked_by IS NULL OR locked_by = :operationId)', { appId, operationId })
          .execute(),
      );
      if (taken.affected) break;
      if (!(await untilDatabaseAnswers(context, () => this.db.getRepository(AppEntity).existsBy({ id: appId }))))
        throw new NotFound('the app was destroyed');
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          this.released.off(String(appId), wake);
          resolve();
        }, POLL_MS);
        this.released.once(String(appId), wake);
      });
    }
    try {
      return await work();
    } finally {
      await untilDatabaseAnswers(context, () =>
        this.db
          .createQueryBuilder()
          .update(AppEntity)
          .set({ lockedBy: null })
          .where('id = :appId AND locked_by = :operationId', { appId, operationId })
          .execute(),
      );
      this.released.emit(String(appId));
    }
  }
}
