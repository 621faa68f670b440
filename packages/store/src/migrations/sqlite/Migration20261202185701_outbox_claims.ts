import { Migration } from '@mikro-orm/migrations';

export class Migration20261202185701_outbox_claims extends Migration {
  override name = 'Migration20261202185701_outbox_claims';

  override up(): void | Promise<void> {
    this.addSql(
      `create table \`outbox_claim\` (\`job_id\` text not null primary key, \`claimed_by\` text not null, \`claim_expires_at_ms\` bigint not null, constraint \`outbox_claim_job_id_foreign\` foreign key (\`job_id\`) references \`training_job\` (\`job_id\`) on update cascade on delete cascade);`,
    );
  }

  override down(): void | Promise<void> {
    this.addSql(`drop table if exists \`outbox_claim\`;`);
  }
}
