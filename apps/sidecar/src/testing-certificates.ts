// Test helper: real X.509 certificates made with the openssl CLI (a CA, server and client
// certificates signed by it), so TLS tests exercise the same PEM files an operator would mount.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

/** A certificate and its private key, as PEM files. */
export interface CertificateFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

function openssl(args: readonly string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args.join(' ')} failed (is the openssl CLI installed?): ${stderr}`);
  }
}

/** Creates a self-signed certificate authority `name` in `dir` (P-256 key, valid for a day). */
export function createCertificateAuthority(dir: string, name: string): CertificateFiles {
  mkdirSync(dir, { recursive: true });
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-subj',
    `/CN=${name}`,
    '-days',
    '1',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { certFile, keyFile };
}

/**
 * Issues a certificate `name` signed by `ca` into `dir`: for a server (valid for localhost and
 * 127.0.0.1) or a client. Writing to the same name again replaces the files (a rotation).
 */
export function issueCertificate(
  ca: CertificateFiles,
  dir: string,
  name: string,
  kind: 'server' | 'client',
): CertificateFiles {
  mkdirSync(dir, { recursive: true });
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  openssl([
    'req',
    '-x509',
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-subj',
    `/CN=${name}`,
    '-days',
    '1',
    '-addext',
    'basicConstraints=critical,CA:FALSE',
    '-addext',
    kind === 'server'
      ? 'subjectAltName=DNS:localhost,IP:127.0.0.1'
      : `subjectAltName=DNS:${name.replace(/[^A-Za-z0-9.-]/g, '-')}`,
    '-addext',
    `extendedKeyUsage=${kind === 'server' ? 'serverAuth' : 'clientAuth'}`,
  ]);
  return { certFile, keyFile };
}
