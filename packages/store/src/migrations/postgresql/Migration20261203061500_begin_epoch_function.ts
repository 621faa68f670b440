import { Migration } from '@mikro-orm/migrations';

/**
 * `tc_begin_epoch`: an epoch begin on PostgreSQL in one call (see `HotPath.writeEpochBegin`), a function
 * for the reason `tc_report_epoch` is one: the server caches its plans per connection. The job row is
 * read FOR SHARE (an end waits for the begin, or the begin reads the ended row: READ COMMITTED re-reads
 * a row updated while it waited) and the begin written only while the job runs. Returns the job's
 * status; NULL when there is no such job.
 */
export class Migration20261203061500_begin_epoch_function extends Migration {
  override name = 'Migration20261203061500_begin_epoch_function';

  override up(): void | Promise<void> {
    this.addSql(`create or replace function tc_begin_epoch(p_job varchar, p_epoch int, p_at timestamptz)
returns text
language plpgsql as $$
declare
  v_status text;
begin
  select j.status into v_status from training_job j where j.job_id = p_job for share;
  if v_status = 'running' then
    insert into training_metric (job_id, epoch, loss, accuracy, learning_rate, extra_metrics, non_finite, "timestamp", began_at)
      values (p_job, p_epoch, null, null, null, '{}'::jsonb, '[]'::jsonb, null, p_at)
      on conflict (job_id, epoch) do update set began_at = excluded.began_at;
  end if;
  return v_status;
end
$$;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop function if exists tc_begin_epoch(varchar, int, timestamptz);`);
  }
}
