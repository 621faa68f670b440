import { Migration } from '@mikro-orm/migrations';

export class Migration20261202185241_initial extends Migration {
  override name = 'Migration20261202185241_initial';

  override up(): void | Promise<void> {
    this.addSql(
      `create table "training_job" ("job_id" varchar(128) not null, "task" varchar(255) not null, "framework" varchar(256) not null, "model_name" varchar(256) not null, "status" text not null, "model_config" jsonb not null, "training_config" jsonb not null, "params" jsonb not null, "run_name" text not null default '', "tags" jsonb not null default '{}', "custom_metrics" jsonb not null, "start_epoch" int not null, "epochs_reported" int not null, "primary_metric" varchar(255) not null, "best_epoch" int null, "best_value" double precision null, "final_metrics" jsonb not null, "final_primary_value" double precision null, "final_accuracy" double precision null, "error_message" text not null, "client_losses" jsonb null, "mlflow_experiment_id" varchar(255) not null, "mlflow_run_id" varchar(255) not null, "mlflow_artifact_uri" text not null default '', "mlflow_metric_keys" jsonb null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "ended_at" timestamptz null, "end_cause" varchar(255) not null default '', "end_reason" text not null default '', "last_seen_at_ms" bigint null, "lease_expires_at_ms" bigint null, "trainer" jsonb null, "trainer_session" text not null default '', "trainer_process" text not null default '', primary key ("job_id"));`,
    );
    this.addSql(`create index "training_job_created_idx" on "training_job" ("created_at", "job_id");`);
    this.addSql(`create index "training_job_lease_idx" on "training_job" ("status", "lease_expires_at_ms");`);
    this.addSql(
      `create index "training_job_status_created_idx" on "training_job" ("status", "created_at", "job_id");`,
    );
    this.addSql(
      `create index "training_job_task_created_idx" on "training_job" ("task", "created_at", "job_id");`,
    );

    this.addSql(
      `create table "store_change" ("seq" serial primary key, "job_id" varchar(128) not null, "kind" varchar(255) not null, "ref" int null);`,
    );
    this.addSql(`create index "store_change_job_seq_idx" on "store_change" ("job_id", "seq");`);
    this.addSql(`create index "store_change_key_idx" on "store_change" ("job_id", "kind", "ref", "seq");`);

    this.addSql(
      `create table "outbox_item" ("id" serial primary key, "job_id" varchar(128) not null, "kind" varchar(255) not null, "payload" jsonb null, "block_id" int null, "created_at_ms" bigint not null, "attempts" int not null, "next_attempt_at_ms" bigint not null, "last_error" text null, "parked_error" text null);`,
    );
    this.addSql(`create index "outbox_item_job_idx" on "outbox_item" ("job_id", "id");`);

    this.addSql(
      `create table "metric_source" ("id" serial primary key, "job_id" varchar(128) not null, "name" text not null, "reported" text not null, "scale" double precision not null);`,
    );
    this.addSql(
      `alter table "metric_source" add constraint "metric_source_unique" unique ("job_id", "name", "reported", "scale");`,
    );

    this.addSql(
      `create table "batch_metric_block" ("id" serial primary key, "job_id" varchar(128) not null, "epoch" int not null, "first_step" bigint not null, "last_step" bigint not null, "names" jsonb not null, "steps" bytea not null, "values" bytea not null, "received_at_ms" bigint null);`,
    );
    this.addSql(
      `create index "batch_metric_block_job_step_idx" on "batch_metric_block" ("job_id", "first_step", "id");`,
    );
    this.addSql(
      `create index "batch_metric_block_job_epoch_step_idx" on "batch_metric_block" ("job_id", "epoch", "first_step", "id");`,
    );
    this.addSql(
      `create index "batch_metric_block_job_last_step_idx" on "batch_metric_block" ("job_id", "last_step");`,
    );

    this.addSql(
      `create table "artifact" ("id" serial primary key, "job_id" varchar(128) not null, "artifact_path" varchar(512) not null, "size_bytes" bigint not null, "sha256" varchar(255) not null, "source_path" text not null, "stored_path" text not null, "logged_at" timestamptz not null);`,
    );
    this.addSql(`create index "artifact_job_id_idx" on "artifact" ("job_id", "id");`);
    this.addSql(
      `alter table "artifact" add constraint "artifact_job_path_unique" unique ("job_id", "artifact_path");`,
    );

    this.addSql(
      `create table "training_metric" ("id" serial primary key, "job_id" varchar(128) not null, "epoch" int not null, "loss" double precision null, "accuracy" double precision null, "learning_rate" double precision null, "extra_metrics" jsonb not null, "non_finite" jsonb not null, "timestamp" timestamptz null, "began_at" timestamptz null);`,
    );
    this.addSql(
      `alter table "training_metric" add constraint "training_metric_job_epoch_unique" unique ("job_id", "epoch");`,
    );

    this.addSql(
      `alter table "training_job" add constraint "training_job_status_check" check ("status" in ('running', 'completed', 'failed', 'cancelled'));`,
    );

    this.addSql(
      `alter table "store_change" add constraint "store_change_job_id_foreign" foreign key ("job_id") references "training_job" ("job_id") on delete cascade;`,
    );

    this.addSql(
      `alter table "outbox_item" add constraint "outbox_item_job_id_foreign" foreign key ("job_id") references "training_job" ("job_id") on delete cascade;`,
    );

    this.addSql(
      `alter table "metric_source" add constraint "metric_source_job_id_foreign" foreign key ("job_id") references "training_job" ("job_id") on delete cascade;`,
    );

    this.addSql(
      `alter table "batch_metric_block" add constraint "batch_metric_block_job_id_foreign" foreign key ("job_id") references "training_job" ("job_id") on delete cascade;`,
    );

    this.addSql(
      `alter table "artifact" add constraint "artifact_job_id_foreign" foreign key ("job_id") references "training_job" ("job_id") on delete cascade;`,
    );

    this.addSql(
      `alter table "training_metric" add constraint "training_metric_job_id_foreign" foreign key ("job_id") references "training_job" ("job_id") on delete cascade;`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table "store_change" drop constraint "store_change_job_id_foreign";`);
    this.addSql(`alter table "outbox_item" drop constraint "outbox_item_job_id_foreign";`);
    this.addSql(`alter table "metric_source" drop constraint "metric_source_job_id_foreign";`);
    this.addSql(`alter table "batch_metric_block" drop constraint "batch_metric_block_job_id_foreign";`);
    this.addSql(`alter table "artifact" drop constraint "artifact_job_id_foreign";`);
    this.addSql(`alter table "training_metric" drop constraint "training_metric_job_id_foreign";`);

    this.addSql(`drop table if exists "training_job" cascade;`);
    this.addSql(`drop table if exists "store_change" cascade;`);
    this.addSql(`drop table if exists "outbox_item" cascade;`);
    this.addSql(`drop table if exists "metric_source" cascade;`);
    this.addSql(`drop table if exists "batch_metric_block" cascade;`);
    this.addSql(`drop table if exists "artifact" cascade;`);
    this.addSql(`drop table if exists "training_metric" cascade;`);
  }
}
