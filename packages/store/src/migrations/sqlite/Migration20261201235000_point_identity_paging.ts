import { Migration } from '@mikro-orm/migrations';
import { unpackInt64 } from '../../number-codec.ts';

export class Migration20261201235000_point_identity_paging extends Migration {
  override name = 'Migration20261201235000_point_identity_paging';

  override async up(): Promise<void> {
    // first_step / last_step become the block's smallest and largest step (they were its first and
    // last row): a write finds the blocks it overlaps by them. Blocks with unsorted steps are fixed.
    const rows = await this.execute(
      'select `id`, `first_step`, `last_step`, `steps` from `batch_metric_block`',
    );
    for (const row of rows) {
      const steps = unpackInt64(row.steps as Uint8Array);
      if (steps.length === 0) continue;
      let min = steps[0]!;
      let max = min;
      for (const step of steps) {
        if (step < min) min = step;
        if (step > max) max = step;
      }
      if (BigInt(row.first_step as number) !== min || BigInt(row.last_step as number) !== max) {
        await this.execute(
          'update `batch_metric_block` set `first_step` = ?, `last_step` = ? where `id` = ?',
          [min, max, row.id],
        );
      }
    }
    this.addSql(`drop index \`batch_metric_block_key_unique\`;`);
    this.addSql(
      `create index \`batch_metric_block_job_step_idx\` on \`batch_metric_block\` (\`job_id\`, \`first_step\`, \`id\`);`,
    );
    this.addSql(
      `create index \`batch_metric_block_job_epoch_step_idx\` on \`batch_metric_block\` (\`job_id\`, \`epoch\`, \`first_step\`, \`id\`);`,
    );
    this.addSql(
      `create index \`batch_metric_block_job_last_step_idx\` on \`batch_metric_block\` (\`job_id\`, \`last_step\`);`,
    );

    this.addSql(`create index \`artifact_job_id_idx\` on \`artifact\` (\`job_id\`, \`id\`);`);
  }

  override down(): void | Promise<void> {
    this.addSql(`drop index \`artifact_job_id_idx\`;`);

    this.addSql(`drop index \`batch_metric_block_job_step_idx\`;`);
    this.addSql(`drop index \`batch_metric_block_job_epoch_step_idx\`;`);
    this.addSql(`drop index \`batch_metric_block_job_last_step_idx\`;`);
    this.addSql(
      `create unique index \`batch_metric_block_key_unique\` on \`batch_metric_block\` (\`job_id\`, \`epoch\`, \`first_step\`, \`names\`);`,
    );
  }
}
