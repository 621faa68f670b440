import type { Metrics, TrainingCallbacks } from './training-callbacks.ts';

/** Options of {@link runTraining}. */
export interface RunTrainingOptions<T> {
  /**
   * Cancels the run: it is passed to `train`, which should stop soon after it aborts; the job then
   * ends with outcome "cancelled" (whether `train` returns or throws).
   */
  readonly signal?: AbortSignal;
  /** Final metrics from `train`'s result, sent with EndTraining. Default: none. */
  readonly finalMetrics?: (result: T) => Metrics;
}

/**
 * Begins the job, runs `train`, and always ends the job: "completed" when `train` returns, "failed"
 * with the error's message when it throws (the error is then rethrown), "cancelled" when
 * `options.signal` aborted. When `train` itself already called `onTrainEnd`, the job is not ended
 * twice. If ending fails after `train` threw, the training error is the one rethrown.
 *
 * @returns what `train` returned
 */
export async function runTraining<T>(
  callbacks: TrainingCallbacks,
  train: (callbacks: TrainingCallbacks, signal: AbortSignal) => Promise<T>,
  options: RunTrainingOptions<T> = {},
): Promise<T> {
  const signal = options.signal ?? new AbortController().signal;
  signal.throwIfAborted();
  await callbacks.onTrainBegin();
  let result: T;
  try {
    result = await train(callbacks, signal);
  } catch (error) {
    if (callbacks.state === 'running') {
      try {
        await callbacks.onTrainEnd(
          {},
          signal.aborted
            ? { outcome: 'cancelled', error: signal.reason ?? error }
            : { outcome: 'failed', error },
        );
      } catch {
        // The training error is what the caller needs to see; the job stays RUNNING in the sidecar.
      }
    }
    throw error;
  }
  if (callbacks.state === 'running') {
    const finalMetrics = options.finalMetrics ? options.finalMetrics(result) : {};
    await callbacks.onTrainEnd(
      finalMetrics,
      signal.aborted
        ? { outcome: 'cancelled', error: signal.reason ?? 'cancelled' }
        : { outcome: 'completed' },
    );
  }
  return result;
}
