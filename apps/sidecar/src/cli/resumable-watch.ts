// A watch stream that survives dropped connections: on a transient failure it reconnects with the
// last `seq` received as `after_seq`, so the events it yields have no gap and no duplicate (the
// sidecar's change feed guarantees that for a resume). It gives up when the first connection fails (a
// sidecar that is not there should say so at once) or when reconnecting keeps failing for too long.
import {
  backoffDelay,
  DEFAULT_RETRY_POLICY,
  RpcError,
  Status,
  statusClass,
} from '@training-callbacks/client';

/** Options of {@link resumableWatch}. */
export interface ResumableWatchOptions<E extends { seq: bigint }> {
  /** Opens the stream after `afterSeq` (or at the head when `fromHead`). */
  open(afterSeq: bigint, fromHead: boolean, signal: AbortSignal): AsyncIterable<E>;
  /** Resume after this seq (0: from the first change kept). */
  afterSeq: bigint;
  /** Start at the newest change (only with afterSeq 0). */
  fromHead: boolean;
  /** Ends the watch (the generator returns). */
  signal: AbortSignal;
  /** Give up when no reconnect succeeded for this long, in milliseconds. */
  reconnectForMs: number;
  /**
   * A stream that brings nothing — no event, no heartbeat — for this long is taken for dead (a NAT or
   * proxy that dropped the connection without a word) and resumed, in milliseconds.
   */
  stallMs: number;
  /** Called before waiting `delayMs` to reconnect after `afterSeq`. */
  onReconnecting(error: RpcError, afterSeq: bigint, delayMs: number): void;
  /** Called when the first event after a reconnect arrived. */
  onReconnected(afterSeq: bigint): void;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/** Every event of the watch, across reconnects, until `signal` aborts. */
export async function* resumableWatch<E extends { seq: bigint }>(
  options: ResumableWatchOptions<E>,
): AsyncGenerator<E> {
  const { signal } = options;
  let after = options.afterSeq;
  let fromHead = options.fromHead && after === 0n;
  let connected = false;
  let retry = 0;
  let failingSince: number | undefined;
  while (!signal.aborted) {
    const attempt = new AbortController();
    const abortAttempt = () => attempt.abort();
    signal.addEventListener('abort', abortAttempt, { once: true });
    try {
      for await (const event of withStallTimeout(
        options.open(after, fromHead, attempt.signal),
        options.stallMs,
        attempt,
      )) {
        if (retry > 0) options.onReconnected(after);
        retry = 0;
        failingSince = undefined;
        connected = true;
        // A heartbeat repeats the last seq; from the head, the first event names where the head was.
        if (event.seq > after) after = event.seq;
        if (after > 0n) fromHead = false;
        yield event;
      }
      // A watch never ends by itself: an end is the sidecar going away (a restart, a shutdown).
      throw new RpcError(Status.UNAVAILABLE, 'the sidecar ended the stream');
    } catch (thrown) {
      if (signal.aborted) return;
      const error = RpcError.from(thrown);
      // Reads have no side effect, so a suspect failure (INTERNAL on a cut HTTP/2 stream) is resumed too.
      const kind = statusClass(error);
      if (!connected || (kind !== 'transient' && kind !== 'suspect')) throw error;
      failingSince ??= Date.now();
      if (Date.now() - failingSince > options.reconnectForMs) throw error;
      const delay = backoffDelay(retry++, DEFAULT_RETRY_POLICY);
      options.onReconnecting(error, after, delay);
      await sleep(delay, signal);
    } finally {
      signal.removeEventListener('abort', abortAttempt);
      attempt.abort(); // ends the call of this attempt, whatever ended the loop
    }
  }
}

/** The stream's events; UNAVAILABLE (and `attempt` aborted) when nothing arrives for `stallMs`. */
async function* withStallTimeout<E>(
  stream: AsyncIterable<E>,
  stallMs: number,
  attempt: AbortController,
): AsyncGenerator<E> {
  const iterator = stream[Symbol.asyncIterator]();
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const stalled = new Promise<'stalled'>((resolve) => {
        timer = setTimeout(() => resolve('stalled'), stallMs);
      });
      const next = await Promise.race([iterator.next(), stalled]).finally(() => clearTimeout(timer));
      if (next === 'stalled') {
        attempt.abort();
        throw new RpcError(
          Status.UNAVAILABLE,
          `nothing (not even a heartbeat) arrived for ${Math.round(stallMs / 1000)} s; the connection is taken for dead`,
        );
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // Ends the stream's generator (and so its call); a generator that already failed just says done.
    void Promise.resolve(iterator.return?.()).catch(() => undefined);
  }
}
