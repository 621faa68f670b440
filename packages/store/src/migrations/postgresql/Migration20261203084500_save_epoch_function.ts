import { Migration } from '@mikro-orm/migrations';

/**
 * `tc_save_epoch`: `tc_report_epoch`'s rules with less server work per report (see
 * `HotPath.writeEpochReport`), measured on the end-epoch benchmark: the job row's version and status are
 * checked by its UPDATE itself (no separate locking read: after waiting for another write's lock, READ
 * COMMITTED re-checks both on the newest version, so a stale decision or an ended job writes nothing), the
 * epoch's "reported before?" lookup rides in that UPDATE, the stored metrics are read only when there is an
 * outbox to decide, and the result is one `bigint[]` (`{epochs_reported, row version, 1 if new}`, NULL when
 * nothing was written), which the server parses and plans for less than a set-returning call.
 * The lookup may run before the row lock without changing a decision: every other write of the epoch's
 * report holds the job row and makes a new row version, so it either commits before (and this UPDATE
 * then finds a newer version) or waits for this one; an epoch begin writes no report.
 * `tc_report_epoch` stays for sidecars of the previous release during a rolling upgrade.
 */
export class Migration20261203084500_save_epoch_function extends Migration {
  override name = 'Migration20261203084500_save_epoch_function';

  override up(): void | Promise<void> {
    this.addSql(`create or replace function tc_save_epoch(
  p_job varchar, p_epoch int, p_version xid, p_best_epoch int, p_best_value double precision,
  p_updated_at timestamptz, p_loss double precision, p_accuracy double precision,
  p_learning_rate double precision, p_metrics jsonb, p_non_finite jsonb, p_timestamp timestamptz,
  p_outbox jsonb, p_now_ms bigint, p_feed_lock bigint)
returns bigint[]
language plpgsql as $$
declare
  v_count int;
  v_version text;
  v_new boolean;
  v_mirror boolean := jsonb_array_length(p_outbox) > 0;
begin
  update training_job j set
      epochs_reported = j.epochs_reported + case when e.is_new then 1 else 0 end,
      best_epoch = p_best_epoch, best_value = p_best_value, updated_at = p_updated_at
    from (select not exists (select 1 from training_metric m where m.job_id = p_job and m.epoch = p_epoch
      and m."timestamp" is not null) as is_new) e
    where j.job_id = p_job and j.xmin = p_version and j.status = 'running'
    returning j.epochs_reported, j.xmin::text, e.is_new into v_count, v_version, v_new;
  if not found then
    return null;
  end if;
  -- A resent report with the very same metrics has nothing new to mirror (read under the row's lock).
  if v_mirror and not v_new then
    select m.extra_metrics <> p_metrics into v_mirror
      from training_metric m where m.job_id = p_job and m.epoch = p_epoch;
  end if;
  insert into training_metric (job_id, epoch, loss, accuracy, learning_rate, extra_metrics, non_finite, "timestamp")
    values (p_job, p_epoch, p_loss, p_accuracy, p_learning_rate, p_metrics, p_non_finite, p_timestamp)
    on conflict (job_id, epoch) do update set loss = excluded.loss, accuracy = excluded.accuracy,
      learning_rate = excluded.learning_rate, extra_metrics = excluded.extra_metrics,
      non_finite = excluded.non_finite, "timestamp" = excluded."timestamp";
  if v_mirror then
    insert into outbox_item (job_id, kind, payload, block_id, created_at_ms, attempts, next_attempt_at_ms, last_error, parked_error)
      select p_job, o.item->>'kind', nullif(o.item->'payload', 'null'::jsonb), null, p_now_ms, 0, p_now_ms, null, null
      from jsonb_array_elements(p_outbox) with ordinality as o(item, n) order by o.n;
  end if;
  -- The feed row last, after the feed's order lock (seq order = commit order).
  perform pg_advisory_xact_lock(p_feed_lock);
  insert into store_change (job_id, kind, ref) values (p_job, 'epoch', p_epoch);
  return array[v_count, v_version::bigint, case when v_new then 1 else 0 end];
end
$$;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop function if exists tc_save_epoch(varchar, int, xid, int, double precision, timestamptz,
  double precision, double precision, double precision, jsonb, jsonb, timestamptz, jsonb, bigint, bigint);`);
  }
}
