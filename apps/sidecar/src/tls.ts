// TLS for the sidecar's listeners: the certificate, key and (for mutual TLS) client CA files, re-read
// when they change on disk so a rotated certificate (cert-manager, a Kubernetes Secret update) is
// served without a restart. One source feeds both the gRPC port (through grpc-js' certificate
// provider interface) and the HTTP listener (node:https `setSecureContext`).
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { experimental as grpcExperimental, type ServerCredentials } from '@grpc/grpc-js';
import { ConfigError } from './config.ts';

/** The files of `--tls-cert`, `--tls-key` and `--tls-client-ca`. */
export interface TlsFiles {
  /** PEM certificate chain (leaf first). */
  readonly certFile: string;
  /** PEM private key of the leaf certificate. */
  readonly keyFile: string;
  /** PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS). */
  readonly clientCaFile?: string;
}

/** The PEM contents of one consistent set of TLS files. */
interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer | undefined;
}

/** A ConfigError (exit code 2) thrown when the TLS files cannot be read or do not form a usable certificate and key. */
export class TlsFilesError extends ConfigError {
  override readonly name = 'TlsFilesError';
}

/** How often the files are checked for a change. Rotations are rare; a stat-free read of 3 small files. */
export const TLS_RELOAD_INTERVAL_MS = 1000;

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Checks that the material makes a secure context (the key matches the certificate, PEM parses). */
function validate(material: TlsMaterial, files: TlsFiles): void {
  try {
    createSecureContext({ cert: material.cert, key: material.key, ...(material.ca && { ca: material.ca }) });
  } catch (error) {
    throw new TlsFilesError(
      `the TLS files ${files.certFile} and ${files.keyFile}${files.clientCaFile ? ` and ${files.clientCaFile}` : ''} ` +
        `do not form a usable certificate: ${describe(error)}. Give a PEM certificate chain and its own private key.`,
    );
  }
}

function readAllSync(files: TlsFiles): TlsMaterial {
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new TlsFilesError(`cannot read ${flag} ${file}: ${describe(error)}`);
    }
  };
  return {
    cert: read('--tls-cert', files.certFile),
    key: read('--tls-key', files.keyFile),
    ca: files.clientCaFile === undefined ? undefined : read('--tls-client-ca', files.clientCaFile),
  };
}

async function readAll(files: TlsFiles): Promise<TlsMaterial> {
  const [cert, key, ca] = await Promise.all([
    readFile(files.certFile),
    readFile(files.keyFile),
    files.clientCaFile === undefined ? undefined : readFile(files.clientCaFile),
  ]);
  return { cert, key, ca };
}

const same = (a: Buffer | undefined, b: Buffer | undefined) =>
  a === b || (a !== undefined && b !== undefined && a.equals(b));

/** A set of TLS files kept current: read at start, re-read when they change. */
export interface TlsSource {
  /** The options to build a secure context from (`https.createServer`, `setSecureContext`). */
  current(): SecureContextOptions;
  /** SHA-256 fingerprint of the leaf certificate being served ("AB:CD:…"). */
  fingerprint(): string;
  /** Whether clients must present a certificate (`--tls-client-ca` given). */
  readonly mutual: boolean;
  /** Calls `listener` with the new options after each successful reload; returns an unsubscribe. */
  onChange(listener: (options: SecureContextOptions) => void): () => void;
  /** grpc-js server credentials that follow the reloads. */
  serverCredentials(): ServerCredentials;
  /** Stops watching the files. */
  close(): void;
}

/**
 * Reads the TLS files now (throws {@link TlsFilesError} with what to fix when they are unusable) and
 * re-reads them every {@link TLS_RELOAD_INTERVAL_MS}. A change is applied only once the set is usable
 * again: a rotation that writes the certificate before the key serves the old pair until both match,
 * and a broken file is reported once through `warn` while the old pair keeps serving.
 */
export function watchTlsFiles(
  files: TlsFiles,
  warn: (line: string) => void,
  intervalMs = TLS_RELOAD_INTERVAL_MS,
): TlsSource {
  let material = readAllSync(files);
  validate(material, files);
  const listeners = new Set<(options: SecureContextOptions) => void>();
  let lastProblem: string | undefined;
  let checking = false;

  const toOptions = (m: TlsMaterial): SecureContextOptions => ({
    cert: m.cert,
    key: m.key,
    ...(m.ca && { ca: m.ca }),
  });

  const check = async () => {
    if (checking) return;
    checking = true;
    try {
      const next = await readAll(files);
      if (same(next.cert, material.cert) && same(next.key, material.key) && same(next.ca, material.ca)) {
        lastProblem = undefined;
        return;
      }
      validate(next, files);
      material = next;
      lastProblem = undefined;
      warn(`training-callbacks: TLS files changed; now serving certificate ${fingerprintOf(next.cert)}`);
      for (const listener of listeners) listener(toOptions(next));
    } catch (error) {
      const problem = describe(error);
      if (problem !== lastProblem) {
        warn(
          `training-callbacks: TLS files not reloaded, still serving the previous certificate: ${problem}`,
        );
        lastProblem = problem;
      }
    } finally {
      checking = false;
    }
  };
  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();

  const source: TlsSource = {
    current: () => toOptions(material),
    fingerprint: () => fingerprintOf(material.cert),
    mutual: files.clientCaFile !== undefined,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    serverCredentials: () => grpcCredentialsOf(source),
    close: () => clearInterval(timer),
  };
  return source;
}

/** SHA-256 fingerprint of the first certificate of a PEM chain. */
export function fingerprintOf(pem: Buffer | string): string {
  return new X509Certificate(pem).fingerprint256;
}

/**
 * grpc-js credentials fed by the source through grpc-js' (experimental, but exported and documented)
 * certificate-provider interface: the server calls `setSecureContext` on its HTTP/2 server for each
 * update. Updates must arrive asynchronously (grpc-js subscribes before it registers its watcher).
 */
function grpcCredentialsOf(source: TlsSource): ServerCredentials {
  type Identity = grpcExperimental.IdentityCertificateUpdateListener;
  type Ca = grpcExperimental.CaCertificateUpdateListener;
  const identityListeners = new Map<Identity, () => void>();
  const caListeners = new Map<Ca, () => void>();
  const identityOf = (o: SecureContextOptions) => ({
    certificate: o.cert as Buffer,
    privateKey: o.key as Buffer,
  });
  const provider: grpcExperimental.CertificateProvider = {
    addIdentityCertificateListener(listener) {
      process.nextTick(listener, identityOf(source.current()));
      identityListeners.set(
        listener,
        source.onChange((o) => listener(identityOf(o))),
      );
    },
    removeIdentityCertificateListener(listener) {
      identityListeners.get(listener)?.();
      identityListeners.delete(listener);
    },
    addCaCertificateListener(listener) {
      process.nextTick(listener, { caCertificate: source.current().ca as Buffer });
      caListeners.set(
        listener,
        source.onChange((o) => listener({ caCertificate: o.ca as Buffer })),
      );
    },
    removeCaCertificateListener(listener) {
      caListeners.get(listener)?.();
      caListeners.delete(listener);
    },
  };
  // grpc-js names the parameters the other way round; the first is the identity (certificate + key)
  // provider, the second the CA provider, which also turns on requesting and requiring client certs.
  return grpcExperimental.createCertificateProviderServerCredentials(
    provider,
    source.mutual ? provider : null,
    source.mutual,
  );
}
