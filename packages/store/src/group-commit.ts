// SQLite: batch appends committed together. The database has one writer, so concurrent appends queue
// for it anyway; under 50 trainers they arrive in bursts (the streams one network read delivers), and
// each paid its own BEGIN … COMMIT — two thirds of an append's database time, measured — while an
// EndEpoch read in the same burst waited behind them all. Here the appends of one turn of the event
// loop run in one transaction, each in its own savepoint (an append refused — job unknown or ended —
// or failing rolls back alone), started after the turn's I/O (setImmediate): a unary call read in the
// same turn takes the connection first. Every caller still hears of its append only after the commit
// (ack after commit), and appends run in the order they were submitted (per-job order).
import { CompiledQuery } from 'kysely';
import { runTableTransaction, type TableKysely, type TableTransaction } from './hot-path.ts';
import type { SqliteTransactions } from './sqlite-transactions.ts';

/** Most appends in one transaction, and most points: a long group would hold the writer too long. */
export const GROUP_MAX_APPENDS = 64;
export const GROUP_MAX_POINTS = 262_144;

interface Entry {
  readonly points: number;
  readonly work: (trx: TableTransaction) => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

const SAVEPOINT = CompiledQuery.raw('savepoint "batch_append"');
const RELEASE = CompiledQuery.raw('release "batch_append"');
const ROLLBACK_TO = CompiledQuery.raw('rollback to "batch_append"');

/** Runs writes of the SQLite hot paths grouped into shared transactions (see the file's header). */
export class GroupCommit {
  readonly #tables: TableKysely;
  readonly #sqlite: SqliteTransactions | undefined;
  #queue: Entry[] = [];
  #scheduled = false;
  /** Transactions committed, and the writes in them (read by the specs). */
  groups = 0;
  grouped = 0;

  constructor(tables: TableKysely, sqlite?: SqliteTransactions) {
    this.#tables = tables;
    this.#sqlite = sqlite;
  }

  /**
   * Runs `work` in a transaction shared with the other writes submitted in the same turn; resolves
   * with its result once that transaction committed, rejects with what `work` threw (its writes
   * rolled back) or with the commit's error.
   */
  run<T>(points: number, work: (trx: TableTransaction) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ points, work, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => void this.#drain());
      }
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      let count = 0;
      let points = 0;
      for (const entry of this.#queue) {
        if (count > 0 && (count >= GROUP_MAX_APPENDS || points + entry.points > GROUP_MAX_POINTS)) break;
        count++;
        points += entry.points;
      }
      await this.#commit(this.#queue.splice(0, count));
    }
    this.#scheduled = false;
  }

  async #commit(group: Entry[]): Promise<void> {
    const [only] = group;
    if (group.length === 1 && only) {
      // Alone: the transaction is the append's own, rolled back whole when it throws.
      let value: unknown;
      try {
        value = await runTableTransaction(this.#tables, this.#sqlite, only.work);
      } catch (error) {
        only.reject(error);
        return;
      }
      this.groups++;
      this.grouped++;
      only.resolve(value);
      return;
    }
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      await runTableTransaction(this.#tables, this.#sqlite, async (trx) => {
        for (const entry of group) {
          await trx.executeQuery(SAVEPOINT);
          try {
            outcomes.push({ ok: true, value: await entry.work(trx) });
          } catch (error) {
            await trx.executeQuery(ROLLBACK_TO);
            outcomes.push({ ok: false, error });
          }
          await trx.executeQuery(RELEASE);
        }
      });
    } catch (error) {
      // Nothing of the group was committed: every append fails with the commit's error.
      for (const entry of group) entry.reject(error);
      return;
    }
    this.groups++;
    this.grouped += group.length;
    group.forEach((entry, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) entry.resolve(outcome.value);
      else entry.reject(outcome.error);
    });
  }
}
