export { type Pgbouncer, type PgbouncerOptions, startPgbouncer } from './pgbouncer.ts';
export {
  createTestDatabase,
  type PostgresServer,
  type PostgresServerOptions,
  startPostgres,
} from './postgres-server.ts';
