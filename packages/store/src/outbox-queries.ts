// The outbox's read queries, written once as Kysely builders. The store runs them through Kysely
// (store.ts); the outbox reader (outbox-reader.ts) runs the very same queries compiled once into plain
// data by `compileOutboxReaderPlan`, so a reader without MikroORM reads exactly what the store reads.
import type { MikroORM } from '@mikro-orm/core';
import { BatchMetricBlock, OutboxItem, TrainingJob } from './entities.ts';
import type { OutboxReaderPlan } from './portable-query.ts';
import { HotQueryCompiler, type HotQueryDefinition, type TypedKysely } from './precompiled.ts';

/** The first entry of every job that has entries (one index pass over (job_id, id)). */
function heads(db: TypedKysely) {
  return db
    .selectFrom('OutboxItem')
    .select(['job', 'nextAttemptAtMs', 'parkedError', 'id'])
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('OutboxItem')
        .select((e) => e.fn.min('id').as('id'))
        .groupBy('job'),
    );
}

/** Jobs whose first entry is not parked and is due at `nowMs`, oldest due first. */
export function dueJobsQuery(db: TypedKysely, v: { nowMs: number; limit: number }) {
  return heads(db)
    .where('parkedError', 'is', null)
    .where('nextAttemptAtMs', '<=', v.nowMs)
    .orderBy('nextAttemptAtMs')
    .orderBy('id')
    .limit(v.limit);
}

/** The earliest head that is not parked. */
export function nextDueQuery(db: TypedKysely) {
  return heads(db).where('parkedError', 'is', null).orderBy('nextAttemptAtMs').limit(1);
}

/** A job's first entries by id. */
export function peekQuery(db: TypedKysely, v: { job: string; limit: number }) {
  return db.selectFrom('OutboxItem').selectAll().where('job', '=', v.job).orderBy('id').limit(v.limit);
}

/** The block an entry refers to. */
export function blockQuery(db: TypedKysely, v: { id: number }) {
  return db
    .selectFrom('BatchMetricBlock')
    .select(['epoch', 'names', 'steps', 'values', 'receivedAtMs'])
    .where('id', '=', v.id);
}

/** Per job: entries, oldest creation, head id, a parked error. */
export function statusCountsQuery(db: TypedKysely, v: { jobs: readonly string[] }) {
  return db
    .selectFrom('OutboxItem')
    .select((eb) => [
      'job',
      eb.fn.countAll<number>().as('pending'),
      eb.fn.min('createdAtMs').as('oldest'),
      eb.fn.min('id').as('headId'),
      eb.fn.max('parkedError').as('parked'),
    ])
    .where('job', 'in', v.jobs)
    .groupBy('job');
}

/** The heads found by {@link statusCountsQuery}: their last error and next attempt. */
export function statusHeadsQuery(db: TypedKysely, v: { ids: readonly number[] }) {
  return db.selectFrom('OutboxItem').select(['job', 'lastError', 'nextAttemptAtMs']).where('id', 'in', v.ids);
}

/** The mirror's state in the job row. */
export function mirrorStateQuery(db: TypedKysely, v: { jobId: string }) {
  return db
    .selectFrom('TrainingJob')
    .select(['mlflowExperimentId', 'mlflowRunId', 'mlflowArtifactUri', 'mlflowMetricKeys'])
    .where('jobId', '=', v.jobId);
}

// The same queries as definitions for the compiler: which property converts each value, and samples
// for the self-check (distinct values per slot).

const dueJobs: HotQueryDefinition<{ nowMs: number; limit: number }> = {
  name: 'outboxDueJobs',
  slots: { nowMs: [OutboxItem, 'nextAttemptAtMs'], limit: null },
  build: dueJobsQuery,
  samples: [{ nowMs: 1_700_000_000_123, limit: 7 }],
  reads: OutboxItem,
};

const nextDueAtMs: HotQueryDefinition<Record<string, never>> = {
  name: 'outboxNextDueAtMs',
  slots: {},
  build: nextDueQuery,
  samples: [{}],
  reads: OutboxItem,
};

const peek: HotQueryDefinition<{ job: string; limit: number }> = {
  name: 'peekOutbox',
  slots: { job: [OutboxItem, 'job'], limit: null },
  build: peekQuery,
  samples: [{ job: 'job-1', limit: 9 }],
  reads: OutboxItem,
};

const block: HotQueryDefinition<{ id: number }> = {
  name: 'outboxBlock',
  slots: { id: [BatchMetricBlock, 'id'] },
  build: blockQuery,
  samples: [{ id: 42 }],
  reads: BatchMetricBlock,
};

const statusCounts: HotQueryDefinition<{ job: string }> = {
  name: 'outboxStatusCounts',
  slots: { job: [OutboxItem, 'job'] },
  build: (db, v) => statusCountsQuery(db, { jobs: [v.job] }),
  samples: [{ job: 'job-1' }],
  reads: OutboxItem,
};

const statusHead: HotQueryDefinition<{ id: number }> = {
  name: 'outboxStatusHead',
  slots: { id: [OutboxItem, 'id'] },
  build: (db, v) => statusHeadsQuery(db, { ids: [v.id] }),
  samples: [{ id: 43 }],
  reads: OutboxItem,
};

const mirrorState: HotQueryDefinition<{ jobId: string }> = {
  name: 'getMirrorState',
  slots: { jobId: [TrainingJob, 'jobId'] },
  build: mirrorStateQuery,
  samples: [{ jobId: 'job-1' }],
  reads: TrainingJob,
};

/** Compiles the outbox reader's queries (self-checked against the builders; throws if one differs). */
export function compileOutboxReaderPlan(orm: MikroORM): OutboxReaderPlan {
  const compiler = new HotQueryCompiler(orm);
  return {
    dueJobs: compiler.compilePortable(dueJobs),
    nextDueAtMs: compiler.compilePortable(nextDueAtMs),
    peek: compiler.compilePortable(peek),
    block: compiler.compilePortable(block),
    statusCounts: compiler.compilePortable(statusCounts),
    statusHead: compiler.compilePortable(statusHead),
    mirrorState: compiler.compilePortable(mirrorState),
  };
}
