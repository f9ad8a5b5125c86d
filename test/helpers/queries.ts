import type { DataSource } from 'typeorm';

/**
 * Counts the SQL statements a piece of work sends through `db` (TypeORM hands
 * every statement to its logger), to hold a bound on them in tests and the bench.
 */
export async function countQueries(db: DataSource, work: () => Promise<unknown>): Promise<number> {
  const logger = db.logger;
  let count = 0;
  const counting = Object.create(logger) as typeof logger;
  counting.logQuery = (...args) => {
    count++;
    return logger.logQuery(...args);
  };
  Object.defineProperty(db, 'logger', { value: counting, configurable: true, writable: true });
  try {
    await work();
  } finally {
    Object.defineProperty(db, 'logger', { value: logger, configurable: true, writable: true });
  }
  return count;
}
