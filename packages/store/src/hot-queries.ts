// The hot-path queries, written once as Kysely builders and compiled once per store (see
// `precompiled.ts`). Each definition lists its values (which entity property converts each one) and
// samples for the self-check that compares the precompiled query with the builder's, run at open.
import type { MikroORM } from '@mikro-orm/core';
import {
  BatchMetricBlock,
  type EncodedMetricMap,
  OutboxItem,
  StoreChange,
  TrainingJob,
  TrainingMetric,
} from './entities.ts';
import {
  columnReader,
  type HotQuery,
  HotQueryCompiler,
  type HotQueryDefinition,
  type SlotTarget,
} from './precompiled.ts';

const T0 = new Date('2026-01-02T03:04:05.678Z');
const T1 = new Date('2026-02-03T04:05:06.789Z');

interface EpochKey extends Record<string, unknown> {
  job: string;
  epoch: number;
}

const epochKeySlots = { job: [TrainingMetric, 'job'], epoch: [TrainingMetric, 'epoch'] } as const;
const epochKeySamples: EpochKey[] = [{ job: 'job-1', epoch: 7 }];

/** Is the epoch reported (timestamp set)? */
const epochState: HotQueryDefinition<EpochKey> = {
  name: 'epochState',
  slots: epochKeySlots,
  build: (db, v) =>
    db
      .selectFrom('TrainingMetric')
      .select(['timestamp'])
      .where('job', '=', v.job)
      .where('epoch', '=', v.epoch),
  samples: epochKeySamples,
};

/** The same, with the stored metrics (to tell a resent, unchanged report). */
const epochStateWithMetrics: HotQueryDefinition<EpochKey> = {
  name: 'epochStateWithMetrics',
  slots: epochKeySlots,
  build: (db, v) =>
    db
      .selectFrom('TrainingMetric')
      .select(['timestamp', 'extraMetrics'])
      .where('job', '=', v.job)
      .where('epoch', '=', v.epoch),
  samples: epochKeySamples,
};

export interface EpochRow extends Record<string, unknown> {
  job: string;
  epoch: number;
  loss: number | null;
  accuracy: number | null;
  learningRate: number | null;
  extraMetrics: EncodedMetricMap;
  nonFinite: string[];
  timestamp: Date;
}

/** Upserts a reported epoch (keeps `beganAt`). */
const epochUpsert: HotQueryDefinition<EpochRow> = {
  name: 'epochUpsert',
  slots: {
    job: [TrainingMetric, 'job'],
    epoch: [TrainingMetric, 'epoch'],
    loss: [TrainingMetric, 'loss'],
    accuracy: [TrainingMetric, 'accuracy'],
    learningRate: [TrainingMetric, 'learningRate'],
    extraMetrics: [TrainingMetric, 'extraMetrics'],
    nonFinite: [TrainingMetric, 'nonFinite'],
    timestamp: [TrainingMetric, 'timestamp'],
  },
  build: (db, v) =>
    db
      .insertInto('TrainingMetric')
      .values({
        job: v.job,
        epoch: v.epoch,
        loss: v.loss,
        accuracy: v.accuracy,
        learningRate: v.learningRate,
        extraMetrics: v.extraMetrics,
        nonFinite: v.nonFinite,
        timestamp: v.timestamp,
      })
      .onConflict((oc) =>
        oc.columns(['job', 'epoch']).doUpdateSet((eb) => ({
          loss: eb.ref('excluded.loss'),
          accuracy: eb.ref('excluded.accuracy'),
          learningRate: eb.ref('excluded.learningRate'),
          extraMetrics: eb.ref('excluded.extraMetrics'),
          nonFinite: eb.ref('excluded.nonFinite'),
          timestamp: eb.ref('excluded.timestamp'),
        })),
      ),
  samples: [
    {
      job: 'job-1',
      epoch: 3,
      loss: 0.25,
      accuracy: 0.5,
      learningRate: 0.001,
      extraMetrics: { loss: 0.25, accuracy: 0.5, learning_rate: 0.001, top5: 'NaN', neg: '-0' },
      nonFinite: ['top5'],
      timestamp: T0,
    },
    {
      job: 'job-2',
      epoch: 0,
      loss: null,
      accuracy: null,
      learningRate: null,
      extraMetrics: {},
      nonFinite: [],
      timestamp: T1,
    },
  ],
};

export interface JobAfterEpoch extends Record<string, unknown> {
  jobId: string;
  /** 1 when the epoch is newly reported, else 0. */
  increment: number;
  bestEpoch: number | null;
  bestValue: number | null;
  updatedAt: Date;
}

/** The job's counters after an epoch report. */
const jobAfterEpoch: HotQueryDefinition<JobAfterEpoch> = {
  name: 'jobAfterEpoch',
  slots: {
    jobId: [TrainingJob, 'jobId'],
    increment: [TrainingJob, 'epochsReported'],
    bestEpoch: [TrainingJob, 'bestEpoch'],
    bestValue: [TrainingJob, 'bestValue'],
    updatedAt: [TrainingJob, 'updatedAt'],
  },
  build: (db, v) =>
    db
      .updateTable('TrainingJob')
      .set((eb) => ({
        epochsReported: eb('epochsReported', '+', v.increment),
        bestEpoch: v.bestEpoch,
        bestValue: v.bestValue,
        updatedAt: v.updatedAt,
      }))
      .where('jobId', '=', v.jobId),
  samples: [
    { jobId: 'job-1', increment: 1, bestEpoch: 4, bestValue: 0.75, updatedAt: T0 },
    { jobId: 'job-2', increment: 0, bestEpoch: null, bestValue: null, updatedAt: T1 },
  ],
};

export interface EpochBegin extends Record<string, unknown> {
  job: string;
  epoch: number;
  extraMetrics: EncodedMetricMap;
  nonFinite: string[];
  beganAt: Date;
}

/** Records when an epoch began; a row created here stays hidden until the epoch is reported. */
const epochBegin: HotQueryDefinition<EpochBegin> = {
  name: 'epochBegin',
  slots: {
    job: [TrainingMetric, 'job'],
    epoch: [TrainingMetric, 'epoch'],
    extraMetrics: [TrainingMetric, 'extraMetrics'],
    nonFinite: [TrainingMetric, 'nonFinite'],
    beganAt: [TrainingMetric, 'beganAt'],
  },
  build: (db, v) =>
    db
      .insertInto('TrainingMetric')
      .values({
        job: v.job,
        epoch: v.epoch,
        loss: null,
        accuracy: null,
        learningRate: null,
        extraMetrics: v.extraMetrics,
        nonFinite: v.nonFinite,
        timestamp: null,
        beganAt: v.beganAt,
      })
      .onConflict((oc) =>
        oc.columns(['job', 'epoch']).doUpdateSet((eb) => ({ beganAt: eb.ref('excluded.beganAt') })),
      ),
  samples: [{ job: 'job-1', epoch: 2, extraMetrics: {}, nonFinite: [], beganAt: T0 }],
};

export interface ChangeInsert extends Record<string, unknown> {
  job: string;
  kind: string;
  ref: number | null;
}

/** Appends one entry to the change feed (inside the write's transaction). */
const changeInsert: HotQueryDefinition<ChangeInsert> = {
  name: 'changeInsert',
  slots: { job: [StoreChange, 'job'], kind: [StoreChange, 'kind'], ref: [StoreChange, 'ref'] },
  build: (db, v) => db.insertInto('StoreChange').values({ job: v.job, kind: v.kind, ref: v.ref }),
  samples: [
    { job: 'job-1', kind: 'epoch', ref: 3 },
    { job: 'job-2', kind: 'job', ref: null },
  ],
};

/** Most outbox rows per precompiled INSERT; more are written as several INSERTs. */
export const OUTBOX_ROWS_PER_INSERT = 8;

/** Values of an outbox INSERT of n rows: `job`, `nowMs`, and `kind${i}` / `payload${i}` per row. */
export type OutboxInsert = Record<string, unknown>;

/** n outbox rows of one job, due at once (payload rows; block references go elsewhere). */
function outboxInsert(n: number): HotQueryDefinition<OutboxInsert> {
  const slots: Record<string, SlotTarget> = {
    job: [OutboxItem, 'job'],
    createdAtMs: [OutboxItem, 'createdAtMs'],
    nextAttemptAtMs: [OutboxItem, 'nextAttemptAtMs'],
  };
  const sample: OutboxInsert = {
    job: 'job-1',
    createdAtMs: 1_700_000_000_001,
    nextAttemptAtMs: 1_700_000_000_002,
  };
  for (let i = 0; i < n; i++) {
    slots[`kind${i}`] = [OutboxItem, 'kind'];
    slots[`payload${i}`] = [OutboxItem, 'payload'];
    sample[`kind${i}`] = `kind-${i}`;
    sample[`payload${i}`] = i % 2 === 0 ? { epoch: i, metrics: { loss: 'NaN', acc: 0.5 + i } } : null;
  }
  return {
    name: `outboxInsert${n}`,
    slots,
    build: (db, v) =>
      db.insertInto('OutboxItem').values(
        Array.from({ length: n }, (_, i) => ({
          job: v.job as string,
          kind: v[`kind${i}`] as string,
          payload: v[`payload${i}`],
          blockId: null,
          createdAtMs: v.createdAtMs as number,
          attempts: 0,
          nextAttemptAtMs: v.nextAttemptAtMs as number,
          lastError: null,
          parkedError: null,
        })),
      ),
    samples: [sample],
  };
}

interface BlockKey extends Record<string, unknown> {
  id: number;
}

/** A batch block by its row id (what a `batch` change refers to): the watch streams read one per change. */
const batchBlockById: HotQueryDefinition<BlockKey> = {
  name: 'batchBlockById',
  slots: { id: [BatchMetricBlock, 'id'] },
  build: (db, v) =>
    db
      .selectFrom('BatchMetricBlock')
      .select(['job', 'epoch', 'names', 'steps', 'values'])
      .where('id', '=', v.id),
  samples: [{ id: 7 }],
};

/** A raw row of {@link batchBlockById}, read as the plugin would. */
export interface BlockColumns {
  job: string;
  epoch: number;
  names: string[];
  steps: Uint8Array;
  values: Uint8Array;
}

interface ChangesAfter extends Record<string, unknown> {
  afterSeq: number;
  limit: number;
}

/** The change feed after a seq (the watch streams' shared reader reads it several times a second). */
const changesAfter: HotQueryDefinition<ChangesAfter> = {
  name: 'changesAfter',
  slots: { afterSeq: [StoreChange, 'seq'], limit: null },
  build: (db, v) =>
    db
      .selectFrom('StoreChange')
      .select(['seq', 'job', 'kind', 'ref'])
      .where('seq', '>', v.afterSeq)
      .orderBy('seq', 'asc')
      .limit(v.limit),
  samples: [{ afterSeq: 41, limit: 256 }],
};

/** The same, of one job (a stream catching up on its own). */
const jobChangesAfter: HotQueryDefinition<ChangesAfter & { job: string }> = {
  name: 'jobChangesAfter',
  slots: { afterSeq: [StoreChange, 'seq'], job: [StoreChange, 'job'], limit: null },
  build: (db, v) =>
    db
      .selectFrom('StoreChange')
      .select(['seq', 'job', 'kind', 'ref'])
      .where('seq', '>', v.afterSeq)
      .where('job', '=', v.job)
      .orderBy('seq', 'asc')
      .limit(v.limit),
  samples: [{ afterSeq: 41, job: 'job-1', limit: 256 }],
};

/** A raw feed row, read as the plugin would. */
export interface ChangeColumns {
  seq: number | bigint;
  job: string;
  kind: string;
  ref: number | bigint | null;
}

/** The store's compiled hot queries. */
export class HotQueries {
  readonly epochState: HotQuery<EpochKey>;
  readonly epochStateWithMetrics: HotQuery<EpochKey>;
  readonly epochUpsert: HotQuery<EpochRow>;
  readonly jobAfterEpoch: HotQuery<JobAfterEpoch>;
  readonly epochBegin: HotQuery<EpochBegin>;
  readonly changeInsert: HotQuery<ChangeInsert>;
  /** `outboxInsert[n - 1]` inserts n rows. */
  readonly outboxInsert: readonly HotQuery<OutboxInsert>[];
  /** Reads a raw row's columns of {@link epochStateWithMetrics} as the plugin would. */
  readonly readTimestamp: (row: Record<string, unknown>) => unknown;
  readonly readExtraMetrics: (row: Record<string, unknown>) => unknown;
  readonly batchBlockById: HotQuery<BlockKey>;
  readonly changesAfter: HotQuery<ChangesAfter>;
  readonly jobChangesAfter: HotQuery<ChangesAfter & { job: string }>;
  readonly readChange: (row: Record<string, unknown>) => ChangeColumns;
  readonly readBlock: (row: Record<string, unknown>) => BlockColumns;

  /** Compiles every hot query and runs the self-check (throws if a query differs from the builder's). */
  constructor(orm: MikroORM) {
    const compiler = new HotQueryCompiler(orm);
    this.epochState = compiler.compile(epochState);
    this.epochStateWithMetrics = compiler.compile(epochStateWithMetrics);
    this.epochUpsert = compiler.compile(epochUpsert);
    this.jobAfterEpoch = compiler.compile(jobAfterEpoch);
    this.epochBegin = compiler.compile(epochBegin);
    this.changeInsert = compiler.compile(changeInsert);
    this.outboxInsert = Array.from({ length: OUTBOX_ROWS_PER_INSERT }, (_, i) =>
      compiler.compile(outboxInsert(i + 1)),
    );
    this.readTimestamp = columnReader(orm, TrainingMetric, 'timestamp');
    this.readExtraMetrics = columnReader(orm, TrainingMetric, 'extraMetrics');
    this.batchBlockById = compiler.compile(batchBlockById);
    this.changesAfter = compiler.compile(changesAfter);
    this.jobChangesAfter = compiler.compile(jobChangesAfter);
    // One reader per column, called directly: the feed reader maps every row of every page.
    const change = (property: keyof ChangeColumns) => columnReader(orm, StoreChange, property);
    const [seq, changeJob, kind, ref] = [change('seq'), change('job'), change('kind'), change('ref')];
    this.readChange = (row) =>
      ({ seq: seq(row), job: changeJob(row), kind: kind(row), ref: ref(row) }) as ChangeColumns;
    const block = (property: keyof BlockColumns) => columnReader(orm, BatchMetricBlock, property);
    const [blockJob, epoch, names, steps, values] = [
      block('job'),
      block('epoch'),
      block('names'),
      block('steps'),
      block('values'),
    ];
    this.readBlock = (row) =>
      ({
        job: blockJob(row),
        epoch: epoch(row),
        names: names(row),
        steps: steps(row),
        values: values(row),
      }) as BlockColumns;
  }
}
