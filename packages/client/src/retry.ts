import { RpcError, type StatusCode } from '@training-callbacks/grpc-adapter';
import {
  classifyStatus,
  RETRY_METADATA_KEY,
  type StatusClass,
  SUSPECT_ATTEMPTS,
} from '@training-callbacks/proto';

/**
 * How failed calls are retried: exponential backoff with jitter, bounded in total time. Which
 * statuses are retried comes from the shared status table (proto/status-table.json, the README's
 * status table): transient ones (UNAVAILABLE, DEADLINE_EXCEEDED, …, or any refusal the sidecar marks
 * transient) within the time budget, suspect ones (INTERNAL, UNKNOWN) a few times; every other status
 * is final and its message says what to fix.
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

/**
 * The class of a failed call by the shared status table; the sidecar's `training-callbacks-retry`
 * trailer overrides the status's default for one refusal.
 */
export function statusClass(error: RpcError): StatusClass {
  const marker = error.metadata?.get(RETRY_METADATA_KEY)[0];
  return classifyStatus(error.code, marker === undefined ? undefined : String(marker));
}

/**
 * True when a call that failed with `code` (no trailer) may be sent again after `attempts` attempts:
 * a transient status, or a suspect one with attempts left. (Every write of the contract is
 * idempotent, so a resend is safe.)
 */
export function isRetryable(code: StatusCode, attempts = 1): boolean {
  return retryable(classifyStatus(code), attempts);
}

function retryable(cls: StatusClass, attempts: number): boolean {
  return cls === 'transient' || (cls === 'suspect' && attempts < SUSPECT_ATTEMPTS);
}

/** Options of {@link callWithRetry}. */
export interface CallWithRetryOptions {
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
      if (!retryable(statusClass(error), retry + 1)) throw error;
      const delay = backoffDelay(retry, policy, options.random);
      if (now() - started + delay > policy.maxRetryTimeMs) throw error;
      options.onRetry?.(error, delay, retry);
      if (!(await sleep(delay, options.signal))) throw error;
    }
  }
}
