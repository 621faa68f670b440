import { Migration } from '@mikro-orm/migrations';

export class Migration20261202011216_run_name_tags extends Migration {
  override name = 'Migration20261202011216_run_name_tags';

  override up(): void | Promise<void> {
    this.addSql(`alter table \`training_job\` add column \`run_name\` text not null default '';`);
    this.addSql(`alter table \`training_job\` add column \`tags\` json not null default '{}';`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table \`training_job\` drop column \`run_name\`;`);
    this.addSql(`alter table \`training_job\` drop column \`tags\`;`);
  }
}
