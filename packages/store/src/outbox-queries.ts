// The outbox's read queries as Kysely builders over the store's tables; the store runs them (store.ts).
import type { EntityKysely as TypedKysely } from './kysely-db.ts';

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
