export type { SidecarConfig } from './config.ts';
export { ConfigError, HELP, loadConfig } from './config.ts';
export type { Sidecar } from './sidecar.ts';
export { startSidecar } from './sidecar.ts';
