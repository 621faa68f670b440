// Vitest globalSetup of the PostgreSQL run (vitest.postgres.config.ts): one real PostgreSQL server for
// the run; its URL goes to the workers in TRAINING_CALLBACKS_TEST_POSTGRES, so that every sidecar the
// specs start (apps/sidecar's startSidecarProcess) gets a fresh database on it instead of a SQLite file.
// Imported by path: global setup files load without the workspace's source export condition.
import { startPostgres } from '../../../packages/postgres-testing/src/postgres-server.ts';

export default async function setup(): Promise<() => Promise<void>> {
  const started = Date.now();
  const pg = await startPostgres({ database: 'e2e' });
  process.stderr.write(`postgresql ${pg.version} ready at ${pg.url} in ${Date.now() - started} ms\n`);
  process.env.TRAINING_CALLBACKS_TEST_POSTGRES = pg.url;
  return () => pg.stop();
}
