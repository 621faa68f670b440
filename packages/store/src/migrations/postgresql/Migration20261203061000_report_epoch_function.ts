import { Migration } from '@mikro-orm/migrations';

/**
 * `tc_report_epoch`: an epoch report's writes on PostgreSQL in one call (see `HotPath.writeEpochReport`).
 * A function, not one statement sent as text: its statements' plans are cached by the server per
 * connection, where parsing and planning the same writes sent as one statement cost more than running
 * them — and it needs no named prepared statement, which poolers in transaction mode do not keep.
 * Decided by the caller from the job row version `p_version` (its xmin): it writes only while the row
 * is still that version and the job runs, else returns no row and writes nothing.
 */
export class Migration20261203061000_report_epoch_function extends Migration {
  override name = 'Migration20261203061000_report_epoch_function';

  override up(): void | Promise<void> {
    this.addSql(`create or replace function tc_report_epoch(
  p_job varchar, p_epoch int, p_version xid, p_best_epoch int, p_best_value double precision,
  p_updated_at timestamptz, p_loss double precision, p_accuracy double precision,
  p_learning_rate double precision, p_metrics jsonb, p_non_finite jsonb, p_timestamp timestamptz,
  p_outbox jsonb, p_now_ms bigint, p_feed_lock bigint)
returns table (reported_count int, row_version text, new_epoch boolean)
language plpgsql as $$
declare
  v_reported boolean;
  v_same boolean;
begin
  -- The job row locked only while it is the version decided from and the job runs (READ COMMITTED
  -- re-checks both on the newest version after waiting for the lock).
  perform 1 from training_job j
    where j.job_id = p_job and j.xmin = p_version and j.status = 'running' for no key update;
  if not found then
    return;
  end if;
  -- Under the row's lock no other report of the job runs: this read is the truth.
  select m."timestamp" is not null, m.extra_metrics = p_metrics into v_reported, v_same
    from training_metric m where m.job_id = p_job and m.epoch = p_epoch;
  new_epoch := not coalesce(v_reported, false);
  update training_job set
      epochs_reported = epochs_reported + case when new_epoch then 1 else 0 end,
      best_epoch = p_best_epoch, best_value = p_best_value, updated_at = p_updated_at
    where job_id = p_job
    returning epochs_reported, xmin::text into reported_count, row_version;
  insert into training_metric (job_id, epoch, loss, accuracy, learning_rate, extra_metrics, non_finite, "timestamp")
    values (p_job, p_epoch, p_loss, p_accuracy, p_learning_rate, p_metrics, p_non_finite, p_timestamp)
    on conflict (job_id, epoch) do update set loss = excluded.loss, accuracy = excluded.accuracy,
      learning_rate = excluded.learning_rate, extra_metrics = excluded.extra_metrics,
      non_finite = excluded.non_finite, "timestamp" = excluded."timestamp";
  -- A resent report with the very same metrics has nothing new to mirror.
  if new_epoch or not coalesce(v_same, false) then
    insert into outbox_item (job_id, kind, payload, block_id, created_at_ms, attempts, next_attempt_at_ms, last_error, parked_error)
      select p_job, o.item->>'kind', nullif(o.item->'payload', 'null'::jsonb), null, p_now_ms, 0, p_now_ms, null, null
      from jsonb_array_elements(p_outbox) with ordinality as o(item, n) order by o.n;
  end if;
  -- The feed row last, after the feed's order lock (seq order = commit order).
  perform pg_advisory_xact_lock(p_feed_lock);
  insert into store_change (job_id, kind, ref) values (p_job, 'epoch', p_epoch);
  return next;
end
$$;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop function if exists tc_report_epoch(varchar, int, xid, int, double precision, timestamptz,
  double precision, double precision, double precision, jsonb, jsonb, timestamptz, jsonb, bigint, bigint);`);
  }
}
