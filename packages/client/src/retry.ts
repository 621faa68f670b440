import { RpcError, Status, type StatusCode } from '@training-callbacks/grpc-adapter';

/**
 * How failed calls are retried: exponential backoff with jitter, bounded in total time. Only
 * UNAVAILABLE (the sidecar is not reachable, or restarting) and, for idempotent calls,
 * DEADLINE_EXCEEDED are retried; every other status is final and its message says what to fix.
 */
export interface RetryPolicy {
  /** Backoff before the first retry, in milliseconds. */
  readonly initialBackoffMs: number;
  /** Upper bound of a single backoff, in milliseconds. */
  readonly maxBackoffMs: number;
  /** Growth factor of the backoff per retry. */
  readonly multiplier: number;
  /**
   * Fraction of each backoff that is randomised away, in [0, 1]: a backoff of `b` becomes a uniform
   * value in `[b × (1 − jitter), b]`, so that trainers restarted together do not retry in lockstep.
   */
  readonly jitter: number;
  /** No retry starts once this many milliseconds have passed since the first attempt began. */
  readonly maxRetryTimeMs: number;
}

/** The default {@link RetryPolicy}: 100 ms doubling up to 5 s, half jitter, retries for 60 s. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  initialBackoffMs: 100,
  maxBackoffMs: 5000,
  multiplier: 2,
  jitter: 0.5,
  maxRetryTimeMs: 60_000,
});

/**
 * The backoff before retry number `retry` (0 for the first retry), jittered with `random()` ∈ [0, 1).
 */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const base = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.multiplier ** retry);
  return base * (1 - policy.jitter * random());
}

/** True when a call that failed with `code` may be sent again. */
export function isRetryable(code: StatusCode, idempotent: boolean): boolean {
  return code === Status.UNAVAILABLE || (idempotent && code === Status.DEADLINE_EXCEEDED);
}

/** Options of {@link callWithRetry}. */
export interface CallWithRetryOptions {
  /** Whether repeating the call is harmless; every call of the contract is. Default true. */
  readonly idempotent?: boolean;
  /** Called before each retry with the failure and the backoff about to be waited. */
  readonly onRetry?: (error: RpcError, delayMs: number, retry: number) => void;
  /** Stops retrying: the pending backoff ends and the last error is thrown. */
  readonly signal?: AbortSignal;
  /** Clock, for tests. */
  readonly now?: () => number;
  /** Random source for the jitter, for tests. */
  readonly random?: () => number;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Runs `attempt` until it succeeds, fails with a status that is not retryable, or the policy's time
 * budget is spent. Always rejects with an {@link RpcError}: the last one seen.
 */
export async function callWithRetry<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  policy: RetryPolicy,
  options: CallWithRetryOptions = {},
): Promise<T> {
  const now = options.now ?? Date.now;
  const started = now();
  for (let retry = 0; ; retry++) {
    try {
      return await attempt(retry);
    } catch (thrown) {
      const error = RpcError.from(thrown);
      if (!isRetryable(error.code, options.idempotent ?? true)) throw error;
      const delay = backoffDelay(retry, policy, options.random);
      if (now() - started + delay > policy.maxRetryTimeMs) throw error;
      options.onRetry?.(error, delay, retry);
      if (!(await sleep(delay, options.signal))) throw error;
    }
  }
}
