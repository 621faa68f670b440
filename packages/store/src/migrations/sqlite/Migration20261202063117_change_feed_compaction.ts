import { Migration } from '@mikro-orm/migrations';

export class Migration20261202063117_change_feed_compaction extends Migration {
  override name = 'Migration20261202063117_change_feed_compaction';

  override up(): void | Promise<void> {
    this.addSql(
      `create index \`store_change_key_idx\` on \`store_change\` (\`job_id\`, \`kind\`, \`ref\`, \`seq\`);`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index \`store_change_key_idx\`;`);
  }
}
