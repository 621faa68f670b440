// The sidecar's process: flags and environment → a running sidecar, until a signal stops it.
import { ConfigError, HELP, loadConfig } from './config.ts';
import { EXIT_CODES, startupFailure } from './exit-codes.ts';
import { createLogger } from './logging.ts';
import { databaseName, startSidecar } from './sidecar.ts';

/**
 * Runs the sidecar with `argv` (flags as `--help` lists them) and `env` until SIGTERM/SIGINT; resolves
 * with the exit code (the table of exit-codes.ts). `npm start` and `training-callbacks serve` both
 * end up here.
 */
export async function serve(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(argv, env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`training-callbacks: ${error.message}\nRun with --help to see every option.`);
      return EXIT_CODES.config.code;
    }
    throw error;
  }
  if (!config) {
    console.log(HELP);
    return 0;
  }
  const logger = createLogger({ format: config.logFormat, level: config.logLevel });
  let sidecar: Awaited<ReturnType<typeof startSidecar>>;
  try {
    sidecar = await startSidecar(config, logger);
  } catch (error) {
    if (error instanceof ConfigError) {
      // Unusable TLS or token files, found when the sidecar opens them.
      console.error(`training-callbacks: ${error.message}\nRun with --help to see every option.`);
      return EXIT_CODES.config.code;
    }
    const { exitCode, message } = startupFailure(error, config);
    logger.error(message, { event: 'start_failed', exit_code: exitCode });
    return exitCode;
  }
  // Printed before the "listening on" line, which tools wait for as the sign that start-up is complete.
  if (sidecar.healthAddress) {
    logger.info(`training-callbacks health-only (plaintext) on ${sidecar.healthAddress}`, {
      event: 'health_listening',
      address: sidecar.healthAddress,
    });
  }
  if (sidecar.httpAddress) {
    logger.info(
      `training-callbacks HTTP on ${sidecar.httpAddress} (dashboard / · Connect · /livez /readyz /metrics)`,
      {
        event: 'http_listening',
        address: sidecar.httpAddress,
      },
    );
  }
  logger.info(
    `training-callbacks sidecar listening on ${sidecar.address} │ database ${databaseName(config)} │ ` +
      `artifact roots: ${config.artifactRoots.length ? config.artifactRoots.join(', ') : 'none (UploadArtifact only)'} │ ` +
      `MLflow: ${config.mlflow ? `mirroring to ${config.mlflow.trackingUri}` : 'off (set MLFLOW_TRACKING_URI to mirror)'} │ ` +
      `security: ${sidecar.security}`,
    { event: 'listening', address: sidecar.address, db: databaseName(config) },
  );

  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      logger.info(
        `training-callbacks: ${signal} received; finishing in-flight calls and closing the database…`,
        {
          event: 'stopping',
          signal,
        },
      );
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  // Everything within the drain (Kubernetes sends SIGKILL 30 s after SIGTERM by default).
  const drainMs = config.shutdownDrainMs;
  await sidecar.close(drainMs > 0 ? Math.min(10_000, drainMs) : 10_000, drainMs);
  logger.info('training-callbacks: stopped cleanly', { event: 'stopped' });
  return 0;
}
