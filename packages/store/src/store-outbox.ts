// The outbox of MLflow writes: queueing, peeking, completing and rescheduling items, and the claims
// of the stores that mirror jobs.
import { KYSELY_OPTIONS, type StoreDB } from './kysely-db.ts';
import {
  blockQuery,
  claimableJobsQuery,
  claimJobsQuery,
  dueJobsQuery,
  nextDueForOwnerQuery,
  nextDueQuery,
  peekQuery,
  releaseIdleClaimsQuery,
  renewClaimsQuery,
  statusCountsQuery,
} from './outbox-queries.ts';
import { outboxLimit, outboxStatuses, peekItems } from './outbox-rows.ts';
import {
  convertError,
  INSERT_CHUNK_ROWS,
  mapDriverError,
  outboxRows,
  type StoreContext,
  type StoreKysely,
  type StoreTransaction,
} from './store-context.ts';
import type { OutboxClaimTerms, OutboxItemInput, OutboxStatus, StoredOutboxItem } from './types.ts';

/** Picks of {@link Store.claimOutboxJobs} when other stores win jobs it picked. */
const CLAIM_ROUNDS = 3;

/** One `mlflow` change per distinct job of the outbox items `ids` (inside `trx`, before they change). */
async function mlflowChangesOfItems(
  ctx: StoreContext,
  trx: StoreTransaction,
  ids: readonly number[],
): Promise<void> {
  const jobs = await trx.selectFrom('OutboxItem').select('job').distinct().where('id', 'in', ids).execute();
  for (const { job } of jobs) ctx.appendChanges(trx, job as unknown as string, 'mlflow');
}

export async function enqueueOutbox(
  ctx: StoreContext,
  jobId: string,
  items: readonly OutboxItemInput[],
  nowMs: number,
): Promise<void> {
  if (items.length === 0) return;
  const em = ctx.em();
  try {
    await em
      .getKysely<StoreDB>(KYSELY_OPTIONS)
      .insertInto('OutboxItem')
      .values(outboxRows(jobId, items, nowMs))
      .execute();
  } catch (error) {
    throw mapDriverError(convertError(em, error), jobId);
  }
}

export async function outboxDueJobs(ctx: StoreContext, nowMs: number, limit: number): Promise<string[]> {
  const rows = await dueJobsQuery(ctx.kysely(), { nowMs, limit: outboxLimit(limit) }).execute();
  return rows.map((r) => r.job as unknown as string);
}

export async function peekOutbox(
  ctx: StoreContext,
  jobId: string,
  limit: number,
  maxBlockPoints = Number.POSITIVE_INFINITY,
): Promise<StoredOutboxItem[]> {
  const db = ctx.kysely();
  const rows = await peekQuery(db, { job: jobId, limit: outboxLimit(limit) }).execute();
  return peekItems(rows, jobId, maxBlockPoints, (id) => blockQuery(db, { id }).executeTakeFirst());
}

export async function completeOutbox(ctx: StoreContext, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return;
  await ctx.transaction('', async (trx) => {
    for (let i = 0; i < ids.length; i += INSERT_CHUNK_ROWS) {
      const chunk = ids.slice(i, i + INSERT_CHUNK_ROWS);
      await mlflowChangesOfItems(ctx, trx, chunk);
      await trx.deleteFrom('OutboxItem').where('id', 'in', chunk).execute();
    }
  });
}

export async function rescheduleOutboxItem(
  ctx: StoreContext,
  id: number,
  update: { attempts: number; nextAttemptAtMs: number; lastError: string },
): Promise<void> {
  await ctx
    .kysely()
    .updateTable('OutboxItem')
    .set({
      attempts: update.attempts,
      nextAttemptAtMs: update.nextAttemptAtMs,
      lastError: update.lastError,
    })
    .where('id', '=', id)
    .execute();
}

export async function parkOutboxItem(ctx: StoreContext, id: number, error: string): Promise<void> {
  await ctx.transaction('', async (trx) => {
    await mlflowChangesOfItems(ctx, trx, [id]);
    await trx.updateTable('OutboxItem').set({ parkedError: error }).where('id', '=', id).execute();
  });
}

export async function retryOutboxNow(
  ctx: StoreContext,
  jobId: string | undefined,
  nowMs: number,
): Promise<number> {
  return ctx.transaction(jobId ?? '', async (trx) => {
    let query = trx
      .updateTable('OutboxItem')
      .set({ parkedError: null, nextAttemptAtMs: nowMs })
      .where((eb) => eb.or([eb('parkedError', 'is not', null), eb('nextAttemptAtMs', '>', nowMs)]));
    if (jobId !== undefined) query = query.where('job', '=', jobId);
    const result = await query.executeTakeFirst();
    const retried = Number(result.numUpdatedRows);
    if (retried > 0 && jobId !== undefined) ctx.appendChanges(trx, jobId, 'mlflow');
    return retried;
  });
}

export async function outboxNextDueAtMs(
  ctx: StoreContext,
  claims?: { owner: string; nowMs: number },
): Promise<number | undefined> {
  const db = ctx.kysely();
  const row = await (claims ? nextDueForOwnerQuery(db, claims) : nextDueQuery(db)).executeTakeFirst();
  return row === undefined ? undefined : Number(row.nextAttemptAtMs);
}

export async function claimOutboxJobs(
  ctx: StoreContext,
  terms: OutboxClaimTerms,
  limit: number,
): Promise<string[]> {
  const wanted = outboxLimit(limit);
  const claim = async (db: StoreKysely | StoreTransaction): Promise<string[]> => {
    const won: string[] = [];
    // Another store may win some of the jobs picked (it picked them too, at the same moment): pick
    // again among those left, a few times, rather than come back with less than there is.
    for (let round = 0; round < CLAIM_ROUNDS && won.length < wanted; round++) {
      const query = claimableJobsQuery(
        db,
        { ...terms, limit: wanted - won.length, except: won },
        ctx.claimLocking,
      );
      const picked = (await query.execute()).map((r) => r.job as unknown as string);
      if (picked.length === 0) break;
      const rows = await claimJobsQuery(db, picked, terms).execute();
      const taken = new Set(rows.map((r) => r.job as unknown as string));
      won.push(...picked.filter((job) => taken.has(job)));
      if (taken.size === picked.length) break;
    }
    return won;
  };
  // Where rows lock, one transaction: the picked heads stay locked (skipped by other claimers) until
  // the claims commit. Without row locks a transaction would add nothing but holding SQLite's write
  // lock across the pick: the conditional upsert alone decides who wins.
  if (ctx.claimLocking === 'none') return claim(ctx.kysely());
  return ctx.transaction('', claim);
}

export async function renewOutboxClaims(
  ctx: StoreContext,
  terms: OutboxClaimTerms,
  jobIds: readonly string[],
): Promise<string[]> {
  if (jobIds.length === 0) return [];
  const db = ctx.kysely();
  const held: string[] = [];
  for (let i = 0; i < jobIds.length; i += INSERT_CHUNK_ROWS) {
    const rows = await renewClaimsQuery(db, jobIds.slice(i, i + INSERT_CHUNK_ROWS), terms).execute();
    for (const row of rows) held.push(row.job as unknown as string);
  }
  return held;
}

export async function releaseIdleOutboxClaims(
  ctx: StoreContext,
  owner: string,
  jobIds: readonly string[],
): Promise<string[]> {
  const db = ctx.kysely();
  const released: string[] = [];
  for (let i = 0; i < jobIds.length; i += INSERT_CHUNK_ROWS) {
    const chunk = jobIds.slice(i, i + INSERT_CHUNK_ROWS);
    for (const row of await releaseIdleClaimsQuery(db, owner, chunk).execute()) {
      released.push(row.job as unknown as string);
    }
  }
  return released;
}

export async function releaseOutboxClaims(
  ctx: StoreContext,
  owner: string | undefined,
  jobIds?: readonly string[],
): Promise<void> {
  if (jobIds?.length === 0) return;
  const db = ctx.kysely();
  const chunks: (readonly string[] | undefined)[] = jobIds === undefined ? [undefined] : [];
  for (let i = 0; jobIds && i < jobIds.length; i += INSERT_CHUNK_ROWS) {
    chunks.push(jobIds.slice(i, i + INSERT_CHUNK_ROWS));
  }
  for (const chunk of chunks) {
    let query = db.deleteFrom('OutboxClaim');
    if (owner !== undefined) query = query.where('claimedBy', '=', owner);
    if (chunk !== undefined) query = query.where('job', 'in', chunk);
    await query.execute();
  }
}

export async function outboxStatus(
  ctx: StoreContext,
  jobIds: readonly string[],
): Promise<Map<string, OutboxStatus>> {
  const out = new Map<string, OutboxStatus>();
  if (jobIds.length === 0) return out;
  const db = ctx.kysely();
  for (let i = 0; i < jobIds.length; i += INSERT_CHUNK_ROWS) {
    const jobs = [...new Set(jobIds.slice(i, i + INSERT_CHUNK_ROWS))];
    const counts = await statusCountsQuery(db, { jobs }).execute();
    for (const [job, status] of outboxStatuses(counts)) out.set(job, status);
  }
  return out;
}
