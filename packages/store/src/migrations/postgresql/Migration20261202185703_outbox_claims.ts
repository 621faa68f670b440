import { Migration } from '@mikro-orm/migrations';

export class Migration20261202185703_outbox_claims extends Migration {
  override name = 'Migration20261202185703_outbox_claims';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "outbox_claim" ("job_id" varchar(128) not null, "claimed_by" varchar(255) not null, "claim_expires_at_ms" bigint not null, primary key ("job_id"));`,
    );

    this.addSql(
      `alter table "outbox_claim" add constraint "outbox_claim_job_id_foreign" foreign key ("job_id") references "training_job" ("job_id") on update cascade on delete cascade;`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists "outbox_claim" cascade;`);
  }
}
