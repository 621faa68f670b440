// The statements of the store's hot paths: an epoch report, an epoch begin, a batch append (every
// ReportBatchMetrics stream), the change feed and the batch block a watch event names. They are ordinary Kysely builders, like every other query of the
// store, but on table and column names and without MikroORM's Kysely plugin: the plugin's per-query
// transform (node rewriting, metadata lookups, value conversion) costs several times what the
// database spends running these short statements. The few conversions they need are spelled out in
// `ColumnValues`, one per dialect, and `hot-path.spec.ts` pins each statement's SQL and shows that
// what it writes reads back through the entities exactly as MikroORM's own conversion would.
import { BigIntType, DoubleType, type EntityClass, JsonType, type MikroORM } from '@mikro-orm/core';
import type { InferKyselyDB } from '@mikro-orm/sql';
import { CompiledQuery, type Kysely, type QueryResult, sql, type Transaction } from 'kysely';
import {
  type BatchMetricBlockSchema,
  type EncodedMetricMap,
  type MetricSourceSchema,
  type OutboxItemSchema,
  type StoreChangeSchema,
  TrainingJob,
  type TrainingJobSchema,
  TrainingMetric,
  type TrainingMetricSchema,
} from './entities.ts';
import { SIDECAR_APPLICATION_ID } from './sqlite-file.ts';
import { type SqliteTransactions, sqliteTransactionsOf } from './sqlite-transactions.ts';
import { StoreError } from './store-error.ts';
import type { ChangeKind, MetricSourceRecord, OutboxItemInput, StoreDialect } from './types.ts';

/** The store's tables by their SQL names, as the hot-path statements see them. */
export type TableDB = InferKyselyDB<
  | typeof TrainingJobSchema
  | typeof TrainingMetricSchema
  | typeof BatchMetricBlockSchema
  | typeof OutboxItemSchema
  | typeof StoreChangeSchema
  | typeof MetricSourceSchema,
  { tableNamingStrategy: 'table'; columnNamingStrategy: 'column' }
>;

export type TableKysely = Kysely<TableDB>;
export type TableTransaction = Transaction<TableDB>;

/**
 * How a dialect stores the values MikroORM's types convert: dates (SQLite: epoch milliseconds;
 * PostgreSQL: timestamptz), JSON (text on SQLite, jsonb on PostgreSQL, which node-postgres parses
 * on read) and 64-bit integers (node-postgres reads int8 as a string).
 */
export interface ColumnValues {
  date(value: Date): never;
  json(value: unknown): never;
  readDate(value: unknown): Date;
  readJson(value: unknown): unknown;
  readInt(value: unknown): number;
}

/** The column values of `dialect` (see {@link ColumnValues}). */
export function columnValues(dialect: StoreDialect): ColumnValues {
  const json = (value: unknown) => JSON.stringify(value) as never;
  const readInt = (value: unknown) => Number(value);
  return dialect === 'postgresql'
    ? {
        date: (value) => value.toISOString() as never,
        // MikroORM's type parsers keep timestamptz as PostgreSQL's text ('2026-12-02 19:15:16.123+00').
        readDate: (value) => (value instanceof Date ? value : new Date(String(value))),
        json,
        readJson: (value) => value,
        readInt,
      }
    : {
        date: (value) => value.getTime() as never,
        readDate: (value) => new Date(Number(value)),
        json,
        readJson: (value) => (typeof value === 'string' ? JSON.parse(value) : value),
        readInt,
      };
}

/**
 * A reader of an entity's table row (column names, stored values) into its properties' values, as
 * MikroORM's conversion would give them, derived once from the entity's metadata: what a read on the
 * table view returns can be handed to the same record mappers as an entity.
 */
export function entityRowReader(
  orm: MikroORM,
  entity: EntityClass<object>,
  values: ColumnValues,
): (row: Record<string, unknown>) => Record<string, unknown> {
  const columns = orm
    .getMetadata()
    .get(entity)
    .props.filter((prop) => prop.kind === 'scalar' || prop.kind === 'm:1')
    .map((prop) => {
      const read =
        prop.runtimeType === 'Date'
          ? values.readDate
          : prop.customType instanceof JsonType
            ? values.readJson
            : prop.customType instanceof BigIntType || prop.customType instanceof DoubleType
              ? values.readInt
              : undefined;
      return [prop.name, prop.fieldNames[0]!, read] as const;
    });
  return (row) => {
    const out: Record<string, unknown> = {};
    for (const [name, field, read] of columns) {
      const value = row[field];
      out[name] = value == null || read === undefined ? value : read(value);
    }
    return out;
  };
}

/** Most outbox rows per INSERT on the hot path (several INSERTs for more). */
const OUTBOX_ROWS_PER_INSERT = 64;

/** The job row as an epoch report needs it, locked for the rest of the transaction. */
export interface JobForEpoch {
  /**
   * PostgreSQL: the row version read (its `xmin`, the transaction that wrote it). Every write of
   * the row — a report, an end, a resume — makes a new version, so a report decided from this one
   * may be written later only while it is still the row's version (see {@link HotPath.writeEpochReport}).
   */
  version?: string;
  status: string;
  epochsReported: number;
  primaryMetric: string;
  bestEpoch: number | null;
  bestValue: number | null;
}

/** An epoch row to upsert (a report). */
export interface EpochRow {
  jobId: string;
  epoch: number;
  loss: number | null;
  accuracy: number | null;
  learningRate: number | null;
  extraMetrics: EncodedMetricMap;
  nonFinite: string[];
  timestamp: Date;
}

/** An epoch report's writes, decided from the job row's `version` (see {@link HotPath.writeEpochReport}). */
export interface EpochReport {
  row: EpochRow;
  version: string;
  best: { epoch: number; value: number } | null;
  updatedAt: Date;
  outbox: readonly OutboxItemInput[];
  nowMs: number;
}

/** A feed row as read. */
export interface ChangeRow {
  seq: number;
  jobId: string;
  kind: ChangeKind;
  ref: number | null;
}

/** A batch block's columns as read (blobs as stored). */
export interface BlockRow {
  jobId: string;
  epoch: number;
  names: string[];
  steps: Uint8Array;
  values: Uint8Array;
}

/** A stored batch block a write's step range meets, as the write reads it back (blobs as stored). */
export interface OverlapBlockRow {
  id: number;
  epoch: number;
  names: string[];
  steps: Uint8Array;
  values: Uint8Array;
  receivedAtMs: number | null;
}

/** A batch block's row to write: its step bounds, and its steps and values packed little-endian. */
export interface BlockInsert {
  epoch: number;
  firstStep: bigint;
  lastStep: bigint;
  names: readonly string[];
  steps: Uint8Array;
  values: Uint8Array;
}

/** Most batch blocks per INSERT: keeps every statement far below SQLite's 32766 bound parameters. */
const BLOCKS_PER_INSERT = 500;

/** A batch append that meets no stored block, as {@link HotPath.writeBatchAppend} writes it. */
export interface BatchAppend {
  jobId: string;
  /** The write's step range: no stored block of the job may meet it. */
  firstStep: bigint;
  lastStep: bigint;
  /** At most {@link BLOCKS_PER_INSERT}. */
  blocks: readonly BlockInsert[];
  receivedAtMs: number;
  /** One outbox reference per block of this kind; none when undefined. */
  outboxKind: string | undefined;
  nowMs: number;
}

/** Most blocks {@link HotPath.writeBatchAppend} takes in its one statement. */
export const BLOCKS_PER_STATEMENT = BLOCKS_PER_INSERT;

/**
 * SQLite: the hot paths' usual statements written out, run with bound parameters through the same
 * Kysely transaction (`CompiledQuery.raw` + `executeQuery`): building and compiling them per call was
 * about a third of the sidecar's busy CPU in an EndEpoch. The texts are what the Kysely builders below
 * compile to (the builders still serve PostgreSQL and the rare shapes: many rows), so the driver's
 * statement cache keeps one prepared statement per text; `hot-path.spec.ts` pins each.
 */
export const SQLITE_SQL = {
  lockJobForEpoch:
    'select "j"."status", "j"."epochs_reported", "j"."primary_metric", "j"."best_epoch", "j"."best_value", ' +
    '"m"."id" as "epoch_row", "m"."timestamp", "m"."extra_metrics" from "training_job" as "j" ' +
    'left join "training_metric" as "m" on "m"."job_id" = "j"."job_id" and "m"."epoch" = ? where "j"."job_id" = ?',
  upsertEpoch:
    'insert into "training_metric" ("job_id", "epoch", "loss", "accuracy", "learning_rate", "extra_metrics", ' +
    '"non_finite", "timestamp") values (?, ?, ?, ?, ?, ?, ?, ?) on conflict ("job_id", "epoch") do update set ' +
    '"loss" = "excluded"."loss", "accuracy" = "excluded"."accuracy", "learning_rate" = "excluded"."learning_rate", ' +
    '"extra_metrics" = "excluded"."extra_metrics", "non_finite" = "excluded"."non_finite", ' +
    '"timestamp" = "excluded"."timestamp"',
  updateJobAfterEpoch:
    'update "training_job" set "epochs_reported" = "epochs_reported" + ?, "best_epoch" = ?, "best_value" = ?, ' +
    '"updated_at" = ? where "job_id" = ?',
  /** One outbox row: a payload (`block_id` null) or a block reference (`payload` null). */
  insertOutbox:
    'insert into "outbox_item" ("job_id", "kind", "payload", "block_id", "created_at_ms", "attempts", ' +
    '"next_attempt_at_ms", "last_error", "parked_error") values (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  appendChange: 'insert into "store_change" ("job_id", "kind", "ref") values (?, ?, ?)',
  lockJobForBatch:
    'select "j"."status", "b"."id", "b"."epoch", "b"."names", "b"."steps", "b"."values", "b"."received_at_ms" ' +
    'from "training_job" as "j" left join "batch_metric_block" as "b" on "b"."job_id" = "j"."job_id" ' +
    'and "b"."last_step" >= ? and "b"."first_step" <= ? where "j"."job_id" = ?',
  /** The block insert of `n` rows ({@link SQLITE_BLOCKS_BY_TEXT} at most). */
  insertBlocks: (n: number) =>
    'insert into "batch_metric_block" ("job_id", "epoch", "first_step", "last_step", "names", "steps", ' +
    `"values", "received_at_ms") values ${Array(n).fill('(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')} returning "id"`,
} as const;

/**
 * PostgreSQL: the epoch report's call written out (see {@link HotPath.epochReportQuery}); one result
 * column, `{epochs_reported, row version, 1 if new}` or NULL (see the migration `save_epoch_function`).
 */
export const PG_SQL = {
  saveEpoch:
    'select tc_save_epoch($1::varchar, $2::int, $3::xid, $4::int, $5::float8, $6::timestamptz, $7::float8, ' +
    '$8::float8, $9::float8, $10::jsonb, $11::jsonb, $12::timestamptz, $13::jsonb, $14::bigint, $15::bigint) as saved',
  /** See {@link HotPath.writeEpochBegin}. */
  beginEpoch: 'select tc_begin_epoch($1::varchar, $2::int, $3::timestamptz) as status',
  /** See {@link HotPath.writeBatchAppend}; the last argument (the feed lock) is unused since 2026-12-07. */
  appendBatch:
    'select job_status, block_ref from tc_append_batch($1::varchar, $2::bigint, $3::bigint, $4::int[], ' +
    '$5::bigint[], $6::bigint[], $7::jsonb[], $8::bytea[], $9::bytea[], $10::bigint, $11::varchar, $12::bigint, ' +
    'null::bigint)',
} as const;

/** A row of {@link SQLITE_SQL.lockJobForEpoch} (and of its builder). */
interface LockedEpochRow {
  version?: string;
  status: string;
  epochs_reported: number;
  primary_metric: string;
  best_epoch: number | null;
  best_value: number | null;
  epoch_row: unknown;
  timestamp: unknown;
  extra_metrics: unknown;
}

/** A row of {@link SQLITE_SQL.lockJobForBatch} (and of its builder). */
interface LockedBatchRow {
  status: string;
  id: unknown;
  epoch: number | null;
  names: unknown;
  steps: unknown;
  values: unknown;
  received_at_ms: unknown;
}

/** Most blocks a batch append inserts with the written-out statement (more: the builder). */
export const SQLITE_BLOCKS_BY_TEXT = 8;

/** The texts of {@link SQLITE_SQL.insertBlocks}, 1 to {@link SQLITE_BLOCKS_BY_TEXT} rows, made once. */
const SQLITE_INSERT_BLOCKS = Array.from({ length: SQLITE_BLOCKS_BY_TEXT + 1 }, (_, n) =>
  SQLITE_SQL.insertBlocks(n),
);

/** A new outbox row, due now, never tried (`payload` as the column stores it). */
function newOutboxRow(jobId: string, kind: string, payload: unknown, blockId: number | null, nowMs: number) {
  return {
    job_id: jobId,
    kind,
    payload,
    block_id: blockId,
    created_at_ms: nowMs,
    attempts: 0,
    next_attempt_at_ms: nowMs,
    last_error: null,
    parked_error: null,
  };
}

/** The parameters of `SQLITE_SQL.insertOutbox`, whose columns are {@link newOutboxRow}'s in its order. */
function sqliteOutboxRow(
  jobId: string,
  kind: string,
  payload: unknown,
  blockId: number | null,
  nowMs: number,
) {
  return Object.values(newOutboxRow(jobId, kind, payload, blockId, nowMs));
}

/**
 * Runs `write` in one transaction of `tables`; on SQLite, `write`'s written-out statements go straight
 * to the transaction's connection while it runs (sqlite-transactions.ts).
 */
export function runTableTransaction<T>(
  tables: TableKysely,
  sqlite: SqliteTransactions | undefined,
  write: (trx: TableTransaction) => Promise<T>,
): Promise<T> {
  return tables.transaction().execute((trx) => (sqlite ? sqlite.within(trx, () => write(trx)) : write(trx)));
}

/** The hot-path statements of one dialect. */
export class HotPath {
  readonly #values: ColumnValues;
  readonly #dialect: StoreDialect;
  readonly #jobRow: (row: Record<string, unknown>) => Record<string, unknown>;
  readonly #epochRow: (row: Record<string, unknown>) => Record<string, unknown>;
  readonly #transactions: SqliteTransactions | undefined;

  constructor(dialect: StoreDialect, orm: MikroORM) {
    this.#dialect = dialect;
    this.#transactions = dialect === 'sqlite' ? sqliteTransactionsOf(orm) : undefined;
    this.#values = columnValues(dialect);
    this.#jobRow = entityRowReader(orm, TrainingJob, this.#values);
    this.#epochRow = entityRowReader(orm, TrainingMetric, this.#values);
  }

  /**
   * Runs a written-out statement with its parameters in `db` (no query built or compiled); on SQLite,
   * inside a running transaction of the store's, straight on its connection (sqlite-transactions.ts).
   */
  #run<R>(db: TableKysely, text: string, parameters: readonly unknown[]): Promise<QueryResult<R>> {
    const query = CompiledQuery.raw(text, parameters as unknown[]);
    const connection = this.#transactions?.connectionOf(db);
    return connection ? connection.executeQuery<R>(query) : db.executeQuery<R>(query);
  }

  /**
   * A job's row as its entity's properties (see {@link entityRowReader}): the read after every write
   * and the watch streams' job reads, without hydrating an entity.
   */
  async jobById(db: TableKysely, jobId: string): Promise<Record<string, unknown> | undefined> {
    const row = await db
      .selectFrom('training_job')
      .selectAll()
      .where('job_id', '=', jobId)
      .executeTakeFirst();
    return row && this.#jobRow(row as Record<string, unknown>);
  }

  /** A reported epoch's row as its entity's properties (the watch streams read one per epoch event). */
  async reportedEpoch(
    db: TableKysely,
    jobId: string,
    epoch: number,
  ): Promise<Record<string, unknown> | undefined> {
    const row = await db
      .selectFrom('training_metric')
      .selectAll()
      .where('job_id', '=', jobId)
      .where('epoch', '=', epoch)
      .where('timestamp', 'is not', null)
      .executeTakeFirst();
    return row && this.#epochRow(row as Record<string, unknown>);
  }

  /**
   * A report's check that the job runs, its row locked FOR SHARE until the commit on PostgreSQL (an
   * end waits for the report, reports of one job do not wait for each other); SQLite's BEGIN IMMEDIATE
   * already holds the database. Undefined: no such job.
   */
  async lockJobShared(trx: TableTransaction, jobId: string): Promise<string | undefined> {
    let query = trx.selectFrom('training_job').select('status').where('job_id', '=', jobId);
    if (this.#dialect === 'postgresql') query = query.forShare();
    return (await query.executeTakeFirst())?.status;
  }

  /**
   * The job's status and best epoch, the row locked until the commit (PostgreSQL: FOR NO KEY UPDATE,
   * the lock an UPDATE of the row takes, which leaves inserts that reference the job free; SQLite's
   * BEGIN IMMEDIATE already holds the database's write lock), so a concurrent EndTraining or report of
   * the same job on any sidecar waits for this transaction, and this one decides from the truth; and,
   * in the same statement, whether the epoch is reported already and its stored metrics.
   */
  async lockJobForEpoch(
    trx: TableTransaction,
    jobId: string,
    epoch: number,
  ): Promise<
    | { job: JobForEpoch; previous: { reported: boolean; extraMetrics: EncodedMetricMap } | undefined }
    | undefined
  > {
    if (this.#dialect === 'sqlite') {
      const row = (await this.#run<LockedEpochRow>(trx, SQLITE_SQL.lockJobForEpoch, [epoch, jobId])).rows[0];
      return row && this.#lockedEpoch(row);
    }
    const query = trx
      .selectFrom('training_job as j')
      .leftJoin('training_metric as m', (join) =>
        join.onRef('m.job_id', '=', 'j.job_id').on('m.epoch', '=', epoch),
      )
      .select([
        'j.status',
        'j.epochs_reported',
        'j.primary_metric',
        'j.best_epoch',
        'j.best_value',
        'm.id as epoch_row',
        'm.timestamp',
        'm.extra_metrics',
      ])
      .where('j.job_id', '=', jobId);
    const row = await query
      .$if(this.#dialect === 'postgresql', (q) =>
        q.select(sql<string>`j.xmin::text`.as('version')).forNoKeyUpdate('j'),
      )
      .executeTakeFirst();
    return row && this.#lockedEpoch(row);
  }

  #lockedEpoch(row: LockedEpochRow) {
    return {
      job: {
        ...(row.version !== undefined && { version: row.version }),
        status: row.status,
        epochsReported: row.epochs_reported,
        primaryMetric: row.primary_metric,
        bestEpoch: row.best_epoch ?? null,
        bestValue: row.best_value ?? null,
      },
      previous:
        row.epoch_row == null
          ? undefined
          : {
              reported: row.timestamp != null,
              extraMetrics: this.#values.readJson(row.extra_metrics) as EncodedMetricMap,
            },
    };
  }

  /** The stored metrics of every reported epoch but `except` (the best-epoch rule's slow case). */
  async otherEpochMetrics(
    trx: TableKysely,
    jobId: string,
    except: number,
  ): Promise<Array<{ epoch: number; extraMetrics: EncodedMetricMap }>> {
    const rows = await trx
      .selectFrom('training_metric')
      .select(['epoch', 'extra_metrics'])
      .where('job_id', '=', jobId)
      .where('timestamp', 'is not', null)
      .where('epoch', '<>', except)
      .execute();
    return rows.map((row) => ({
      epoch: row.epoch,
      extraMetrics: this.#values.readJson(row.extra_metrics) as EncodedMetricMap,
    }));
  }

  /**
   * A reported epoch's stored values after its key (loss, accuracy, learning rate, the metrics, the
   * non-finite names, the timestamp), encoded, in the column order of {@link SQLITE_SQL.upsertEpoch}
   * and of {@link PG_SQL.saveEpoch}'s parameters.
   */
  #epochValues(row: EpochRow): unknown[] {
    const v = this.#values;
    return [
      row.loss,
      row.accuracy,
      row.learningRate,
      v.json(row.extraMetrics),
      v.json(row.nonFinite),
      v.date(row.timestamp),
    ];
  }

  /** Upserts a reported epoch (keeps `began_at`). */
  async upsertEpoch(trx: TableTransaction, row: EpochRow): Promise<void> {
    const v = this.#values;
    if (this.#dialect === 'sqlite') {
      await this.#run(trx, SQLITE_SQL.upsertEpoch, [row.jobId, row.epoch, ...this.#epochValues(row)]);
      return;
    }
    await trx
      .insertInto('training_metric')
      .values({
        job_id: row.jobId,
        epoch: row.epoch,
        loss: row.loss,
        accuracy: row.accuracy,
        learning_rate: row.learningRate,
        extra_metrics: v.json(row.extraMetrics),
        non_finite: v.json(row.nonFinite),
        timestamp: v.date(row.timestamp),
      } as never)
      .onConflict((oc) =>
        oc.columns(['job_id', 'epoch']).doUpdateSet((eb) => ({
          loss: eb.ref('excluded.loss'),
          accuracy: eb.ref('excluded.accuracy'),
          learning_rate: eb.ref('excluded.learning_rate'),
          extra_metrics: eb.ref('excluded.extra_metrics'),
          non_finite: eb.ref('excluded.non_finite'),
          timestamp: eb.ref('excluded.timestamp'),
        })),
      )
      .execute();
  }

  /** The job's counters after an epoch report. */
  async updateJobAfterEpoch(
    trx: TableTransaction,
    jobId: string,
    update: { increment: number; best: { epoch: number; value: number } | null; updatedAt: Date },
  ): Promise<void> {
    if (this.#dialect === 'sqlite') {
      await this.#run(trx, SQLITE_SQL.updateJobAfterEpoch, [
        update.increment,
        update.best?.epoch ?? null,
        update.best?.value ?? null,
        this.#values.date(update.updatedAt),
        jobId,
      ]);
      return;
    }
    await trx
      .updateTable('training_job')
      .set((eb) => ({
        epochs_reported: eb('epochs_reported', '+', update.increment),
        best_epoch: update.best?.epoch ?? null,
        best_value: update.best?.value ?? null,
        updated_at: this.#values.date(update.updatedAt),
      }))
      .where('job_id', '=', jobId)
      .execute();
  }

  /**
   * PostgreSQL: an epoch report's writes, decided from the job row's `version` (see
   * {@link JobForEpoch.version}), in one call of `tc_save_epoch` (installed by the migration
   * `save_epoch_function`) — one round trip where the SQLite path spends one per table, and, unlike
   * the same writes sent as one statement of CTEs, whose parsing and planning cost more than running
   * them, plans the server caches per connection (and the call itself, named, is parsed once per
   * connection: {@link PG_SQL}, `storeClient` in postgresql-dialect.ts). The function's UPDATE of the
   * job row writes only while the row is still that version and the job runs (after waiting for the
   * row's lock, PostgreSQL re-checks both on the newest version), and then it writes everything else:
   * the epoch upsert, the job's count, best
   * and `updatedAt` (in that UPDATE), the outbox rows (unless the epoch was reported with exactly these
   * metrics: jsonb equality, as `sameMetrics` compares the encoded maps) and the feed row (see
   * {@link HotPath.appendChanges}). Undefined: the decision is stale or the job
   * ended, nothing was written — read again under the row's lock. Autocommitted from a version read
   * earlier, it is the report's whole transaction; inside the locking transaction it cannot miss.
   */
  async writeEpochReport(
    db: TableKysely,
    report: EpochReport,
  ): Promise<{ epochsReported: number; version: string; isNew: boolean } | undefined> {
    const query = this.epochReportQuery(report);
    const out = (await this.#run<{ saved: unknown[] | null }>(db, query.sql, query.parameters)).rows[0]
      ?.saved;
    if (!out) return undefined;
    return { epochsReported: Number(out[0]), version: String(out[1]), isNew: Number(out[2]) === 1 };
  }

  /**
   * The statement of {@link writeEpochReport}: {@link PG_SQL.saveEpoch} and its parameters, written out
   * like SQLite's texts (building and compiling the call took ~20 µs of the sidecar's CPU per report).
   */
  epochReportQuery(report: EpochReport): { sql: string; parameters: readonly unknown[] } {
    const v = this.#values;
    const { row } = report;
    const outbox = report.outbox.map((item) => ({ kind: item.kind, payload: item.payload ?? null }));
    return {
      sql: PG_SQL.saveEpoch,
      parameters: [
        row.jobId,
        row.epoch,
        report.version,
        report.best?.epoch ?? null,
        report.best?.value ?? null,
        v.date(report.updatedAt),
        ...this.#epochValues(row),
        v.json(outbox),
        report.nowMs,
        // p_feed_lock: unused since migration feed_ordered_by_transaction; kept for older sidecars.
        null,
      ],
    };
  }

  /**
   * PostgreSQL: an epoch begin in one call of `tc_begin_epoch` (installed by the migration
   * `begin_epoch_function`; a function for the reason {@link writeEpochReport} calls one), no
   * transaction around it: the job row read FOR SHARE (an end waits for it, or it reads the ended
   * row: READ COMMITTED re-reads a row updated while it waited) and the begin written only while the
   * job runs. The job's status; undefined: no such job.
   */
  async writeEpochBegin(
    db: TableKysely,
    jobId: string,
    epoch: number,
    at: Date,
  ): Promise<string | undefined> {
    const rows = await this.#run<{ status: string | null }>(db, PG_SQL.beginEpoch, [
      jobId,
      epoch,
      this.#values.date(at),
    ]);
    return rows.rows[0]?.status ?? undefined;
  }

  /** Records when an epoch began; a row created here stays hidden until the epoch is reported. */
  async upsertEpochBegin(trx: TableTransaction, jobId: string, epoch: number, at: Date): Promise<void> {
    const v = this.#values;
    await trx
      .insertInto('training_metric')
      .values({
        job_id: jobId,
        epoch,
        loss: null,
        accuracy: null,
        learning_rate: null,
        extra_metrics: v.json({}),
        non_finite: v.json([]),
        timestamp: null,
        began_at: v.date(at),
      } as never)
      .onConflict((oc) =>
        oc.columns(['job_id', 'epoch']).doUpdateSet((eb) => ({ began_at: eb.ref('excluded.began_at') })),
      )
      .execute();
  }

  /**
   * Records a job's metric renames and unit changes once each (the table's uniqueness decides, so two
   * sidecars seeing the same one record it once) and returns those that were new.
   */
  async recordMetricSources(
    trx: TableTransaction,
    jobId: string,
    sources: readonly MetricSourceRecord[],
  ): Promise<MetricSourceRecord[]> {
    const added: MetricSourceRecord[] = [];
    for (let i = 0; i < sources.length; i += OUTBOX_ROWS_PER_INSERT) {
      const rows = await trx
        .insertInto('metric_source')
        .values(
          sources
            .slice(i, i + OUTBOX_ROWS_PER_INSERT)
            .map(({ name, reported, scale }) => ({ job_id: jobId, name, reported, scale })) as never,
        )
        .onConflict((oc) => oc.columns(['job_id', 'name', 'reported', 'scale']).doNothing())
        .returning(['name', 'reported', 'scale'])
        .execute();
      for (const { name, reported, scale } of rows) added.push({ name, reported, scale: Number(scale) });
    }
    return added;
  }

  /** Payload outbox rows of one job, due at once (block references are written by appendBatchBlocks). */
  async insertOutbox(
    trx: TableTransaction,
    jobId: string,
    items: readonly OutboxItemInput[],
    nowMs: number,
  ): Promise<void> {
    const v = this.#values;
    const payloadOf = (item: OutboxItemInput) =>
      item.payload === undefined || item.payload === null ? null : v.json(item.payload);
    if (this.#dialect === 'sqlite' && items.length === 1) {
      const item = items[0]!;
      await this.#run(
        trx,
        SQLITE_SQL.insertOutbox,
        sqliteOutboxRow(jobId, item.kind, payloadOf(item), null, nowMs),
      );
      return;
    }
    for (let i = 0; i < items.length; i += OUTBOX_ROWS_PER_INSERT) {
      await trx
        .insertInto('outbox_item')
        .values(
          items
            .slice(i, i + OUTBOX_ROWS_PER_INSERT)
            .map((item) => newOutboxRow(jobId, item.kind, payloadOf(item), null, nowMs)) as never,
        )
        .execute();
    }
  }

  /**
   * Appends feed rows. No lock on either dialect: SQLite has one writer at a time, and PostgreSQL's
   * seqs follow the writing transaction's id (`tc_feed_seq()`, the column's default), which readers
   * never pass while the transaction runs (see {@link changesAfter}).
   */
  async appendChanges(
    trx: TableTransaction,
    jobId: string,
    kind: ChangeKind,
    refs: readonly (number | null)[],
  ): Promise<void> {
    if (refs.length === 0) return;
    checkFeedRows(jobId, refs.length);
    if (this.#dialect === 'sqlite' && refs.length === 1) {
      await this.#run(trx, SQLITE_SQL.appendChange, [jobId, kind, refs[0]]);
      return;
    }
    for (let i = 0; i < refs.length; i += OUTBOX_ROWS_PER_INSERT * 8) {
      await trx
        .insertInto('store_change')
        .values(
          refs.slice(i, i + OUTBOX_ROWS_PER_INSERT * 8).map((ref) => ({ job_id: jobId, kind, ref })) as never,
        )
        .execute();
    }
  }

  /**
   * The cheapest write that really commits, for health probes. SQLite: the header's application id
   * rewritten with its own value (one page into the WAL). PostgreSQL: a transaction id assigned and
   * committed (a commit record flushed to the WAL).
   */
  async probeWrite(db: TableKysely): Promise<void> {
    if (this.#dialect === 'postgresql') await sql`select txid_current()`.execute(db);
    else await sql.raw(`PRAGMA application_id = ${SIDECAR_APPLICATION_ID}`).execute(db);
  }

  /**
   * The feed after a seq, of every job or of one. On PostgreSQL only below `tc_feed_horizon()`: the
   * first seq a transaction still running in the query's snapshot may write. Rows below it are final
   * (their transactions have ended), so a reader that moves past them never misses one committed later.
   */
  async changesAfter(
    db: TableKysely,
    query: { afterSeq: number; jobId?: string; limit: number },
  ): Promise<ChangeRow[]> {
    let q = db
      .selectFrom('store_change')
      .select(['seq', 'job_id', 'kind', 'ref'])
      .where('seq', '>', query.afterSeq);
    if (this.#dialect === 'postgresql') q = q.where('seq', '<', sql<number>`tc_feed_horizon()`);
    if (query.jobId !== undefined) q = q.where('job_id', '=', query.jobId);
    const rows = await q.orderBy('seq', 'asc').limit(query.limit).execute();
    const readInt = this.#values.readInt;
    return rows.map((r) => ({
      seq: readInt(r.seq),
      jobId: r.job_id as unknown as string,
      kind: r.kind as ChangeKind,
      ref: r.ref == null ? null : readInt(r.ref),
    }));
  }

  /**
   * The feed's head: the seq a reader may start after and miss nothing that follows. The newest row on
   * SQLite; on PostgreSQL just under the horizon (see {@link changesAfter}): every row below it is final
   * and every transaction that may still write numbers its rows above it.
   */
  async headSeq(db: TableKysely): Promise<number> {
    const row =
      this.#dialect === 'postgresql'
        ? await db.selectNoFrom(sql<string>`greatest(tc_feed_horizon() - 1, 0)`.as('head')).executeTakeFirst()
        : await db
            .selectFrom('store_change')
            .select((eb) => eb.fn.max('seq').as('head'))
            .executeTakeFirst();
    return row?.head == null ? 0 : this.#values.readInt(row.head);
  }

  /**
   * The seq of the `rows`-th feed row after `afterSeq` (undefined: fewer rows follow), or with
   * `fromHead` the seq of the `rows`-th newest row: positions counted in rows, since seqs have gaps
   * (PostgreSQL's are 65,536 apart per transaction).
   */
  async changeSeqAt(
    db: TableKysely,
    at: { afterSeq: number; rows: number } | { fromHead: true; rows: number },
  ): Promise<number | undefined> {
    const rows = Math.max(1, Math.floor(at.rows));
    let q = db.selectFrom('store_change').select('seq');
    q = 'afterSeq' in at ? q.where('seq', '>', at.afterSeq).orderBy('seq', 'asc') : q.orderBy('seq', 'desc');
    const row = await q
      .offset(rows - 1)
      .limit(1)
      .executeTakeFirst();
    return row === undefined ? undefined : this.#values.readInt(row.seq);
  }

  /** A batch block by its row id. */
  async blockById(db: TableKysely, id: number): Promise<BlockRow | undefined> {
    const row = await db
      .selectFrom('batch_metric_block')
      .select(['job_id', 'epoch', 'names', 'steps', 'values'])
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      jobId: row.job_id as unknown as string,
      epoch: row.epoch,
      names: this.#values.readJson(row.names) as string[],
      steps: row.steps as unknown as Uint8Array,
      values: row.values as unknown as Uint8Array,
    };
  }

  // ---- A batch append (Store.appendBatchBlocks): every ReportBatchMetrics stream runs these.

  /**
   * A batch append's check that the job runs, its row locked as {@link lockJobShared} locks it, and in
   * the same statement the job's stored blocks whose step range meets `[firstStep, lastStep]` (only
   * those can hold the write's points; see batch-points.ts). Undefined: no such job.
   */
  async lockJobForBatch(
    trx: TableTransaction,
    jobId: string,
    range: { firstStep: bigint; lastStep: bigint },
  ): Promise<{ status: string; overlapping: OverlapBlockRow[] } | undefined> {
    const rows =
      this.#dialect === 'sqlite'
        ? (
            await this.#run<LockedBatchRow>(trx, SQLITE_SQL.lockJobForBatch, [
              range.firstStep,
              range.lastStep,
              jobId,
            ])
          ).rows
        : await this.#lockJobForBatchQuery(trx, jobId, range).execute();
    const first = rows[0];
    if (!first) return undefined;
    const v = this.#values;
    const overlapping: OverlapBlockRow[] = [];
    for (const row of rows) {
      if (row.id == null) continue;
      overlapping.push({
        id: v.readInt(row.id),
        epoch: row.epoch!,
        names: v.readJson(row.names) as string[],
        steps: row.steps as unknown as Uint8Array,
        values: row.values as unknown as Uint8Array,
        receivedAtMs: row.received_at_ms == null ? null : v.readInt(row.received_at_ms),
      });
    }
    return { status: first.status, overlapping };
  }

  #lockJobForBatchQuery(
    trx: TableTransaction,
    jobId: string,
    range: { firstStep: bigint; lastStep: bigint },
  ) {
    let query = trx
      .selectFrom('training_job as j')
      .leftJoin('batch_metric_block as b', (join) =>
        join
          .onRef('b.job_id', '=', 'j.job_id')
          .on('b.last_step', '>=', range.firstStep as never)
          .on('b.first_step', '<=', range.lastStep as never),
      )
      .select(['j.status', 'b.id', 'b.epoch', 'b.names', 'b.steps', 'b.values', 'b.received_at_ms'])
      .where('j.job_id', '=', jobId);
    if (this.#dialect === 'postgresql') query = query.forShare('j');
    return query;
  }

  /** Inserts a job's batch blocks, all received at `receivedAtMs`; their row ids, in order. */
  async insertBlocks(
    trx: TableTransaction,
    jobId: string,
    blocks: readonly BlockInsert[],
    receivedAtMs: number,
  ): Promise<number[]> {
    const v = this.#values;
    if (this.#dialect === 'sqlite' && blocks.length > 0 && blocks.length <= SQLITE_BLOCKS_BY_TEXT) {
      const parameters: unknown[] = [];
      for (const block of blocks) {
        parameters.push(
          jobId,
          block.epoch,
          block.firstStep,
          block.lastStep,
          v.json(block.names),
          block.steps,
          block.values,
          receivedAtMs,
        );
      }
      const { rows } = await this.#run<{ id: unknown }>(
        trx,
        SQLITE_INSERT_BLOCKS[blocks.length]!,
        parameters,
      );
      return rows.map((row) => v.readInt(row.id));
    }
    const ids: number[] = [];
    for (let i = 0; i < blocks.length; i += BLOCKS_PER_INSERT) {
      const rows = await trx
        .insertInto('batch_metric_block')
        .values(
          blocks.slice(i, i + BLOCKS_PER_INSERT).map((block) => ({
            job_id: jobId,
            epoch: block.epoch,
            first_step: block.firstStep,
            last_step: block.lastStep,
            names: v.json(block.names),
            steps: block.steps,
            values: block.values,
            received_at_ms: receivedAtMs,
          })) as never,
        )
        .returning('id')
        .execute();
      for (const row of rows) ids.push(v.readInt(row.id));
    }
    return ids;
  }

  /** Rewrites a stored block with what remains of it (its receipt time stays). */
  async updateBlock(trx: TableTransaction, id: number, block: BlockInsert): Promise<void> {
    await trx
      .updateTable('batch_metric_block')
      .set({
        epoch: block.epoch,
        first_step: block.firstStep,
        last_step: block.lastStep,
        names: this.#values.json(block.names),
        steps: block.steps,
        values: block.values,
      } as never)
      .where('id', '=', id)
      .execute();
  }

  /** Deletes a stored block that kept no point, and the outbox entries that refer to it. */
  async deleteBlock(trx: TableTransaction, id: number): Promise<void> {
    await trx.deleteFrom('outbox_item').where('block_id', '=', id).execute();
    await trx.deleteFrom('batch_metric_block').where('id', '=', id).execute();
  }

  /** The kind of an outbox entry still pending for a block, if any (a rewrite's pieces get one too). */
  async pendingBlockEntryKind(trx: TableTransaction, blockId: number): Promise<string | undefined> {
    const row = await trx
      .selectFrom('outbox_item')
      .select('kind')
      .where('block_id', '=', blockId)
      .executeTakeFirst();
    return row?.kind;
  }

  /**
   * PostgreSQL: a batch append that meets no stored block in one call of `tc_append_batch` (installed
   * by the migration `append_batch_function`; a function for the reason {@link writeEpochReport} calls
   * one), no transaction around it — one round trip where the transactional path spends seven. The
   * job row is read FOR SHARE (an end waits for it, or it reads the ended row: READ COMMITTED re-reads
   * a row updated while it waited); the blocks, their outbox references and their feed rows (see
   * {@link HotPath.appendChanges}) are written only while the job runs
   * and no stored block of the job meets `[firstStep, lastStep]`. Undefined: no such job; `ids` empty
   * while the job runs: a stored block meets the range (take the transactional path, which plans
   * around it).
   */
  async writeBatchAppend(
    db: TableKysely,
    append: BatchAppend,
  ): Promise<{ status: string; ids: number[] } | undefined> {
    checkFeedRows(append.jobId, append.blocks.length);
    const query = this.batchAppendQuery(append);
    const { rows } = await this.#run<{ job_status: string; block_ref: unknown }>(
      db,
      query.sql,
      query.parameters,
    );
    const first = rows[0];
    if (!first) return undefined;
    const readInt = this.#values.readInt;
    return {
      status: first.job_status,
      ids: rows.flatMap((row) => (row.block_ref == null ? [] : [readInt(row.block_ref)])),
    };
  }

  /** The statement of {@link writeBatchAppend}: {@link PG_SQL.appendBatch} and its parameters. */
  batchAppendQuery(append: BatchAppend): { sql: string; parameters: readonly unknown[] } {
    const v = this.#values;
    const { blocks } = append;
    return {
      sql: PG_SQL.appendBatch,
      parameters: [
        append.jobId,
        append.firstStep,
        append.lastStep,
        blocks.map((b) => b.epoch),
        blocks.map((b) => b.firstStep),
        blocks.map((b) => b.lastStep),
        blocks.map((b) => v.json(b.names)),
        blocks.map((b) => b.steps),
        blocks.map((b) => b.values),
        append.receivedAtMs,
        append.outboxKind ?? null,
        append.nowMs,
      ],
    };
  }

  /** Outbox entries referring to blocks (the points stay in `batch_metric_block`), due at once. */
  async insertBlockOutbox(
    trx: TableTransaction,
    jobId: string,
    kind: string,
    blockIds: readonly number[],
    nowMs: number,
  ): Promise<void> {
    if (this.#dialect === 'sqlite' && blockIds.length === 1) {
      await this.#run(trx, SQLITE_SQL.insertOutbox, sqliteOutboxRow(jobId, kind, null, blockIds[0]!, nowMs));
      return;
    }
    for (let i = 0; i < blockIds.length; i += BLOCKS_PER_INSERT) {
      await trx
        .insertInto('outbox_item')
        .values(
          blockIds
            .slice(i, i + BLOCKS_PER_INSERT)
            .map((blockId) => newOutboxRow(jobId, kind, null, blockId, nowMs)) as never,
        )
        .execute();
    }
  }
}

/**
 * Deletes, in one statement over a seq range, the feed rows a later row of the same job, kind and ref
 * supersedes and the rows of blocks or artifacts that are gone (see `Store.compactChanges`). `IS NOT
 * DISTINCT FROM`: `ref` is NULL for job and mlflow rows (the key index serves it on both dialects).
 */
export async function compactChanges(trx: TableTransaction, fromSeq: number, toSeq: number): Promise<number> {
  const result = await sql`delete from store_change where seq >= ${fromSeq} and seq < ${toSeq} and (
    exists (select 1 from store_change later where later.job_id = store_change.job_id
      and later.kind = store_change.kind and later.ref is not distinct from store_change.ref
      and later.seq > store_change.seq)
    or (kind = 'batch' and not exists (select 1 from batch_metric_block b where b.id = store_change.ref))
    or (kind = 'artifact' and not exists (select 1 from artifact a where a.id = store_change.ref)))`.execute(
    trx,
  );
  return Number(result.numAffectedRows ?? 0n);
}

/**
 * The most feed rows one write appends: PostgreSQL numbers a transaction's rows in 16 bits of the seq
 * (migration `feed_ordered_by_transaction`); SQLite keeps the same limit, so both dialects refuse alike.
 */
export const MAX_FEED_ROWS_PER_WRITE = 65_536;

/** Refuses, before anything is written, a write that would append more feed rows than one may. */
export function checkFeedRows(jobId: string, rows: number): void {
  if (rows > MAX_FEED_ROWS_PER_WRITE) throw tooManyFeedRows(jobId, rows);
}

/** The refusal of a write of `rows` feed rows (undefined: the database counted them), nothing stored. */
export function tooManyFeedRows(jobId: string, rows: number | undefined, cause?: unknown): StoreError {
  return new StoreError(
    'too_large',
    `job ${JSON.stringify(jobId)}: this write changes ${rows ?? 'more'} items (batch blocks, or the pieces of ` +
      `stored blocks it cuts) at once, more than the ${MAX_FEED_ROWS_PER_WRITE} one write may; nothing was ` +
      'stored. Send the points in several shorter streams, in blocks of many steps each',
    cause === undefined ? undefined : { cause },
  );
}
