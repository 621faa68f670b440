import { Server, ServerCredentials } from '@grpc/grpc-js';
import { addReflection, addService } from '@training-callbacks/grpc-adapter';
import type { RunningMirror } from '@training-callbacks/mlflow-bridge/mirror';
import {
  decodeBatchRequest,
  file_trainingcallbacks_v1_training_callbacks,
  TrainingCallbacks,
} from '@training-callbacks/proto';
import {
  type DatabaseLock,
  lockDatabase,
  openStore,
  redactedDatabaseUrl,
  type Store,
} from '@training-callbacks/store';
import { createArtifactFiles } from './artifacts.ts';
import { type TokenAuthenticator, watchTokenFile } from './auth.ts';
import { tokenInterceptor } from './auth-grpc.ts';
import { httpAuthorizer, httpsServerFactory } from './auth-http.ts';
import { startFeedCompaction } from './change-feed-compaction.ts';
import type { SidecarConfig } from './config.ts';
import { type DatabaseHealth, startDatabaseHealth } from './database-health.ts';
import { ListenError } from './exit-codes.ts';
import { createFailureMapper } from './failure-status.ts';
import type { Verdicts } from './handlers/verdicts.ts';
import { createSidecarHealth, type SidecarHealth } from './health.ts';
import { ARTIFACT_DOWNLOAD_PREFIX, artifactDownloadHandler } from './http/artifact-download.ts';
import { createHttpListener, type HttpListener, loadOnFirstRequest } from './http/listener.ts';
import { locateDashboard, mlflowUiAddress, staticFilesHandler } from './http/static-files.ts';
import { createLogger, type SidecarLogger } from './logging.ts';
import { createSidecarMetrics, instrumentStoreCommits, type SidecarMetrics } from './metrics.ts';
import { createTrainingCallbacksService } from './service.ts';
import { type TlsSource, watchTlsFiles } from './tls.ts';

/** A running sidecar. */
export interface Sidecar {
  /** The address it serves on, with the real port when 0 was asked for. */
  readonly address: string;
  /** The HTTP listener's address (probes, /metrics), when `config.http` is set. */
  readonly httpAddress?: string;
  readonly store: Store;
  readonly health: SidecarHealth;
  /** Whether the database can be written now; readiness follows it (condition 'database'). */
  readonly databaseHealth: DatabaseHealth;
  readonly metrics: SidecarMetrics;
  /** The MLflow mirror, when MLFLOW_TRACKING_URI is set. */
  readonly mirror?: RunningMirror;
  /** The plaintext health-only address (`--health-listen`), with its real port. */
  readonly healthAddress?: string;
  /** How the listeners are protected, for the start-up line: "TLS, client certificates, tokens". */
  readonly security: string;
  /** The TLS files being served (reloaded when they change), when `--tls-cert` is set. */
  readonly tls?: TlsSource;
  /**
   * Stops gracefully: health turns NOT_SERVING, no new calls are accepted, in-flight calls finish
   * (up to `graceMs`, then they are cancelled); with MLflow, the outbox is drained until `drainMs`
   * after the call (what is left is logged and stays in the database); the database is closed.
   */
  close(graceMs?: number, drainMs?: number): Promise<void>;
}

/** The database as messages name it: the file, or the PostgreSQL URL without its password. */
export function databaseName(config: Pick<SidecarConfig, 'dbPath'>): string {
  return redactedDatabaseUrl(config.dbPath);
}

/**
 * Serves the HTTP listener first (liveness answers, readiness says the database is being opened),
 * takes the database's lock, opens the store (which refuses a foreign or damaged file, then applies
 * migrations), then serves TrainingCallbacks, health and reflection on `config.listen`. Start-up
 * refusals throw DatabaseOpenError (the database) or ListenError (an address); main maps them to
 * exit codes (exit-codes.ts).
 */
export async function startSidecar(
  config: SidecarConfig,
  logger: SidecarLogger = createLogger({ format: config.logFormat, level: config.logLevel }),
): Promise<Sidecar> {
  // Unusable TLS or token files are refused (a ConfigError) before anything is opened.
  const warn = (line: string) => logger.warn(line, { event: 'security_files' });
  const tls = config.tls && watchTlsFiles(config.tls, warn);
  let tokens: TokenAuthenticator | undefined;
  try {
    tokens = config.authTokenFile === undefined ? undefined : watchTokenFile(config.authTokenFile, warn);
  } catch (error) {
    tls?.close();
    throw error;
  }
  const stopWatching = () => {
    tls?.close();
    tokens?.close();
  };
  const log = logger.info;
  const metrics = createSidecarMetrics();
  const health = createSidecarHealth({ migrations: 'opening the database and applying its migrations' });
  let http: HttpListener | undefined;
  // The same certificate (and its reloads) and the same tokens as the gRPC port.
  const authorizeHttp =
    tokens || tls?.mutual ? httpAuthorizer({ ...(tokens && { tokens }), ...(tls && { tls }) }) : undefined;
  if (config.http) {
    http = createHttpListener({
      address: config.http,
      ...(tls && { createServer: httpsServerFactory(tls) }),
      ...(authorizeHttp && { authorize: authorizeHttp }),
      onError: (error, urlPath) =>
        logger.error(`HTTP handler for ${urlPath} failed: ${(error as Error)?.stack ?? error}`, {
          event: 'internal_error',
          path: urlPath,
        }),
    });
    health.mountProbes(http);
    http.route('/metrics', async (_request, response) => {
      const { contentType, body } = await metrics.scrape();
      response.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
      response.end(body);
    });
    try {
      await http.listen();
    } catch (error) {
      stopWatching();
      throw new ListenError(config.http, error as Error);
    }
  }
  // Damage found by an integrity check that outlived start-up's wait (a very large file) arrives
  // later; the database health, started once the store is open, then keeps readiness off.
  let lateDamage: Error | undefined;
  let databaseHealth: DatabaseHealth | undefined;
  const onLateDamage = (error: Error) => {
    logger.error(`training-callbacks: ${error.message}`, { event: 'database_damaged' });
    lateDamage = error;
    databaseHealth?.reportFailure('damaged', error);
  };
  let lock: DatabaseLock | undefined;
  let store: Store;
  try {
    // An SQLite file is one sidecar's; a PostgreSQL database is shared by design.
    if (config.dbDialect === 'sqlite') lock = lockDatabase(config.dbPath);
    store = await openStore({
      dbPath: config.dbPath,
      dialect: config.dbDialect,
      ...(config.dbPoolSize !== undefined && { poolSize: config.dbPoolSize }),
      durability: config.durability,
      integrityCheck: { onLateDamage },
      onNotice: (message) => logger.warn(`training-callbacks: ${message}`, { event: 'database_notice' }),
    });
  } catch (error) {
    lock?.release();
    stopWatching();
    await http?.close(0);
    throw error;
  }
  const dbHealth = startDatabaseHealth({
    ...(config.dbDialect === 'sqlite' && { dbPath: config.dbPath }),
    probeWrite: () => store.probeWrite(),
    log: (line) => logger.warn(line, { event: 'database_health' }),
  });
  databaseHealth = dbHealth;
  const followDatabase = () =>
    health.setCondition('database', dbHealth.state.writable ? undefined : dbHealth.state.reason);
  dbHealth.onChange(followDatabase);
  if (lateDamage) dbHealth.reportFailure('damaged', lateDamage);
  followDatabase();
  instrumentStoreCommits(store, metrics);
  metrics.watchStore(store);
  const compaction = startFeedCompaction({ store, log: (line, fields) => logger.info(line, fields) });
  health.setCondition('migrations', undefined);
  const server = new Server({
    'grpc.max_receive_message_length': config.maxMessageBytes,
    'grpc.max_send_message_length': config.maxMessageBytes,
    // channelz keeps per-call statistics for a debugging service we do not serve; it costs ~4 % of
    // the CPU of every call (measured with --cpu-prof under EndEpoch load).
    'grpc.enable_channelz': 0,
    // Metrics first (outermost), so calls refused by the token check are counted too.
    interceptors: [
      metrics.rpcInterceptor,
      ...(tokens ? [tokenInterceptor(tokens, [TrainingCallbacks])] : []),
    ],
  });
  // Kubernetes' gRPC probes speak neither TLS nor tokens: a port of its own serving health only.
  const healthServer =
    config.healthListen === undefined ? undefined : new Server({ 'grpc.enable_channelz': 0 });
  let mirror: RunningMirror | undefined;
  let verdicts: Verdicts | undefined;
  try {
    if (config.mlflow) {
      // Loaded only when MLflow is configured: the HTTP client and worker cost memory otherwise.
      const { startMirror } = await import('@training-callbacks/mlflow-bridge/mirror');
      mirror = await startMirror({
        config: config.mlflow,
        store,
        // The file's lock: no other sidecar drains this database.
        exclusiveDatabase: lock !== undefined,
        claimLeaseMs: config.mlflowClaimLeaseMs,
        retryHorizonMs: config.mlflowRetryHorizonMs,
        maxBackoffMs: config.mlflowMaxBackoffMs,
        requestConcurrency: config.mlflowRequestConcurrency,
        log,
        logError: logger.error,
        onMlflowRequests: (observations) => metrics.mlflowRequests(observations),
      });
    }
    const service = createTrainingCallbacksService({
      store,
      maxMessageBytes: config.maxMessageBytes,
      artifacts: createArtifactFiles({
        store: config.artifactStore,
        roots: config.artifactRoots,
        ...(config.dbDialect === 'sqlite' && { database: config.dbPath }),
      }),
      log: config.quiet ? () => {} : log,
      notice: log,
      metrics,
      watchKeepaliveMs: config.watchKeepaliveMs,
      trainerLeaseMs: config.trainerLeaseMs,
      ...(mirror && { mirror }),
    });
    verdicts = service.verdicts;
    // Leases extended, visible trainers watched, the sweeper running, before the first call.
    await verdicts.start();
    const running = verdicts;
    const handlers = metrics.countHandlersInFlight(TrainingCallbacks, service.handlers);
    const errorEdge = {
      mapError: createFailureMapper({
        dbPath: config.dbPath,
        artifactStore: config.artifactStore,
        onStorageFailure: (failure, error) => dbHealth.reportFailure(failure, error),
      }),
      onInternalError: (error: unknown, method: string) =>
        logger.error(`internal error in ${method}: ${(error as Error)?.stack ?? error}`, {
          event: 'internal_error',
          method,
        }),
    };
    // Batch points are read into typed arrays, not one JS value per point (proto's batch-wire.ts).
    addService(server, TrainingCallbacks, handlers, {
      ...errorEdge,
      requestDecoders: { reportBatchMetrics: decodeBatchRequest },
    });
    if (http) {
      // The dashboard: the read RPCs over the Connect protocol, artifact downloads, its static files.
      // Loaded on the first Connect call: connect-node (and Node's bundled undici, which its import
      // and the Fetch API's Headers load) cost ~8 MiB of RSS in a sidecar nobody browses.
      const connect = loadOnFirstRequest(async () => {
        const { connectService } = await import('./http/connect.ts');
        const service = connectService(TrainingCallbacks, handlers, {
          ...errorEdge,
          ...(authorizeHttp && { authorize: authorizeHttp }),
          maxMessageBytes: config.maxMessageBytes,
        });
        return service.handler;
      });
      // Public for the listener: the Connect handler checks tokens itself and answers Connect errors.
      // Connect's paths are /<package.Service>/<Method> (connectService's prefix).
      http.mount(`/${TrainingCallbacks.typeName}/`, connect, { access: 'public', methods: ['POST', 'GET'] });
      http.mount(ARTIFACT_DOWNLOAD_PREFIX, artifactDownloadHandler(store, config.artifactStore));
      // The app's code holds no data: a browser must be able to load it before it has a token.
      const mlflowUi = config.mlflow && mlflowUiAddress(config.mlflow.trackingUri);
      http.mount(
        '/',
        staticFilesHandler(locateDashboard(), {
          ...(mlflowUi && { indexMeta: { 'training-callbacks:mlflow-ui': mlflowUi } }),
        }),
        { access: 'public' },
      );
    }
    health.grpc.addToServer(server);
    addReflection(server, [file_trainingcallbacks_v1_training_callbacks]);

    const address = await bind(server, config.listen, tls ? tls.serverCredentials() : insecure());
    let healthAddress: string | undefined;
    if (healthServer && config.healthListen !== undefined) {
      health.grpc.addToServer(healthServer);
      healthAddress = await bind(healthServer, config.healthListen, insecure());
    }

    let closing: Promise<void> | undefined;
    return {
      address,
      ...(http?.address && { httpAddress: http.address }),
      store,
      health,
      databaseHealth: dbHealth,
      metrics,
      ...(mirror && { mirror }),
      ...(healthAddress !== undefined && { healthAddress }),
      ...(tls && { tls }),
      security: describeSecurity(config),
      close(graceMs = 10_000, drainMs = 0) {
        closing ??= (async () => {
          const started = Date.now();
          health.setCondition('shutdown', 'the sidecar is shutting down');
          dbHealth.stop();
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              server.forceShutdown();
              resolve();
            }, graceMs);
            server.tryShutdown(() => {
              clearTimeout(timer);
              resolve();
            });
          });
          // Health answers NOT_SERVING on its own port until the main port has drained.
          healthServer?.forceShutdown();
          stopWatching();
          // A native sidecar is stopped after its trainer exited: the verdicts on trainers seen gone
          // come before the drain, so that MLflow gets their runs' end too.
          const lost = await running.checkProcesses().catch(() => []);
          if (lost.length > 0)
            log(
              `training-callbacks: ${lost.length} job(s) ended as lost before shutting down: their trainer exited`,
              {
                event: 'shutdown_verdicts',
                jobs: lost.length,
              },
            );
          await running.stop();
          if (mirror && drainMs > 0) {
            // Keep mirroring what the job wrote last until the drain deadline (within Kubernetes'
            // grace period), leaving a little time to stop the thread and close the database.
            const deadline = started + Math.max(0, drainMs - SHUTDOWN_RESERVE_MS);
            const { left, parked } = await mirror.drain(deadline);
            const seconds = ((Date.now() - started) / 1000).toFixed(1);
            if (left === 0 && parked === 0) {
              log(`training-callbacks: MLflow has everything: outbox empty after ${seconds} s`, {
                event: 'shutdown_drained',
                seconds: Number(seconds),
              });
            } else {
              logger.warn(
                `training-callbacks: MLflow: ${left} outbox item(s) not delivered within the ${drainMs / 1000} s shutdown drain` +
                  `${parked ? ` and ${parked} held by parked jobs` : ''}; they stay in ${databaseName(config)} and are sent when a sidecar starts on it again`,
                { event: 'shutdown_drain_incomplete', left, parked, seconds: Number(seconds) },
              );
            }
          }
          // The worker stops before the database closes; whatever it had not sent stays in the outbox.
          await mirror?.stop(Math.min(graceMs, drainMs > 0 ? SHUTDOWN_RESERVE_MS / 2 : 5000));
          // Probes and scrapes are answered until the end; the store closes after the last one.
          await http?.close(1000);
          await compaction.stop();
          await store.close();
          lock?.release();
        })();
        return closing;
      },
    };
  } catch (error) {
    await verdicts?.stop();
    dbHealth.stop();
    server.forceShutdown();
    healthServer?.forceShutdown();
    stopWatching();
    await mirror?.stop(0);
    await http?.close(0);
    await compaction.stop();
    await store.close();
    lock?.release();
    throw error;
  }
}

/** Of a shutdown drain's time, what is kept to stop the sync thread and close the database. */
const SHUTDOWN_RESERVE_MS = 2000;

const insecure = () => ServerCredentials.createInsecure();

/** Binds `server` to `listen` and returns the address with the real port (when 0 was asked for). */
async function bind(server: Server, listen: string, credentials: ServerCredentials): Promise<string> {
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(listen, credentials, (error, boundPort) =>
      error ? reject(new ListenError(listen, error)) : resolve(boundPort),
    ),
  );
  return listen.startsWith('unix:') ? listen : `${listen.slice(0, listen.lastIndexOf(':'))}:${port}`;
}

function describeSecurity(config: SidecarConfig): string {
  const parts = [
    config.tls ? (config.tls.clientCaFile ? 'TLS with client certificates' : 'TLS') : 'plaintext',
    config.authTokenFile ? `tokens from ${config.authTokenFile}` : 'no tokens',
  ];
  if (config.healthListen !== undefined) parts.push('health-only port');
  return parts.join(', ');
}
