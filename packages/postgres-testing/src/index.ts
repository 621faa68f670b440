export {
  createTestDatabase,
  type PostgresServer,
  type PostgresServerOptions,
  startPostgres,
} from './postgres-server.ts';
