// The real sidecar as a child process, for this package's tests (the sidecar's own test helper).
export type {
  CertificateFiles,
  SidecarProcess,
  SidecarProcessOptions,
} from '@training-callbacks/sidecar/testing';
export {
  createCertificateAuthority,
  issueCertificate,
  startSidecarProcess,
} from '@training-callbacks/sidecar/testing';
