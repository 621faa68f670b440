// The outbox's read queries as Kysely builders over the store's tables; the store runs them (store.ts).
import type { EntityKysely as TypedKysely } from './kysely-db.ts';
import type { OutboxClaimTerms } from './types.ts';

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

/** Per job: entries, oldest creation, a parked error. */
export function statusCountsQuery(db: TypedKysely, v: { jobs: readonly string[] }) {
  return db
    .selectFrom('OutboxItem')
    .select((eb) => [
      'job',
      eb.fn.countAll<number>().as('pending'),
      eb.fn.min('createdAtMs').as('oldest'),
      eb.fn.max('parkedError').as('parked'),
    ])
    .where('job', 'in', v.jobs)
    .groupBy('job');
}

/** The mirror's state in the job row. */
export function mirrorStateQuery(db: TypedKysely, v: { jobId: string }) {
  return db
    .selectFrom('TrainingJob')
    .select(['mlflowExperimentId', 'mlflowRunId', 'mlflowArtifactUri', 'mlflowMetricKeys'])
    .where('jobId', '=', v.jobId);
}

/**
 * How the selection of claimable jobs treats rows another transaction holds. 'skip-locked' (a database
 * with row locks, PostgreSQL: `FOR UPDATE SKIP LOCKED`): sidecars claiming at the same moment each pick
 * other jobs instead of waiting for one another's picks; 'none' (SQLite: no row locks, one writer at a
 * time). Either way the claim itself is a conditional write, so a job is never claimed twice.
 */
export type ClaimLocking = 'none' | 'skip-locked';

/** Jobs whose outbox another owner holds (a live claim). */
function heldByOthers(db: TypedKysely, v: { owner: string; nowMs: number }) {
  return db
    .selectFrom('OutboxClaim')
    .select('job')
    .where('claimedBy', '<>', v.owner)
    .where('claimExpiresAtMs', '>', v.nowMs);
}

/**
 * Jobs `v.owner` may claim: due and not parked (as {@link dueJobsQuery}) and not held by another
 * owner's live claim, `except` left out, oldest due first. With 'skip-locked' the picked head rows stay
 * locked until the claiming transaction ends.
 */
export function claimableJobsQuery(
  db: TypedKysely,
  v: { owner: string; nowMs: number; limit: number; except: readonly string[] },
  locking: ClaimLocking,
) {
  let query = dueJobsQuery(db, v).where('job', 'not in', heldByOthers(db, v));
  if (v.except.length > 0) query = query.where('job', 'not in', v.except);
  return locking === 'skip-locked' ? query.forUpdate().skipLocked() : query;
}

/**
 * Claims `jobs` for `terms.owner` until `nowMs + leaseMs`: one conditional upsert that takes a job
 * only when it has no claim, its claim ran out, or the owner already holds it; returns the jobs won.
 */
export function claimJobsQuery(db: TypedKysely, jobs: readonly string[], terms: OutboxClaimTerms) {
  const expires = terms.nowMs + terms.leaseMs;
  return db
    .insertInto('OutboxClaim')
    .values(jobs.map((job) => ({ job, claimedBy: terms.owner, claimExpiresAtMs: expires })))
    .onConflict((oc) =>
      oc
        .column('job')
        .doUpdateSet({ claimedBy: terms.owner, claimExpiresAtMs: expires })
        .where((eb) =>
          eb.or([
            eb('OutboxClaim.claimExpiresAtMs', '<=', terms.nowMs),
            eb('OutboxClaim.claimedBy', '=', terms.owner),
          ]),
        ),
    )
    .returning('job');
}

/** Renews the owner's claims on `jobs` (one conditional UPDATE); returns the jobs still held. */
export function renewClaimsQuery(db: TypedKysely, jobs: readonly string[], terms: OutboxClaimTerms) {
  return db
    .updateTable('OutboxClaim')
    .set({ claimExpiresAtMs: terms.nowMs + terms.leaseMs })
    .where('claimedBy', '=', terms.owner)
    .where('job', 'in', jobs)
    .returning('job');
}

/** The earliest head, not parked, of a job that no other owner holds. */
export function nextDueForOwnerQuery(db: TypedKysely, v: { owner: string; nowMs: number }) {
  return nextDueQuery(db).where('job', 'not in', heldByOthers(db, v));
}

/**
 * Gives up the owner's claims on those of `jobs` that have nothing to send: no entry left, or a parked
 * head. Returns the jobs released.
 */
export function releaseIdleClaimsQuery(db: TypedKysely, owner: string, jobs: readonly string[]) {
  return db
    .deleteFrom('OutboxClaim')
    .where('claimedBy', '=', owner)
    .where('job', 'in', jobs)
    .where('job', 'not in', heads(db).clearSelect().select('job').where('parkedError', 'is', null))
    .returning('job');
}
