// SQLite: the hot paths' written-out statements (hot-path.ts, SQLITE_SQL) run straight on the
// connection of their transaction, `DatabaseConnection.executeQuery`, the call Kysely itself ends in.
// Through the transaction object each statement passes seven async layers first (the transaction's
// executor and its committed-or-rolled-back check, the query executor, the single-connection provider
// and its queue, the result plugins). In the sidecar that was ~8–10 µs and ~2 KB of garbage per
// statement, where SQLite runs the statement itself in 3–6 µs; an epoch report runs four of them.
//
// Exact, not a guess: the store has one connection and Kysely's driver lets one transaction at a
// time hold it, so the connection a transaction began on is the one its callback's statements use.
// A transaction object is mapped to it only while its callback runs (`within`); any other object —
// the database outside a transaction, a transaction that has ended, a transaction's view without
// plugins — goes through Kysely as before, which waits for the connection or refuses the statement.
// Imports nothing of SQLite's, so the PostgreSQL path loads nothing of it.
import type { MikroORM } from '@mikro-orm/core';
import type { DatabaseConnection } from 'kysely';

/** Which connection each running transaction of the store's own hot paths holds (see the header). */
export class SqliteTransactions {
  /** The connection of the transaction the driver began and has not ended. */
  #open: DatabaseConnection | undefined;
  readonly #running = new WeakMap<object, DatabaseConnection>();

  /** The driver began a transaction on `connection` (BEGIN IMMEDIATE ran). */
  began(connection: DatabaseConnection): void {
    this.#open = connection;
  }

  /** The driver committed or rolled back the open transaction. */
  ended(): void {
    this.#open = undefined;
  }

  /**
   * Runs `write`, the callback of the transaction `trx` (called from inside Kysely's
   * `transaction().execute`), with `trx` mapped to its connection until `write` settles.
   */
  async within<T>(trx: object, write: () => Promise<T>): Promise<T> {
    const connection = this.#open;
    if (connection === undefined) return write(); // not begun by this driver: Kysely's path
    this.#running.set(trx, connection);
    try {
      return await write();
    } finally {
      this.#running.delete(trx);
    }
  }

  /** The connection of `db` if it is a transaction whose callback runs now (see {@link within}). */
  connectionOf(db: object): DatabaseConnection | undefined {
    return this.#running.get(db);
  }
}

/** The SQLite dialect's transactions of `orm` (see sqlite-dialect.ts); undefined on PostgreSQL. */
export function sqliteTransactionsOf(orm: MikroORM): SqliteTransactions | undefined {
  const dialect: unknown = orm.config.get('driverOptions');
  const transactions =
    typeof dialect === 'object' && dialect !== null && 'transactions' in dialect
      ? dialect.transactions
      : undefined;
  return transactions instanceof SqliteTransactions ? transactions : undefined;
}
