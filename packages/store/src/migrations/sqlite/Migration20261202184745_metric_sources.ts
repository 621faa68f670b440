import { Migration } from '@mikro-orm/migrations';

export class Migration20261202184745_metric_sources extends Migration {
  override name = 'Migration20261202184745_metric_sources';

  override up(): void | Promise<void> {
    this.addSql(
      `create table \`metric_source\` (\`id\` integer not null primary key autoincrement, \`job_id\` text not null, \`name\` text not null, \`reported\` text not null, \`scale\` double not null, constraint \`metric_source_job_id_foreign\` foreign key (\`job_id\`) references \`training_job\` (\`job_id\`) on delete cascade);`,
    );
    this.addSql(
      `create unique index \`metric_source_unique\` on \`metric_source\` (\`job_id\`, \`name\`, \`reported\`, \`scale\`);`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists \`metric_source\`;`);
  }
}
