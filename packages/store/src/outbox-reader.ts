// A light, read-only view of the store's outbox, for a thread that must not load MikroORM (the
// sidecar's MLflow sync thread: a second MikroORM costs some 17 MB of memory). It opens the SQLite file
// with better-sqlite3 alone, read-only, and runs the store's own outbox queries, which the store
// compiled from its Kysely builders into plain data (`Store.outboxReaderPlan()`, self-checked against
// the builders, see precompiled.ts). Rows are decoded as MikroORM's plugin decodes them and turned into
// records by the code the store uses itself (outbox-rows.ts), so both answer alike.
//
// It applies no migrations: the store that made the plan has migrated the file. A schema the plan does
// not fit fails when the reader opens (every statement is prepared then).
//
// Load nothing heavy from here: this module is the `@training-callbacks/store/outbox-reader` entry.
import { type NativeDatabase, nativeDatabase } from './native-sqlite.ts';
import {
  type BlockRow,
  type MirrorStateRow,
  mirrorStateOf,
  type OutboxRow,
  outboxLimit,
  outboxStatuses,
  peekItems,
  type StatusCountRow,
  type StatusHeadRow,
} from './outbox-rows.ts';
import {
  bindParams,
  checkColumns,
  decodeRow,
  type OutboxReaderPlan,
  type PortableQuery,
} from './portable-query.ts';
import { SQLITE_BUSY_TIMEOUT_MS } from './sqlite-settings.ts';
import type { MirrorState, OutboxReads, OutboxStatus, StoredOutboxItem } from './types.ts';

export type { OutboxReaderPlan, PortableQuery } from './portable-query.ts';
export type { MirrorState, OutboxReads, OutboxStatus, StoredOutboxItem } from './types.ts';

/** Options of {@link openOutboxReader}. */
export interface OutboxReaderOptions {
  /** The store's SQLite file (it must exist; the store keeps it open for writing). */
  dbPath: string;
  plan: OutboxReaderPlan;
}

/** The outbox's reads on a read-only connection of its own. */
export interface OutboxReader extends OutboxReads {
  /** Closes the connection. */
  close(): void;
}

/** A prepared portable query: its rows, decoded as the store's plugin would decode them. */
interface Prepared<Row> {
  all(values: Readonly<Record<string, unknown>>): Row[];
  get(values: Readonly<Record<string, unknown>>): Row | undefined;
}

function prepare<Row>(db: NativeDatabase, query: PortableQuery): Prepared<Row> {
  const statement = db.prepare(query.sql);
  if (!statement.reader) throw new Error(`outbox reader: ${query.name} does not read`);
  checkColumns(
    query,
    statement.columns().map((c) => c.name),
  );
  return {
    all: (values) => statement.all(bindParams(query, values)).map((row) => decodeRow(query, row) as Row),
    get: (values) => {
      const row = statement.get(bindParams(query, values));
      return row === undefined ? undefined : (decodeRow(query, row) as Row);
    },
  };
}

/**
 * Opens the store's file read-only (SQLite refuses every write on this connection) and prepares the
 * plan's queries. In WAL mode a reader neither waits for the writer nor makes it wait.
 */
export function openOutboxReader(options: OutboxReaderOptions): OutboxReader {
  const Database = nativeDatabase();
  const db = new Database(options.dbPath, { readonly: true, fileMustExist: true });
  try {
    db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    const { plan } = options;
    const q = {
      dueJobs: prepare<{ job: string }>(db, plan.dueJobs),
      nextDueAtMs: prepare<{ nextAttemptAtMs: number }>(db, plan.nextDueAtMs),
      peek: prepare<OutboxRow>(db, plan.peek),
      block: prepare<BlockRow>(db, plan.block),
      statusCounts: prepare<StatusCountRow>(db, plan.statusCounts),
      statusHead: prepare<StatusHeadRow>(db, plan.statusHead),
      mirrorState: prepare<MirrorStateRow>(db, plan.mirrorState),
    };
    return {
      async outboxDueJobs(nowMs: number, limit: number): Promise<string[]> {
        return q.dueJobs.all({ nowMs, limit: outboxLimit(limit) }).map((r) => r.job);
      },
      async peekOutbox(
        jobId: string,
        limit: number,
        maxBlockPoints = Number.POSITIVE_INFINITY,
      ): Promise<StoredOutboxItem[]> {
        const rows = q.peek.all({ job: jobId, limit: outboxLimit(limit) });
        return peekItems(rows, jobId, maxBlockPoints, (id) => q.block.get({ id }));
      },
      async outboxNextDueAtMs(): Promise<number | undefined> {
        const row = q.nextDueAtMs.get({});
        return row === undefined ? undefined : Number(row.nextAttemptAtMs);
      },
      async outboxStatus(jobIds: readonly string[]): Promise<Map<string, OutboxStatus>> {
        const out = new Map<string, OutboxStatus>();
        for (const job of new Set(jobIds)) {
          const counts = q.statusCounts.all({ job });
          const heads = counts.flatMap((c) => q.statusHead.get({ id: Number(c.headId) }) ?? []);
          for (const [id, status] of outboxStatuses(counts, heads)) out.set(id, status);
        }
        return out;
      },
      async getMirrorState(jobId: string): Promise<MirrorState | undefined> {
        const row = q.mirrorState.get({ jobId });
        return row === undefined ? undefined : mirrorStateOf(row);
      },
      close: () => db.close(),
    };
  } catch (error) {
    db.close();
    throw error;
  }
}
