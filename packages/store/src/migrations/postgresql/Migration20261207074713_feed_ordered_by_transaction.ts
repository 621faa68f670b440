import { Migration } from '@mikro-orm/migrations';

/**
 * The change feed ordered by the writing transaction instead of by a sequence under one global lock.
 *
 * Before: seqs came from a sequence, and every writer took the advisory lock "TCCF" from its feed
 * insert to its commit so that seq order was commit order (two transactions that took seqs 7 and 8 may
 * commit 8 first; a reader that saw 8 would never see 7). Every write of every sidecar queued on that
 * one lock: under 50 trainers it was the end-epoch p99 (docs/benchmarks.md).
 *
 * Now a row's seq is `base + ((xid − base_xid) << 16) + n`: its transaction's id, then its place in the
 * transaction (`tc_feed_seq()`, the column's default). A reader reads only below
 * `tc_feed_horizon()`, the seq of the oldest transaction still running in its snapshot: every
 * transaction below it has committed or rolled back, so no row can ever appear below a seq a reader
 * has passed, and no writer waits for another. A transaction that writes and stays open holds readers
 * back (they wait; they never miss a row).
 *
 * `base` (above every seq in the feed) and `base_xid` (the current transaction) are written into both
 * functions by `tc_feed_rebase()`: here, and after a copy into the database (copy-database.ts) brought
 * seqs of another database. So seqs stay small: 2^37 transactions of the server after it before a seq
 * passes 2^53, JavaScript's exact integers (tc_feed_seq refuses to write then); a transaction appends
 * at most 65,536 feed rows (the store refuses a larger write before it).
 *
 * The write functions are replaced without the lock. `tc_report_epoch`, kept for sidecars of an older
 * release during a rolling upgrade, still takes it; those sidecars' watch streams may miss events until
 * they are replaced (their writes are unaffected).
 */
export class Migration20261207074713_feed_ordered_by_transaction extends Migration {
  override name = 'Migration20261207074713_feed_ordered_by_transaction';

  override up(): void | Promise<void> {
    this.addSql(`alter table "store_change" alter column "seq" drop default;`);
    this.addSql(`alter table "store_change" alter column "seq" type bigint using ("seq"::bigint);`);
    this.addSql(`drop sequence if exists "store_change_seq_seq";`);
    this.addSql(`create or replace function tc_feed_rebase() returns void language plpgsql as $rebase$
declare
  v_base bigint := coalesce((select max(seq) from store_change), 0) + 1;
  v_base_xid bigint := pg_current_xact_id()::text::bigint;
begin
  execute format($f$create or replace function tc_feed_seq() returns bigint
language plpgsql volatile as $body$
declare
  v_slot bigint := %1$s + (greatest(pg_current_xact_id()::text::bigint - %2$s, 0) << 16);
  v_last bigint := nullif(current_setting('tc.feed_seq', true), '')::bigint;
  v_seq bigint := v_slot;
begin
  if v_last >= v_slot then
    v_seq := v_last + 1;
    if v_seq >= v_slot + 65536 then
      raise exception 'one transaction appends at most 65536 change-feed rows' using errcode = '54000';
    end if;
  end if;
  if v_seq >= 9007199254740992 then
    raise exception 'the change feed''s seqs reached 2^53: see the store README (the change feed)'
      using errcode = '54000';
  end if;
  -- The transaction's last seq, forgotten at its end (and at a rollback to a savepoint before it).
  perform set_config('tc.feed_seq', v_seq::text, true);
  return v_seq;
end
$body$;$f$, v_base, v_base_xid);
  execute format($f$create or replace function tc_feed_horizon() returns bigint
language sql stable as $body$
  select %1$s + (greatest(pg_snapshot_xmin(pg_current_snapshot())::text::bigint - %2$s, 0) << 16)
$body$;$f$, v_base, v_base_xid);
end
$rebase$;`);
    this.addSql(`select tc_feed_rebase();`);
    this.addSql(`alter table "store_change" alter column "seq" set default tc_feed_seq();`);
    this.addSql(SAVE_EPOCH);
    this.addSql(APPEND_BATCH);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "store_change" alter column "seq" drop default;`);
    this.addSql(`drop function if exists tc_feed_seq();`);
    this.addSql(`drop function if exists tc_feed_horizon();`);
    this.addSql(`drop function if exists tc_feed_rebase();`);
    this.addSql(`alter table "store_change" alter column "seq" type int using ("seq"::int);`);
    this.addSql(`create sequence if not exists "store_change_seq_seq" owned by "store_change"."seq";`);
    this.addSql(
      `select setval('store_change_seq_seq', coalesce((select max("seq") from "store_change"), 0) + 1, false);`,
    );
    this.addSql(`alter table "store_change" alter column "seq" set default nextval('store_change_seq_seq');`);
  }
}

/** `tc_save_epoch` as migration `save_epoch_function` wrote it, without the feed's lock. */
const SAVE_EPOCH = `create or replace function tc_save_epoch(
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
  insert into store_change (job_id, kind, ref) values (p_job, 'epoch', p_epoch);
  return array[v_count, v_version::bigint, case when v_new then 1 else 0 end];
end
$$;`;

/** `tc_append_batch` as migration `append_batch_function` wrote it, without the feed's lock. */
const APPEND_BATCH = `create or replace function tc_append_batch(p_job varchar, p_first bigint, p_last bigint,
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
  insert into store_change (job_id, kind, ref)
    select p_job, 'batch', u.id from unnest(v_ids) with ordinality as u(id, n) order by u.n;
  return query select v_status, u.id from unnest(v_ids) with ordinality as u(id, n) order by u.n;
end
$$;`;
