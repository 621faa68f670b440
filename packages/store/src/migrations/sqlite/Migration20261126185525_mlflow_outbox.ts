import { Migration } from '@mikro-orm/migrations';

export class Migration20261126185525_mlflow_outbox extends Migration {
  override name = 'Migration20261126185525_mlflow_outbox';

  override up(): void | Promise<void> {
    this.addSql(
      `create table \`outbox_item\` (\`id\` integer not null primary key autoincrement, \`job_id\` text not null, \`kind\` text not null, \`payload\` json null, \`block_id\` integer null, \`created_at_ms\` bigint not null, \`attempts\` integer not null, \`next_attempt_at_ms\` bigint not null, \`last_error\` text null, \`parked_error\` text null, constraint \`outbox_item_job_id_foreign\` foreign key (\`job_id\`) references \`training_job\` (\`job_id\`) on delete cascade);`,
    );
    this.addSql(`create index \`outbox_item_job_idx\` on \`outbox_item\` (\`job_id\`, \`id\`);`);

    this.addSql(`alter table \`training_job\` add column \`mlflow_artifact_uri\` text not null default '';`);
    this.addSql(`alter table \`training_job\` add column \`mlflow_metric_keys\` json null;`);

    this.addSql(`alter table \`batch_metric_block\` add column \`received_at_ms\` bigint null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists \`outbox_item\`;`);

    this.addSql(`alter table \`batch_metric_block\` drop column \`received_at_ms\`;`);

    this.addSql(`alter table \`training_job\` drop column \`mlflow_artifact_uri\`;`);
    this.addSql(`alter table \`training_job\` drop column \`mlflow_metric_keys\`;`);
  }
}
