import { Migration } from '@mikro-orm/migrations';

export class Migration20261126184022_initial extends Migration {
  override name = 'Migration20261126184022_initial';

  override up(): void | Promise<void> {
    this.addSql(
      `create table \`training_job\` (\`job_id\` text not null primary key, \`task\` text not null, \`framework\` text not null, \`model_name\` text not null, \`status\` text check (\`status\` in ('running', 'completed', 'failed', 'cancelled')) not null, \`model_config\` json not null, \`training_config\` json not null, \`params\` json not null, \`custom_metrics\` json not null, \`start_epoch\` integer not null, \`epochs_reported\` integer not null, \`primary_metric\` text not null, \`best_epoch\` integer null, \`best_value\` double null, \`final_metrics\` json not null, \`final_primary_value\` double null, \`final_accuracy\` double null, \`error_message\` text not null, \`mlflow_experiment_id\` text not null, \`mlflow_run_id\` text not null, \`created_at\` datetime not null, \`updated_at\` datetime not null, \`ended_at\` datetime null);`,
    );
    this.addSql(
      `create index \`training_job_created_idx\` on \`training_job\` (\`created_at\`, \`job_id\`);`,
    );
    this.addSql(
      `create index \`training_job_status_created_idx\` on \`training_job\` (\`status\`, \`created_at\`, \`job_id\`);`,
    );
    this.addSql(
      `create index \`training_job_task_created_idx\` on \`training_job\` (\`task\`, \`created_at\`, \`job_id\`);`,
    );

    this.addSql(
      `create table \`batch_metric_block\` (\`id\` integer not null primary key autoincrement, \`job_id\` text not null, \`epoch\` integer not null, \`first_step\` bigint not null, \`last_step\` bigint not null, \`names\` json not null, \`steps\` blob not null, \`values\` blob not null, constraint \`batch_metric_block_job_id_foreign\` foreign key (\`job_id\`) references \`training_job\` (\`job_id\`) on delete cascade);`,
    );
    this.addSql(
      `create unique index \`batch_metric_block_key_unique\` on \`batch_metric_block\` (\`job_id\`, \`epoch\`, \`first_step\`, \`names\`);`,
    );

    this.addSql(
      `create table \`artifact\` (\`id\` integer not null primary key autoincrement, \`job_id\` text not null, \`artifact_path\` text not null, \`size_bytes\` bigint not null, \`sha256\` text not null, \`source_path\` text not null, \`stored_path\` text not null, \`logged_at\` datetime not null, constraint \`artifact_job_id_foreign\` foreign key (\`job_id\`) references \`training_job\` (\`job_id\`) on delete cascade);`,
    );
    this.addSql(
      `create unique index \`artifact_job_path_unique\` on \`artifact\` (\`job_id\`, \`artifact_path\`);`,
    );

    this.addSql(
      `create table \`training_metric\` (\`id\` integer not null primary key autoincrement, \`job_id\` text not null, \`epoch\` integer not null, \`loss\` double null, \`accuracy\` double null, \`learning_rate\` double null, \`extra_metrics\` json not null, \`non_finite\` json not null, \`timestamp\` datetime null, \`began_at\` datetime null, constraint \`training_metric_job_id_foreign\` foreign key (\`job_id\`) references \`training_job\` (\`job_id\`) on delete cascade);`,
    );
    this.addSql(
      `create unique index \`training_metric_job_epoch_unique\` on \`training_metric\` (\`job_id\`, \`epoch\`);`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists \`training_job\`;`);
    this.addSql(`drop table if exists \`batch_metric_block\`;`);
    this.addSql(`drop table if exists \`artifact\`;`);
    this.addSql(`drop table if exists \`training_metric\`;`);
  }
}
