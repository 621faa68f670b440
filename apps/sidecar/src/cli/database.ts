// `training-callbacks db copy`: moves a store from one database to another (an SQLite file into a shared
// PostgreSQL, typically) with the sidecars on both stopped. The copy itself is the store's
// (copyDatabase): every row through the entities' types, ids kept.
import { CopyRefusedError, copyDatabase, redactedDatabaseUrl } from '@training-callbacks/store';
import type { CommandContext } from './command-context.ts';
import { CLI_EXIT_CODES } from './exit-codes.ts';

export async function copyStore(
  context: CommandContext,
  options: { from: string; to: string; json?: boolean },
): Promise<number> {
  const { out } = context;
  const from = redactedDatabaseUrl(options.from);
  const to = redactedDatabaseUrl(options.to);
  out.message(`copying ${from} into ${to} (stop the sidecars on both first)`);
  try {
    const copied = await copyDatabase(options.from, options.to, (progress) => {
      out.message(`  ${progress.table}: ${progress.rows} row(s)${progress.done ? '' : ' …'}`);
    });
    if (options.json) out.data(JSON.stringify({ from, to, rows: copied }));
    else out.message(`copied into ${to}; point the sidecars at it with --db ${to}`);
    return CLI_EXIT_CODES.ok.code;
  } catch (error) {
    if (error instanceof CopyRefusedError) {
      out.error(error.message);
      return CLI_EXIT_CODES.refused.code;
    }
    out.error(`the copy failed: ${(error as Error).message}`);
    return CLI_EXIT_CODES.failure.code;
  }
}
