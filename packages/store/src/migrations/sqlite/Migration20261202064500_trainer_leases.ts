import { Migration } from '@mikro-orm/migrations';

export class Migration20261202064500_trainer_leases extends Migration {
  override name = 'Migration20261202064500_trainer_leases';

  override up(): void | Promise<void> {
    this.addSql(`alter table \`training_job\` add column \`end_cause\` text not null default '';`);
    this.addSql(`alter table \`training_job\` add column \`end_reason\` text not null default '';`);
    this.addSql(`alter table \`training_job\` add column \`last_seen_at_ms\` bigint null;`);
    this.addSql(`alter table \`training_job\` add column \`lease_expires_at_ms\` bigint null;`);
    this.addSql(`alter table \`training_job\` add column \`trainer\` json null;`);
    this.addSql(`alter table \`training_job\` add column \`trainer_session\` text not null default '';`);
    this.addSql(`alter table \`training_job\` add column \`trainer_process\` text not null default '';`);
    this.addSql(
      `create index \`training_job_lease_idx\` on \`training_job\` (\`status\`, \`lease_expires_at_ms\`);`,
    );
    // Jobs that ended before causes were recorded were ended by their trainer (EndTraining).
    this.addSql(`update \`training_job\` set \`end_cause\` = 'reported' where \`status\` <> 'running';`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index \`training_job_lease_idx\`;`);
    this.addSql(`alter table \`training_job\` drop column \`end_cause\`;`);
    this.addSql(`alter table \`training_job\` drop column \`end_reason\`;`);
    this.addSql(`alter table \`training_job\` drop column \`last_seen_at_ms\`;`);
    this.addSql(`alter table \`training_job\` drop column \`lease_expires_at_ms\`;`);
    this.addSql(`alter table \`training_job\` drop column \`trainer\`;`);
    this.addSql(`alter table \`training_job\` drop column \`trainer_session\`;`);
    this.addSql(`alter table \`training_job\` drop column \`trainer_process\`;`);
  }
}
