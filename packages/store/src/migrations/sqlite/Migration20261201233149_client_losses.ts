import { Migration } from '@mikro-orm/migrations';

export class Migration20261201233149_client_losses extends Migration {
  override name = 'Migration20261201233149_client_losses';

  override up(): void | Promise<void> {
    this.addSql(`alter table \`training_job\` add column \`client_losses\` json null;`);
  }

  override down(): void | Promise<void> {
    this.addSql(`alter table \`training_job\` drop column \`client_losses\`;`);
  }
}
