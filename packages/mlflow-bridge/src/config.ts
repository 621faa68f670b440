import { readFileSync } from 'node:fs';
import { MlflowError } from './errors.ts';

export type MlflowAuth =
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'bearer'; token: string };

export interface MlflowTlsConfig {
  /** Skip verification of the server's certificate (MLFLOW_TRACKING_INSECURE_TLS). */
  insecure?: boolean;
  /** CA bundle (PEM) used to verify the server (MLFLOW_TRACKING_SERVER_CERT_PATH). */
  caCertPath?: string;
  /** Client certificate for mutual TLS: one PEM file with the certificate and its key (MLFLOW_TRACKING_CLIENT_CERT_PATH). */
  clientCertPath?: string;
}

export interface MlflowConfig {
  /** `http(s)://host[:port][/prefix]`, without credentials. */
  trackingUri: string;
  auth?: MlflowAuth | undefined;
  tls?: MlflowTlsConfig | undefined;
  /** Time limit of one JSON call (default 120 s, MLFLOW_HTTP_REQUEST_TIMEOUT). */
  requestTimeoutMs?: number | undefined;
  /** Idle time limit of an artifact upload: no progress for this long aborts it (default 10 min). */
  artifactIdleTimeoutMs?: number | undefined;
}

type Env = Record<string, string | undefined>;

function truthy(v: string | undefined): boolean {
  return v !== undefined && ['1', 'true', 'yes', 'on'].includes(v.trim().toLowerCase());
}

function configError(message: string): MlflowError {
  return new MlflowError(message, { kind: 'config', retryable: false });
}

/**
 * Reads the MLflow client's own environment variables. Returns `undefined` when `MLFLOW_TRACKING_URI` is
 * unset or empty (mirroring is off); throws an `MlflowError` (kind `config`) when it is set but unusable.
 *
 * Like the Python client, username + password (Basic) win over a token (Bearer) when both are set.
 */
export function mlflowConfigFromEnv(env: Env = process.env): MlflowConfig | undefined {
  const raw = env.MLFLOW_TRACKING_URI?.trim();
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw configError(`MLFLOW_TRACKING_URI=${raw} is not a URL; expected http(s)://host:port`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw configError(
      `MLFLOW_TRACKING_URI=${raw}: only http(s) tracking servers are supported (got ${url.protocol}); start \`mlflow server\` and point the URI at it`,
    );
  }
  let auth: MlflowAuth | undefined;
  const username =
    env.MLFLOW_TRACKING_USERNAME ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const password =
    env.MLFLOW_TRACKING_PASSWORD ?? (url.password ? decodeURIComponent(url.password) : undefined);
  if (username !== undefined && password !== undefined && username !== '') {
    auth = { kind: 'basic', username, password };
  } else if (env.MLFLOW_TRACKING_TOKEN) {
    auth = { kind: 'bearer', token: env.MLFLOW_TRACKING_TOKEN };
  }
  url.username = '';
  url.password = '';
  const tls: MlflowTlsConfig = {};
  if (truthy(env.MLFLOW_TRACKING_INSECURE_TLS)) tls.insecure = true;
  if (env.MLFLOW_TRACKING_SERVER_CERT_PATH) tls.caCertPath = env.MLFLOW_TRACKING_SERVER_CERT_PATH;
  if (env.MLFLOW_TRACKING_CLIENT_CERT_PATH) tls.clientCertPath = env.MLFLOW_TRACKING_CLIENT_CERT_PATH;
  if (tls.insecure && tls.caCertPath) {
    throw configError(
      'MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH cannot both be set (as in the MLflow client)',
    );
  }
  const timeoutS = env.MLFLOW_HTTP_REQUEST_TIMEOUT ? Number(env.MLFLOW_HTTP_REQUEST_TIMEOUT) : undefined;
  if (timeoutS !== undefined && !(timeoutS > 0)) {
    throw configError(
      `MLFLOW_HTTP_REQUEST_TIMEOUT=${env.MLFLOW_HTTP_REQUEST_TIMEOUT} must be a positive number of seconds`,
    );
  }
  return {
    trackingUri: url.toString().replace(/\/+$/, ''),
    auth,
    tls: Object.keys(tls).length ? tls : undefined,
    requestTimeoutMs: timeoutS === undefined ? undefined : timeoutS * 1000,
  };
}

/** TLS options for `tls.connect` (given to the client's `https.Agent`), read from the configured files. */
export function tlsConnectOptions(tls: MlflowTlsConfig | undefined): Record<string, unknown> {
  if (!tls) return {};
  const out: Record<string, unknown> = {};
  const read = (p: string, what: string): string => {
    try {
      return readFileSync(p, 'utf8');
    } catch (e) {
      throw configError(`cannot read ${what} ${p}: ${(e as Error).message}`);
    }
  };
  if (tls.insecure) out.rejectUnauthorized = false;
  if (tls.caCertPath) out.ca = read(tls.caCertPath, 'MLFLOW_TRACKING_SERVER_CERT_PATH');
  if (tls.clientCertPath) {
    const pem = read(tls.clientCertPath, 'MLFLOW_TRACKING_CLIENT_CERT_PATH');
    out.cert = pem;
    if (/PRIVATE KEY-----/.test(pem)) out.key = pem;
  }
  return out;
}

export function authHeader(auth: MlflowAuth | undefined): string | undefined {
  if (!auth) return undefined;
  if (auth.kind === 'basic')
    return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  return `Bearer ${auth.token}`;
}
