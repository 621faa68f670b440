export type { SidecarConfig } from './config.ts';
export { ConfigError, HELP, loadConfig } from './config.ts';
export type { DatabaseHealth, DatabaseHealthOptions, DatabaseHealthState } from './database-health.ts';
export { startDatabaseHealth } from './database-health.ts';
export { EXIT_CODES } from './exit-codes.ts';
export type { StorageFailure } from './failure-status.ts';
export { FAILURE_STATUS } from './failure-status.ts';
export type { Sidecar } from './sidecar.ts';
export { startSidecar } from './sidecar.ts';
