// The real sidecar as a child process, for this package's tests (the sidecar's own test helper).
export type { SidecarProcess, SidecarProcessOptions } from '@training-callbacks/sidecar/testing';
export { startSidecarProcess } from '@training-callbacks/sidecar/testing';
