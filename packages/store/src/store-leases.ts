// Trainer leases: renewing them, expiring lapsed ones, ending jobs whose trainer is gone.
import { sql } from 'kysely';
import { TrainingJob } from './entities.ts';
import { notFound, outboxRows, type StoreContext, storeKysely } from './store-context.ts';
import { rememberEpochJob } from './store-epochs.ts';
import { getJob } from './store-jobs.ts';
import { leaseColumns, trainerProcessKey } from './store-records.ts';
import {
  type ExpiredLease,
  type JobRecord,
  type LeaseRenewal,
  type LeaseVerdict,
  LOST_CAUSES,
  type LostJobInput,
  type RenewLeaseOptions,
  type TrainerRecord,
} from './types.ts';

export async function renewLease(
  ctx: StoreContext,
  jobId: string,
  options: RenewLeaseOptions,
): Promise<LeaseRenewal> {
  const { nowMs, leaseMs } = options;
  const sessionId = options.sessionId ?? '';
  const outcome = await ctx.transaction(jobId, async (trx) => {
    // The common case, one statement: a running job's lease moves on.
    if (ctx.rowLocks) {
      // PostgreSQL: the renewal makes a new row version, which would send this store's next epoch
      // report of the job down the locked path (see saveEpoch). The row as renewed is remembered instead.
      const row = await trx
        .updateTable('TrainingJob')
        .set(leaseColumns(nowMs, leaseMs))
        .where('jobId', '=', jobId)
        .where('status', '=', 'running')
        .returning(['bestEpoch', 'bestValue', 'primaryMetric', sql<string>`xmin::text`.as('version')])
        .executeTakeFirst();
      if (row) {
        const best =
          row.bestEpoch == null || row.bestValue == null
            ? null
            : { epoch: row.bestEpoch, value: row.bestValue };
        rememberEpochJob(ctx, jobId, { version: row.version, best, primaryMetric: row.primaryMetric });
        return { renewed: true, revived: false };
      }
    } else {
      const renewed = await trx
        .updateTable('TrainingJob')
        .set(leaseColumns(nowMs, leaseMs))
        .where('jobId', '=', jobId)
        .where('status', '=', 'running')
        .executeTakeFirst();
      if (renewed.numUpdatedRows > 0n) return { renewed: true, revived: false };
    }
    if (sessionId !== '') {
      // A lost job whose own trainer session shows a sign of life: the verdict was wrong.
      const lost = options.revive
        ? await trx
            .selectFrom('TrainingJob')
            .select('endReason')
            .where('jobId', '=', jobId)
            .executeTakeFirst()
        : undefined;
      const revived = await trx
        .updateTable('TrainingJob')
        .set({
          status: 'running',
          endedAt: null,
          endCause: '',
          endReason: '',
          updatedAt: new Date(nowMs),
          ...leaseColumns(nowMs, leaseMs),
        })
        .where('jobId', '=', jobId)
        .where('status', '=', 'failed')
        .where('endCause', 'in', [...LOST_CAUSES])
        .where('trainerSession', '=', sessionId)
        .executeTakeFirst();
      if (revived.numUpdatedRows > 0n) {
        ctx.appendChanges(trx, jobId, 'job');
        const outbox = options.revive?.(lost?.endReason ?? '');
        if (outbox?.length)
          await trx
            .insertInto('OutboxItem')
            .values(outboxRows(jobId, outbox, nowMs))
            .execute();
        return { renewed: true, revived: true };
      }
    }
    return { renewed: false, revived: false };
  });
  const job = await getJob(ctx, jobId);
  if (!job) throw notFound(jobId);
  return { job, ...outcome };
}

export async function expireLeases(
  ctx: StoreContext,
  nowMs: number,
  limit: number,
  verdict: (job: ExpiredLease) => LeaseVerdict | Promise<LeaseVerdict>,
): Promise<JobRecord[]> {
  const candidates = await storeKysely(ctx.em())
    .selectFrom('TrainingJob')
    .select(['jobId', 'lastSeenAtMs', 'leaseExpiresAtMs'])
    .where('status', '=', 'running')
    .where('leaseExpiresAtMs', '<', nowMs)
    .orderBy('leaseExpiresAtMs')
    .limit(Math.max(1, Math.floor(limit)))
    .execute();
  const ended: JobRecord[] = [];
  for (const candidate of candidates) {
    const expiresAtMs = Number(candidate.leaseExpiresAtMs);
    const lastSeenAtMs = Number(candidate.lastSeenAtMs ?? expiresAtMs);
    const { reason, outbox } = await verdict({
      jobId: candidate.jobId,
      lastSeenAtMs,
      leaseExpiresAtMs: expiresAtMs,
    });
    const done = await ctx.transaction(candidate.jobId, async (trx) => {
      // Conditional: a heartbeat that renewed the lease since the scan (here or on another sidecar) wins.
      const result = await trx
        .updateTable('TrainingJob')
        .set({
          status: 'failed',
          endCause: 'lease_expired',
          endReason: reason,
          endedAt: new Date(lastSeenAtMs),
          leaseExpiresAtMs: null,
          updatedAt: new Date(nowMs),
        })
        .where('jobId', '=', candidate.jobId)
        .where('status', '=', 'running')
        .where('leaseExpiresAtMs', '<', nowMs)
        .executeTakeFirst();
      if (result.numUpdatedRows === 0n) return false;
      ctx.appendChanges(trx, candidate.jobId, 'job');
      if (outbox?.length)
        await trx
          .insertInto('OutboxItem')
          .values(outboxRows(candidate.jobId, outbox, nowMs))
          .execute();
      return true;
    });
    if (done) ended.push(await ctx.readJob(candidate.jobId));
  }
  return ended;
}

export async function endLostJob(ctx: StoreContext, input: LostJobInput): Promise<JobRecord | undefined> {
  const key = trainerProcessKey(input.trainer);
  if (key === '') return undefined;
  const done = await ctx.transaction(input.jobId, async (trx) => {
    const result = await trx
      .updateTable('TrainingJob')
      .set({
        status: 'failed',
        endCause: 'process_exited',
        endReason: input.reason,
        endedAt: input.endedAt,
        leaseExpiresAtMs: null,
        updatedAt: new Date(),
      })
      .where('jobId', '=', input.jobId)
      .where('status', '=', 'running')
      .where('trainerProcess', '=', key)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) return false;
    ctx.appendChanges(trx, input.jobId, 'job');
    if (input.outbox?.length)
      await trx
        .insertInto('OutboxItem')
        .values(outboxRows(input.jobId, input.outbox, Date.now()))
        .execute();
    return true;
  });
  return done ? ctx.readJob(input.jobId) : undefined;
}

export async function extendLeases(ctx: StoreContext, untilMs: number): Promise<number> {
  return ctx.transaction('', async (trx) => {
    const result = await trx
      .updateTable('TrainingJob')
      .set({ leaseExpiresAtMs: untilMs })
      .where('status', '=', 'running')
      .where((eb) => eb.or([eb('leaseExpiresAtMs', 'is', null), eb('leaseExpiresAtMs', '<', untilMs)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  });
}

export async function runningTrainers(
  ctx: StoreContext,
  bootId: string,
): Promise<Array<{ jobId: string; trainer: TrainerRecord }>> {
  if (bootId === '') return [];
  const rows = await ctx
    .em()
    .find(
      TrainingJob,
      { status: 'running', trainerProcess: { $ne: '' } },
      { fields: ['jobId', 'trainer', 'trainerProcess'], disableIdentityMap: true },
    );
  return rows.flatMap((row) =>
    row.trainer && row.trainerProcess.startsWith(`${bootId}/`)
      ? [{ jobId: row.jobId, trainer: row.trainer }]
      : [],
  );
}
