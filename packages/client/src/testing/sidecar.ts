// The lead's disposable helper that starts the real sidecar (apps/sidecar/src/main.ts) as a child
// process on a free port. Imported by path in this one place: the sidecar package exports no
// `./testing` subpath (yet).
export type { SidecarProcess, SidecarProcessOptions } from '../../../../apps/sidecar/src/testing.ts';
export { startSidecarProcess } from '../../../../apps/sidecar/src/testing.ts';
