import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { BATCH_FLUSH_INTERVAL_MS, type ReportBatchMetricsResponse } from '@training-callbacks/proto';
import { BatchBuffer, type SealedBlock } from './batch-buffer.ts';
import type { LossLedger } from './losses.ts';
import { statusClass } from './retry.ts';

/** How batch points are buffered and sent. Every field has a default. */
export interface BatchOptions {
  /**
   * Block size and flush threshold: a block is sealed when it holds this many points, and a flush
   * starts as soon as this many points are pending. Default 8192.
   */
  readonly flushPoints: number;
  /**
   * Pending points are flushed at least this often, in milliseconds. Default 200, the Python client's too
   * (`BATCH_FLUSH_INTERVAL_MS`, from proto/client-batching.json).
   */
  readonly flushIntervalMs: number;
  /**
   * Bound of the buffer, in points (pending plus in flight). When it is full, new points are
   * dropped (drop-newest) and counted in `stats().pointsDropped`. Default 4 194 304 (32 MiB of values).
   */
  readonly bufferPoints: number;
  /** At most this many points go into one ReportBatchMetrics stream (one flush). Default 1 048 576. */
  readonly maxPointsPerFlush: number;
}

/** The default {@link BatchOptions}. */
export const DEFAULT_BATCH_OPTIONS: BatchOptions = Object.freeze({
  flushPoints: 8192,
  flushIntervalMs: BATCH_FLUSH_INTERVAL_MS,
  bufferPoints: 4_194_304,
  maxPointsPerFlush: 1_048_576,
});

/** Counters of the batch-metrics pipeline, as returned by `TrainingCallbacks.stats()`. */
export interface BatchStats {
  /** Points accepted into the buffer by `onBatchEnd`. */
  readonly pointsBuffered: number;
  /** Points the sidecar acknowledged as stored (committed). */
  readonly pointsAccepted: number;
  /** Points the sidecar refused inside an acknowledged stream (see `lastRejections`). */
  readonly pointsRejected: number;
  /** Stored points whose value is NaN or ±Infinity. */
  readonly pointsNonFinite: number;
  /** Points dropped because the buffer was full (drop-newest) or the job had ended. */
  readonly pointsDropped: number;
  /** Points of streams refused, given up at onTrainEnd's flush deadline, or failing with a suspect status 5 times. */
  readonly pointsFailed: number;
  /** Steps ignored because step or epoch was not a non-negative integer, or no metric was given. */
  readonly stepsInvalid: number;
  /** Points buffered and not yet sent. */
  readonly pointsPending: number;
  /** Points being sent. */
  readonly pointsInFlight: number;
  /** Streams acknowledged by the sidecar. */
  readonly flushes: number;
  /** Streams that failed for good. */
  readonly failedFlushes: number;
  /** Calls of this client (batch streams and unary calls alike) sent again after UNAVAILABLE or DEADLINE_EXCEEDED. */
  readonly retries: number;
  /** The last error of a failed flush, if any. */
  readonly lastError: RpcError | undefined;
  /** The sidecar's reasons for the last rejected points, one line per distinct reason. */
  readonly lastRejections: readonly string[];
}

/** Sends blocks as one stream and resolves with the sidecar's acknowledgement (retries included). */
export type SendBlocks = (blocks: readonly SealedBlock[]) => Promise<ReportBatchMetricsResponse>;

interface Waiter {
  readonly target: number;
  readonly resolve: () => void;
  readonly reject: (error: RpcError) => void;
  error: RpcError | undefined;
}

/**
 * Moves points from a {@link BatchBuffer} to the sidecar in the background: one stream per flush,
 * one flush at a time (so a stream's acknowledgement says exactly which points are committed),
 * started when enough points are pending, by a timer, or by {@link flush}. A stream the sidecar
 * refuses as a whole is split into one stream per block, so that one bad block does not take the
 * others down with it (a refused call writes nothing, so resending is safe).
 *
 * Note: the sidecar refuses single bad blocks inside an acknowledged stream (`rejected_points`), so
 * the split only matters for a stream-level INVALID_ARGUMENT.
 */
export class BatchReporter {
  /** The buffer `onBatchEnd` appends to. */
  readonly buffer: BatchBuffer;
  private readonly options: BatchOptions;
  private readonly send: SendBlocks;
  private readonly onError: (error: RpcError) => void;
  private timer: NodeJS.Timeout | undefined;
  private kickScheduled = false;
  private running = false;
  private started = false;
  private doneSeq = 0;
  private waiters: Waiter[] = [];
  private inFlight = 0;
  private accepted = 0;
  private rejected = 0;
  private nonFinite = 0;
  private failed = 0;
  private flushes = 0;
  private failedFlushes = 0;
  private lastError: RpcError | undefined;
  private lastRejections: readonly string[] = [];
  private readonly losses: LossLedger;
  /** Settles when the pump in progress (if any) has stopped. */
  private idle: Promise<void> = Promise.resolve();
  /** Retries of every call of the owning client, counted by its retry hook. */
  retries = 0;

  constructor(
    options: BatchOptions,
    send: SendBlocks,
    onError: (error: RpcError) => void,
    losses: LossLedger,
  ) {
    this.options = options;
    this.send = send;
    this.onError = onError;
    this.losses = losses;
    this.buffer = new BatchBuffer({
      maxBlockPoints: options.flushPoints,
      capacityPoints: options.bufferPoints,
    });
  }

  /** Starts sending (after BeginTraining succeeded); the interval timer does not keep Node alive. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.timer = setInterval(() => {
      if (this.buffer.pending > 0) this.kick(true);
    }, this.options.flushIntervalMs);
    this.timer.unref();
    this.kick(false);
  }

  /** Stops the timer; pending points stay until {@link flush} or are dropped by the owner. */
  stop(): void {
    this.started = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Stops sending and drops every point not yet taken, counting them as dropped; pending
   * {@link flush} calls settle (used once the job has ended).
   */
  discard(): void {
    this.stop();
    this.buffer.clear();
    this.doneSeq = Math.max(this.doneSeq, this.buffer.lastSealedSeq);
    this.settleWaiters();
  }

  /** Called after each append: schedules a flush once enough points are pending. O(1). */
  notify(): void {
    if (
      this.buffer.pending >= this.options.flushPoints &&
      !this.running &&
      !this.kickScheduled &&
      this.started
    ) {
      this.kickScheduled = true;
      setImmediate(() => {
        this.kickScheduled = false;
        this.kick(false);
      });
    }
  }

  /**
   * Resolves once every point appended before the call is acknowledged; rejects with the error of
   * a stream that failed for good if any of those points were in it.
   */
  flush(): Promise<void> {
    this.buffer.seal();
    const target = this.buffer.lastSealedSeq;
    if (target <= this.doneSeq) return Promise.resolve();
    if (!this.started) {
      return Promise.reject(
        new RpcError(
          Status.FAILED_PRECONDITION,
          'batch points cannot be sent before onTrainBegin() succeeded',
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ target, resolve, reject, error: undefined });
      this.kick(true);
    });
  }

  /** The counters; see {@link BatchStats}. */
  stats(): BatchStats {
    return {
      pointsBuffered: this.buffer.appended,
      pointsAccepted: this.accepted,
      pointsRejected: this.rejected,
      pointsNonFinite: this.nonFinite,
      pointsDropped: this.buffer.dropped,
      pointsFailed: this.failed,
      stepsInvalid: this.buffer.invalidSteps,
      pointsPending: this.buffer.pending,
      pointsInFlight: this.inFlight,
      flushes: this.flushes,
      failedFlushes: this.failedFlushes,
      retries: this.retries,
      lastError: this.lastError,
      lastRejections: this.lastRejections,
    };
  }

  /**
   * The flush deadline has passed: stops sending, waits for the stream in flight to settle (its
   * sender was told to stop retrying), and counts every point not acknowledged as dropped.
   */
  async giveUp(why: string): Promise<void> {
    this.stop();
    await this.idle;
    this.buffer.seal();
    const blocks = this.buffer.take(Number.POSITIVE_INFINITY);
    this.buffer.release(blocks);
    const points = countPoints(blocks);
    if (points > 0) this.losses.add(`batch points ${why}`, { droppedPoints: points });
    this.doneSeq = Math.max(this.doneSeq, this.buffer.lastSealedSeq);
    this.settleWaiters();
  }

  private kick(force: boolean): void {
    if (this.running || !this.started) return;
    this.running = true;
    let settled!: () => void;
    this.idle = new Promise((resolve) => {
      settled = resolve;
    });
    void this.pump(force).finally(settled);
  }

  private async pump(force: boolean): Promise<void> {
    try {
      for (;;) {
        const due = force || this.waiters.length > 0 || this.buffer.pending >= this.options.flushPoints;
        if (!due || this.buffer.pending === 0) {
          // Cleared in the same tick as the check, so a notify() or flush() right after kicks anew.
          this.running = false;
          break;
        }
        force = false;
        this.buffer.seal();
        const blocks = this.buffer.take(this.options.maxPointsPerFlush);
        await this.deliver(blocks);
        this.buffer.release(blocks);
        this.doneSeq = Math.max(this.doneSeq, (blocks.at(-1) as SealedBlock).seq);
        this.settleWaiters();
      }
    } catch (thrown) {
      // deliver() catches what send() throws; this is a bug, kept visible instead of unhandled.
      this.running = false;
      this.lastError = RpcError.from(thrown);
    }
    this.settleWaiters();
  }

  /** Sends blocks as one stream; on a refusal of the whole stream, once more block by block. */
  private async deliver(blocks: readonly SealedBlock[]): Promise<void> {
    const points = countPoints(blocks);
    this.inFlight += points;
    let response: ReportBatchMetricsResponse;
    try {
      response = await this.send(blocks);
    } catch (thrown) {
      this.inFlight -= points;
      const error = RpcError.from(thrown);
      // INVALID_ARGUMENT on the whole stream: find the bad block by sending each alone. Job-level
      // refusals (NOT_FOUND, FAILED_PRECONDITION, …) would only repeat, so they fail the lot.
      if (blocks.length > 1 && error.code === Status.INVALID_ARGUMENT) {
        for (const block of blocks) await this.deliver([block]);
        return;
      }
      this.failedFlushes++;
      this.failed += points;
      this.lastError = error;
      const what = `${error.codeName}: ${error.message}`;
      if (statusClass(error) === 'permanent')
        this.losses.add(`batch points refused: ${what}`, { refusedPoints: points });
      else this.losses.add(`batch points not acknowledged (${what})`, { droppedPoints: points });
      const first = (blocks[0] as SealedBlock).seq;
      for (const waiter of this.waiters) if (waiter.target >= first) waiter.error ??= error;
      try {
        this.onError(error);
      } catch {
        // A throwing error listener must not stop the pipeline.
      }
      return;
    }
    this.inFlight -= points;
    this.flushes++;
    this.accepted += Number(response.acceptedPoints);
    this.rejected += Number(response.rejectedPoints);
    this.nonFinite += Number(response.nonFinitePoints);
    if (response.rejectedPoints > 0n) {
      this.lastRejections = response.rejections;
      this.losses.add(`batch points refused: ${response.rejections.join('; ') || 'no reason given'}`, {
        refusedPoints: Number(response.rejectedPoints),
      });
    }
  }

  private settleWaiters(): void {
    if (this.waiters.length === 0) return;
    const remaining: Waiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.target > this.doneSeq) remaining.push(waiter);
      else if (waiter.error) waiter.reject(waiter.error);
      else waiter.resolve();
    }
    this.waiters = remaining;
  }
}

function countPoints(blocks: readonly SealedBlock[]): number {
  let points = 0;
  for (const block of blocks) points += block.values.length;
  return points;
}
