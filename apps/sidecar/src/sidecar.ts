import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { addReflection, addService } from '@training-callbacks/grpc-adapter';
import { file_trainingcallbacks_v1_training_callbacks, TrainingCallbacks } from '@training-callbacks/proto';
import { openStore, type Store } from '@training-callbacks/store';
import { HealthImplementation } from 'grpc-health-check';
import { createArtifactFiles } from './artifacts.ts';
import type { SidecarConfig } from './config.ts';
import type { RunningMirror } from './mlflow-mirror.ts';
import { createTrainingCallbacksHandlers } from './service.ts';

/** A running sidecar. */
export interface Sidecar {
  /** The address it serves on, with the real port when 0 was asked for. */
  readonly address: string;
  readonly store: Store;
  /** The MLflow mirror, when MLFLOW_TRACKING_URI is set. */
  readonly mirror?: RunningMirror;
  /**
   * Stops gracefully: health turns NOT_SERVING, no new calls are accepted, in-flight calls finish
   * (up to `graceMs`, then they are cancelled), and the database is closed.
   */
  close(graceMs?: number): Promise<void>;
}

const SERVICE_NAME = TrainingCallbacks.typeName;

/** Opens the store, then serves TrainingCallbacks, health and reflection on `config.listen`. */
export async function startSidecar(
  config: SidecarConfig,
  log: (line: string) => void = console.log,
): Promise<Sidecar> {
  await mkdir(path.dirname(config.dbPath), { recursive: true });
  const store = await openStore({ dbPath: config.dbPath, durability: config.durability });
  const server = new Server({
    'grpc.max_receive_message_length': config.maxMessageBytes,
    'grpc.max_send_message_length': config.maxMessageBytes,
    // channelz keeps per-call statistics for a debugging service we do not serve; it costs ~4 % of
    // the CPU of every call (measured with --cpu-prof under EndEpoch load).
    'grpc.enable_channelz': 0,
  });
  let mirror: RunningMirror | undefined;
  try {
    if (config.mlflow) {
      // Loaded only when MLflow is configured: the HTTP client and worker cost memory otherwise.
      const { startMirror } = await import('./mlflow-mirror.ts');
      mirror = await startMirror({
        config: config.mlflow,
        store,
        dbPath: config.dbPath,
        retryHorizonMs: config.mlflowRetryHorizonMs,
        maxBackoffMs: config.mlflowMaxBackoffMs,
        requestConcurrency: config.mlflowRequestConcurrency,
        log,
        logError: (line) => console.error(line),
      });
    }
    const handlers = createTrainingCallbacksHandlers({
      store,
      artifacts: createArtifactFiles({ store: config.artifactStore, roots: config.artifactRoots }),
      log: config.quiet ? () => {} : log,
      notice: log,
      ...(mirror && { mirror }),
    });
    addService(server, TrainingCallbacks, handlers, {
      onInternalError: (error, method) => console.error(`internal error in ${method}:`, error),
    });
    const health = new HealthImplementation({ '': 'SERVING', [SERVICE_NAME]: 'SERVING' });
    health.addToServer(server);
    addReflection(server, [file_trainingcallbacks_v1_training_callbacks]);

    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(config.listen, ServerCredentials.createInsecure(), (error, boundPort) =>
        error ? reject(error) : resolve(boundPort),
      ),
    );
    const address = config.listen.startsWith('unix:')
      ? config.listen
      : `${config.listen.slice(0, config.listen.lastIndexOf(':'))}:${port}`;

    let closing: Promise<void> | undefined;
    return {
      address,
      store,
      ...(mirror && { mirror }),
      close(graceMs = 10_000) {
        closing ??= (async () => {
          health.setStatus('', 'NOT_SERVING');
          health.setStatus(SERVICE_NAME, 'NOT_SERVING');
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
          // The worker stops before the database closes; whatever it had not sent stays in the outbox.
          await mirror?.stop(Math.min(graceMs, 5000));
          await store.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    server.forceShutdown();
    await mirror?.stop(0);
    await store.close();
    throw error;
  }
}
