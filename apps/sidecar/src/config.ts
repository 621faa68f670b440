import path from 'node:path';
import { parseArgs } from 'node:util';
import { type MlflowConfig, MlflowError, mlflowConfigFromEnv } from '@training-callbacks/mlflow-bridge/core';
import { exitCodesHelp } from './exit-codes.ts';
import { parseHostPort } from './http/listener.ts';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './logging.ts';
import type { TlsFiles } from './tls.ts';

/** Everything the sidecar can be told, from flags or environment. */
export interface SidecarConfig {
  /** Address to serve on: "host:port" (port 0 picks a free one) or "unix:/path/to.sock". */
  listen: string;
  /** The HTTP listener (probes, /metrics): "host:port"; undefined when turned off. */
  http?: string;
  /**
   * The database: an SQLite file (created with its directory when missing), or a PostgreSQL URL
   * (`postgres://…`), which many sidecars may share.
   */
  dbPath: string;
  /** Which of the two `dbPath` is. */
  dbDialect: 'sqlite' | 'postgresql';
  /** PostgreSQL: connections of this sidecar's pool. */
  dbPoolSize?: number;
  /** Where uploaded and logged artifact files are kept. */
  artifactStore: string;
  /** Directories LogArtifact may read from (a volume shared with the trainer). Empty: path logging is off. */
  artifactRoots: string[];
  /** 'normal' survives a crash of the sidecar; 'full' also survives a power loss (an fsync per commit). */
  durability: 'normal' | 'full';
  /** Largest accepted gRPC message, in bytes. */
  maxMessageBytes: number;
  /** Print no per-epoch line. */
  quiet: boolean;
  /** `text`: readable lines for a terminal; `json`: one JSON object per line (pino). */
  logFormat: LogFormat;
  /** Lines below this level are not written. */
  logLevel: LogLevel;
  /** On SIGTERM, how long the sidecar may take to exit while it still mirrors the outbox to MLflow. */
  shutdownDrainMs: number;
  /** MLflow mirroring, from MLflow's own variables (MLFLOW_TRACKING_URI, …); undefined: off. */
  mlflow?: MlflowConfig;
  /** How long an item that keeps failing transiently is retried, from its receipt, before it is parked. */
  mlflowRetryHorizonMs: number;
  /** Longest wait between two attempts to reach MLflow. */
  mlflowMaxBackoffMs: number;
  /** Log-batch requests in flight to MLflow (2 by default; 1 suits a one-worker server). */
  mlflowRequestConcurrency: number;
  /** How long this sidecar's claim on a job's outbox holds unless renewed (sidecars sharing a database). */
  mlflowClaimLeaseMs: number;
  /** TLS on the listeners (certificate and key files, optional client CA for mutual TLS); undefined: plaintext. */
  tls?: TlsFiles;
  /** Bearer-token file (`write <token>` / `read <token>` lines); undefined: no token is asked for. */
  authTokenFile?: string;
  /** A plaintext gRPC port serving only grpc.health.v1, for Kubernetes probes; undefined: none. */
  healthListen?: string;
  /** Listen beyond loopback without TLS and without tokens (refused otherwise). */
  insecureListen: boolean;
  /** WatchJobs/WatchJob send a heartbeat (and re-read the change feed) after this long idle. */
  watchKeepaliveMs: number;
  /**
   * A running job without a heartbeat or report for this long is declared lost (FAILED, revisable);
   * clients heartbeat every sixth of it (see docs/verdicts.md).
   */
  trainerLeaseMs: number;
}

export const HELP = `training-callbacks sidecar — the TrainingCallbacks gRPC service next to a trainer

Usage: training-callbacks serve [options]     (in a checkout: npm start -- [options])

Options (flag, environment variable, default):
  --listen ADDR            TRAINING_CALLBACKS_LISTEN          127.0.0.1:50051
                           host:port (port 0 = any free port) or unix:/path/to.sock
  --http ADDR              TRAINING_CALLBACKS_HTTP            127.0.0.1:50052
                           HTTP for the web dashboard (/), its read-only Connect API, /livez,
                           /readyz and Prometheus /metrics; host:port or off
  --db PATH|URL            TRAINING_CALLBACKS_DB              ./data/training-callbacks.sqlite
                           an SQLite file (one sidecar), or postgres://user@host:5432/db?sslmode=…
                           (many sidecars share it; PGHOST, PGUSER, PGPASSWORD, … fill in the rest)
  --db-pool-size N         TRAINING_CALLBACKS_DB_POOL_SIZE    10 (PostgreSQL connections per sidecar)
  --artifact-store DIR     TRAINING_CALLBACKS_ARTIFACT_STORE  <dir of --db>/artifacts (PostgreSQL: ./data/artifacts)
  --artifact-root DIR      TRAINING_CALLBACKS_ARTIFACT_ROOTS  (none: LogArtifact by path is refused)
                           repeatable; the env variable takes a ':'-separated list
  --durability MODE        TRAINING_CALLBACKS_DURABILITY      normal  (normal | full)
  --max-message-bytes N    TRAINING_CALLBACKS_MAX_MESSAGE_BYTES  16777216
  --quiet                  TRAINING_CALLBACKS_QUIET=1         print no per-epoch line
  --log-format FORMAT      TRAINING_CALLBACKS_LOG_FORMAT      text  (text | json: one JSON object per line
                           with level, time, event, jobId and fields, for log pipelines)
  --shutdown-drain S       TRAINING_CALLBACKS_SHUTDOWN_DRAIN  25  on SIGTERM, finish in-flight calls and keep
                           sending the outbox to MLflow for at most S seconds, then exit (stay under
                           Kubernetes' terminationGracePeriodSeconds, 30 by default); what is left is
                           logged and sent at the next start
  --log-level LEVEL        TRAINING_CALLBACKS_LOG_LEVEL       info  (debug | info | warn | error | silent)
  --watch-keepalive S      TRAINING_CALLBACKS_WATCH_KEEPALIVE 15  seconds without an event before a watch
                           stream sends a heartbeat (and re-reads the change feed)
  --trainer-lease S        TRAINING_CALLBACKS_TRAINER_LEASE   60  a running job without a heartbeat or report
                           for S seconds is ended FAILED as lost (revived if its trainer comes back);
                           clients heartbeat every S/6 seconds. A trainer process the sidecar can see
                           (same host or shareProcessNamespace) gets its verdict within seconds of exiting
  -h, --help               show this help

Security (see docs/security.md):
  --tls-cert FILE          TRAINING_CALLBACKS_TLS_CERT        (none: plaintext) PEM certificate chain
  --tls-key FILE           TRAINING_CALLBACKS_TLS_KEY         its PEM private key
  --tls-client-ca FILE     TRAINING_CALLBACKS_TLS_CLIENT_CA   clients must present a certificate this CA
                           signed (mutual TLS). The three files are re-read when they change.
  --auth-token-file FILE   TRAINING_CALLBACKS_AUTH_TOKEN_FILE (none: no token asked for) one token per
                           line, "write <token>" or "read <token>" (reads only); re-read when it changes.
                           Calls without a valid token: UNAUTHENTICATED; writes with a read token:
                           PERMISSION_DENIED. grpc.health.v1 needs no token.
  --health-listen ADDR     TRAINING_CALLBACKS_HEALTH_LISTEN   (none) a plaintext port serving only
                           grpc.health.v1, for Kubernetes gRPC probes when the main port has TLS
  --insecure-listen        TRAINING_CALLBACKS_INSECURE_LISTEN=1  allow --listen or --http beyond
                           loopback with neither TLS nor tokens (refused otherwise, exit code 2)
  TLS and tokens apply to --http as well (same certificate, same tokens); /livez and /readyz stay open.

Mirroring to MLflow (off unless MLFLOW_TRACKING_URI is set; MLflow's own variables):
  MLFLOW_TRACKING_URI                  http(s)://host:port of an \`mlflow server\` (with --serve-artifacts
                                       for artifacts); user:password@ in the URL is used as Basic auth
  MLFLOW_TRACKING_USERNAME / _PASSWORD Basic auth        MLFLOW_TRACKING_TOKEN   Bearer token
  MLFLOW_TRACKING_INSECURE_TLS=true    skip certificate checks
  MLFLOW_TRACKING_SERVER_CERT_PATH     CA bundle (PEM)   MLFLOW_TRACKING_CLIENT_CERT_PATH  client cert+key (PEM)
  MLFLOW_HTTP_REQUEST_TIMEOUT          seconds per request (default 120)
  --mlflow-retry-horizon S  TRAINING_CALLBACKS_MLFLOW_RETRY_HORIZON  604800 (7 days)
                           how long an item is retried while MLflow is unreachable or answers 5xx/429
  --mlflow-max-backoff S    TRAINING_CALLBACKS_MLFLOW_MAX_BACKOFF    300  longest wait between attempts
  --mlflow-concurrency N    TRAINING_CALLBACKS_MLFLOW_CONCURRENCY    2    log-batch requests in flight (1 for an
                           \`mlflow server --workers 1\`, which runs one request at a time anyway)
  --mlflow-claim-lease S    TRAINING_CALLBACKS_MLFLOW_CLAIM_LEASE    30   sidecars sharing a database drain each
                           job's outbox under a claim renewed while they drain it; a sidecar that dies
                           loses its jobs to the others after this long
RPCs never wait for MLflow: every write is queued in the database in the same transaction and sent in
the background, in order per job, through outages and restarts. GetJob/ListJobs show mlflow_sync.

The sidecar binds to loopback by default. It answers grpc.health.v1 health checks (NOT_SERVING while
the database cannot be written) and serves gRPC reflection. SIGTERM/SIGINT stop it gracefully
(in-flight calls finish, the database closes). It holds <db>-lock while it runs: one sidecar per
database. At start it refuses another application's file and a damaged database.

Exit codes:
${exitCodesHelp()}`;

/** Thrown for a bad flag or variable; main prints it with the help hint and exits 2. */
export class ConfigError extends Error {
  override readonly name: string = 'ConfigError';
}

/**
 * Whether `listen` is reachable from this machine only: a unix socket or a loopback address
 * (127.0.0.0/8, ::1, localhost). Anything else — 0.0.0.0, [::], a pod IP, a host name — is not.
 */
export function isLoopbackListen(listen: string): boolean {
  if (listen.startsWith('unix:')) return true;
  const colon = listen.lastIndexOf(':');
  const host = (colon < 0 ? listen : listen.slice(0, colon)).replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

function securityConfig(
  values: ReturnType<typeof parse>['values'],
  env: NodeJS.ProcessEnv,
  listeners: readonly string[],
): Pick<SidecarConfig, 'tls' | 'authTokenFile' | 'healthListen' | 'insecureListen'> {
  const certFile = values['tls-cert'] ?? env.TRAINING_CALLBACKS_TLS_CERT;
  const keyFile = values['tls-key'] ?? env.TRAINING_CALLBACKS_TLS_KEY;
  const clientCaFile = values['tls-client-ca'] ?? env.TRAINING_CALLBACKS_TLS_CLIENT_CA;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(
      certFile === undefined
        ? '--tls-key was given without --tls-cert; give both (the certificate chain and its private key)'
        : '--tls-cert was given without --tls-key; give both (the certificate chain and its private key)',
    );
  }
  if (clientCaFile !== undefined && certFile === undefined) {
    throw new ConfigError(
      '--tls-client-ca needs --tls-cert and --tls-key: mutual TLS is TLS with client certificates',
    );
  }
  const authTokenFile = values['auth-token-file'] ?? env.TRAINING_CALLBACKS_AUTH_TOKEN_FILE;
  const healthListen = values['health-listen'] ?? env.TRAINING_CALLBACKS_HEALTH_LISTEN;
  const insecureListen = values['insecure-listen'] ?? env.TRAINING_CALLBACKS_INSECURE_LISTEN === '1';
  // The gRPC port and the HTTP listener alike; the health-only port carries nothing worth protecting.
  const exposed = listeners.find((address) => !isLoopbackListen(address));
  if (certFile === undefined && authTokenFile === undefined && !insecureListen && exposed !== undefined) {
    throw new ConfigError(
      `refusing to listen on ${exposed} (beyond loopback) with neither TLS nor tokens: anyone who can reach ` +
        'it could write and read every job. Give --tls-cert/--tls-key and/or --auth-token-file ' +
        '(see docs/security.md), or --insecure-listen if the network itself is trusted.',
    );
  }
  return {
    ...(certFile !== undefined &&
      keyFile !== undefined && {
        tls: {
          certFile: path.resolve(certFile),
          keyFile: path.resolve(keyFile),
          ...(clientCaFile !== undefined && { clientCaFile: path.resolve(clientCaFile) }),
        },
      }),
    ...(authTokenFile !== undefined && { authTokenFile: path.resolve(authTokenFile) }),
    ...(healthListen !== undefined && { healthListen }),
    insecureListen,
  };
}

/** Parses flags and environment. Returns undefined when --help was asked for. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): SidecarConfig | undefined {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const { values } = parsed;
  if (values.help) return undefined;
  const dbRaw = values.db ?? env.TRAINING_CALLBACKS_DB ?? 'data/training-callbacks.sqlite';
  // Another URL would otherwise be taken for a relative file name (`mysql:/…` as a directory): refuse
  // it. Only the scheme is shown: the URL may carry a password.
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(dbRaw)?.[1];
  const dbDialect = scheme === undefined ? 'sqlite' : 'postgresql';
  if (scheme !== undefined && !/^postgres(ql)?$/i.test(scheme)) {
    throw new ConfigError(
      `--db is a ${scheme}:// URL; the sidecar stores in an SQLite file or in PostgreSQL: give a file path (--db ./data/training-callbacks.sqlite) or postgres://user@host:5432/db`,
    );
  }
  const dbPath = dbDialect === 'sqlite' ? path.resolve(dbRaw) : dbRaw;
  const poolRaw = values['db-pool-size'] ?? env.TRAINING_CALLBACKS_DB_POOL_SIZE;
  const dbPoolSize = poolRaw === undefined ? undefined : Number(poolRaw);
  if (dbPoolSize !== undefined && !(Number.isInteger(dbPoolSize) && dbPoolSize >= 2 && dbPoolSize <= 1000)) {
    throw new ConfigError(`--db-pool-size must be a whole number from 2 to 1000, got "${poolRaw}"`);
  }
  const durability = values.durability ?? env.TRAINING_CALLBACKS_DURABILITY ?? 'normal';
  if (durability !== 'normal' && durability !== 'full') {
    throw new ConfigError(`--durability must be "normal" or "full", got "${durability}"`);
  }
  const maxRaw = values['max-message-bytes'] ?? env.TRAINING_CALLBACKS_MAX_MESSAGE_BYTES ?? '16777216';
  const maxMessageBytes = Number(maxRaw);
  if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 65536) {
    throw new ConfigError(`--max-message-bytes must be an integer ≥ 65536, got "${maxRaw}"`);
  }
  let mlflow: MlflowConfig | undefined;
  try {
    mlflow = mlflowConfigFromEnv(env);
  } catch (error) {
    if (error instanceof MlflowError) throw new ConfigError(error.message);
    throw error;
  }
  const seconds = (flag: string, raw: string, min: number) => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min)
      throw new ConfigError(`--${flag} must be a number of seconds ≥ ${min}, got "${raw}"`);
    return n * 1000;
  };
  const mlflowRetryHorizonMs = seconds(
    'mlflow-retry-horizon',
    values['mlflow-retry-horizon'] ?? env.TRAINING_CALLBACKS_MLFLOW_RETRY_HORIZON ?? '604800',
    1,
  );
  const mlflowMaxBackoffMs = seconds(
    'mlflow-max-backoff',
    values['mlflow-max-backoff'] ?? env.TRAINING_CALLBACKS_MLFLOW_MAX_BACKOFF ?? '300',
    0.1,
  );
  const mlflowClaimLeaseMs = seconds(
    'mlflow-claim-lease',
    values['mlflow-claim-lease'] ?? env.TRAINING_CALLBACKS_MLFLOW_CLAIM_LEASE ?? '30',
    0.1,
  );
  const watchKeepaliveMs = seconds(
    'watch-keepalive',
    values['watch-keepalive'] ?? env.TRAINING_CALLBACKS_WATCH_KEEPALIVE ?? '15',
    0.05,
  );
  const trainerLeaseMs = seconds(
    'trainer-lease',
    values['trainer-lease'] ?? env.TRAINING_CALLBACKS_TRAINER_LEASE ?? '60',
    1,
  );
  const concurrencyRaw = values['mlflow-concurrency'] ?? env.TRAINING_CALLBACKS_MLFLOW_CONCURRENCY ?? '2';
  const mlflowRequestConcurrency = Number(concurrencyRaw);
  if (
    !Number.isInteger(mlflowRequestConcurrency) ||
    mlflowRequestConcurrency < 1 ||
    mlflowRequestConcurrency > 16
  ) {
    throw new ConfigError(`--mlflow-concurrency must be an integer from 1 to 16, got "${concurrencyRaw}"`);
  }
  const logFormat = values['log-format'] ?? env.TRAINING_CALLBACKS_LOG_FORMAT ?? 'text';
  if (!(LOG_FORMATS as readonly string[]).includes(logFormat)) {
    throw new ConfigError(`--log-format must be ${LOG_FORMATS.join(' or ')}, got "${logFormat}"`);
  }
  const logLevel = values['log-level'] ?? env.TRAINING_CALLBACKS_LOG_LEVEL ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  const roots = values['artifact-root']?.length
    ? values['artifact-root']
    : (env.TRAINING_CALLBACKS_ARTIFACT_ROOTS ?? '').split(':').filter(Boolean);
  const artifactStore = path.resolve(
    values['artifact-store'] ??
      env.TRAINING_CALLBACKS_ARTIFACT_STORE ??
      // A shared database has no directory of its own: artifacts beside the working directory's data.
      path.join(dbDialect === 'sqlite' ? path.dirname(dbPath) : path.resolve('data'), 'artifacts'),
  );
  // Artifacts are written two levels below the store (<job>/<name>): a database deeper inside it
  // could be named by a job id and an artifact path.
  if (dbDialect === 'sqlite' && path.dirname(dbPath).startsWith(artifactStore + path.sep)) {
    throw new ConfigError(
      `--db ${dbPath} lies inside --artifact-store ${artifactStore}; keep the database outside the artifact store (e.g. --artifact-store ${path.join(path.dirname(dbPath), 'artifacts')})`,
    );
  }
  const listen = values.listen ?? env.TRAINING_CALLBACKS_LISTEN ?? '127.0.0.1:50051';
  const http = values.http ?? env.TRAINING_CALLBACKS_HTTP ?? '127.0.0.1:50052';
  if (http !== 'off') {
    try {
      parseHostPort(http);
    } catch (error) {
      throw new ConfigError(`--http must be host:port or "off": ${(error as Error).message}`);
    }
  }
  return {
    listen,
    ...(http !== 'off' && { http }),
    dbPath,
    dbDialect,
    ...(dbPoolSize !== undefined && { dbPoolSize }),
    artifactStore,
    artifactRoots: roots.map((root) => path.resolve(root)),
    durability,
    maxMessageBytes,
    quiet: values.quiet ?? env.TRAINING_CALLBACKS_QUIET === '1',
    logFormat: logFormat as LogFormat,
    shutdownDrainMs: seconds(
      'shutdown-drain',
      values['shutdown-drain'] ?? env.TRAINING_CALLBACKS_SHUTDOWN_DRAIN ?? '25',
      0,
    ),
    logLevel: logLevel as LogLevel,
    ...(mlflow && { mlflow }),
    mlflowRetryHorizonMs,
    mlflowMaxBackoffMs,
    mlflowRequestConcurrency,
    mlflowClaimLeaseMs,
    watchKeepaliveMs,
    trainerLeaseMs,
    ...securityConfig(values, env, http === 'off' ? [listen] : [listen, http]),
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      listen: { type: 'string' },
      http: { type: 'string' },
      db: { type: 'string' },
      'artifact-store': { type: 'string' },
      'artifact-root': { type: 'string', multiple: true },
      durability: { type: 'string' },
      'db-pool-size': { type: 'string' },
      'max-message-bytes': { type: 'string' },
      quiet: { type: 'boolean' },
      'log-format': { type: 'string' },
      'shutdown-drain': { type: 'string' },
      'log-level': { type: 'string' },
      'mlflow-retry-horizon': { type: 'string' },
      'mlflow-max-backoff': { type: 'string' },
      'mlflow-concurrency': { type: 'string' },
      'mlflow-claim-lease': { type: 'string' },
      'watch-keepalive': { type: 'string' },
      'trainer-lease': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-client-ca': { type: 'string' },
      'auth-token-file': { type: 'string' },
      'health-listen': { type: 'string' },
      'insecure-listen': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
