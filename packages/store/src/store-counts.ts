import type { StoreContext } from './store-context.ts';
import type { JobStatus, OperationalCounts } from './types.ts';

export async function operationalCounts(ctx: StoreContext): Promise<OperationalCounts> {
  const db = ctx.kysely();
  const jobs = await db
    .selectFrom('TrainingJob')
    .select((eb) => ['status', eb.fn.countAll<number>().as('n')])
    .groupBy('status')
    .execute();
  const outbox = await db
    .selectFrom('OutboxItem')
    .select((eb) => [eb.fn.countAll<number>().as('pending'), eb.fn.min('createdAtMs').as('oldest')])
    .executeTakeFirst();
  const parked = await db
    .selectFrom('OutboxItem')
    .select((eb) => eb.fn.count<number>('job').distinct().as('jobs'))
    .where('parkedError', 'is not', null)
    .executeTakeFirst();
  // A parked job's queue waits behind its parked head: none of its entries is sent until a retry.
  const stuck = await db
    .selectFrom('OutboxItem')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('job', 'in', db.selectFrom('OutboxItem').select('job').where('parkedError', 'is not', null))
    .executeTakeFirst();
  const jobsByStatus: Record<JobStatus, number> = { running: 0, completed: 0, failed: 0, cancelled: 0 };
  for (const row of jobs) jobsByStatus[row.status as JobStatus] = Number(row.n);
  const oldest = outbox?.oldest;
  return {
    jobsByStatus,
    outboxPending: Number(outbox?.pending ?? 0),
    ...(oldest !== null && oldest !== undefined && { outboxOldestCreatedAtMs: Number(oldest) }),
    parkedJobs: Number(parked?.jobs ?? 0),
    outboxParkedItems: Number(stuck?.n ?? 0),
  };
}
