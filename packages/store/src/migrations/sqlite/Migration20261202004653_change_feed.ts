import { Migration } from '@mikro-orm/migrations';

export class Migration20261202004653_change_feed extends Migration {
  override name = 'Migration20261202004653_change_feed';

  override up(): void | Promise<void> {
    this.addSql(
      `create table \`store_change\` (\`seq\` integer not null primary key autoincrement, \`job_id\` text not null, \`kind\` text not null, \`ref\` integer null, constraint \`store_change_job_id_foreign\` foreign key (\`job_id\`) references \`training_job\` (\`job_id\`) on delete cascade);`,
    );
    this.addSql(`create index \`store_change_job_seq_idx\` on \`store_change\` (\`job_id\`, \`seq\`);`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists \`store_change\`;`);
  }
}
