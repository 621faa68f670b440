import { Migration } from '@mikro-orm/migrations';

/**
 * `tc_append_batch`: a batch append that meets no stored block on PostgreSQL in one call (see
 * `HotPath.writeBatchAppend`), a function for the reason `tc_report_epoch` is one: the server caches its
 * plans per connection, where the same writes sent as one statement of CTEs are parsed and planned anew
 * on every stream. The job row is read FOR SHARE (an end waits for the append, or the append reads the
 * ended row: READ COMMITTED re-reads a row updated while it waited); the blocks (in the order given),
 * one outbox reference per block when `p_kind` is set, and the feed rows after the feed's advisory lock
 * are written only while the job runs and no stored block of the job meets `[p_first, p_last]`. Returns
 * one row per written block (the job's status and the block's id, in order); one row with a NULL id
 * when nothing was written (the job does not run, or a stored block meets the range); no row when
 * there is no such job.
 */
export class Migration20261203063000_append_batch_function extends Migration {
  override name = 'Migration20261203063000_append_batch_function';

  override up(): void | Promise<void> {
    this.addSql(`create or replace function tc_append_batch(p_job varchar, p_first bigint, p_last bigint,
  p_epochs int[], p_first_steps bigint[], p_last_steps bigint[], p_names jsonb[], p_steps bytea[],
  p_values bytea[], p_received_at bigint, p_kind varchar, p_now bigint, p_feed_lock bigint)
returns table (job_status text, block_ref int)
language plpgsql as $$
declare
  v_status text;
  v_ids int[];
begin
  select j.status into v_status from training_job j where j.job_id = p_job for share;
  if not found then
    return;
  end if;
  if v_status <> 'running' or exists (select 1 from batch_metric_block s where s.job_id = p_job
      and s.last_step >= p_first and s.first_step <= p_last) then
    return query select v_status, null::int;
    return;
  end if;
  with written as (
    insert into batch_metric_block (job_id, epoch, first_step, last_step, names, steps, "values", received_at_ms)
      select p_job, r.epoch, r.first_step, r.last_step, r.names, r.steps, r.block_values, p_received_at
      from unnest(p_epochs, p_first_steps, p_last_steps, p_names, p_steps, p_values)
        with ordinality as r(epoch, first_step, last_step, names, steps, block_values, n)
      order by r.n
      returning id)
  select array_agg(w.id order by w.id) into v_ids from written w;
  if p_kind is not null then
    insert into outbox_item (job_id, kind, payload, block_id, created_at_ms, attempts, next_attempt_at_ms, last_error, parked_error)
      select p_job, p_kind, null, u.id, p_now, 0, p_now, null, null
      from unnest(v_ids) with ordinality as u(id, n) order by u.n;
  end if;
  perform pg_advisory_xact_lock(p_feed_lock);
  insert into store_change (job_id, kind, ref)
    select p_job, 'batch', u.id from unnest(v_ids) with ordinality as u(id, n) order by u.n;
  return query select v_status, u.id from unnest(v_ids) with ordinality as u(id, n) order by u.n;
end
$$;`);
  }

  override down(): void | Promise<void> {
    this.addSql(
      `drop function if exists tc_append_batch(varchar, bigint, bigint, int[], bigint[], bigint[], jsonb[], bytea[], bytea[], bigint, varchar, bigint, bigint);`,
    );
  }
}
