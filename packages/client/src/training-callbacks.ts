import { randomUUID } from 'node:crypto';
import { resolve as resolvePath } from 'node:path';
import { create, type JsonObject, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';
import {
  createClient,
  preEncoded,
  RpcError,
  type ServiceClient,
  Status,
} from '@training-callbacks/grpc-adapter';
import {
  type Artifact,
  BeginEpochRequestSchema,
  type BestEpoch,
  DEFAULT_SIDECAR_ADDRESS,
  EndEpochRequestSchema,
  EndTrainingRequestSchema,
  type Job,
  JobStatus,
  JobStatusSchema,
  type MetricVerdict,
  ReportBatchMetricsRequestSchema,
  type TaskCatalog,
  type TaskType,
  TrainingCallbacks as TrainingCallbacksService,
  UPLOAD_FALLBACK_CODES,
} from '@training-callbacks/proto';
import {
  hashFile,
  listUploadItems,
  UPLOAD_CHUNK_BYTES,
  type UploadItem,
  uploadRequests,
} from './artifact-files.ts';
import { precompileBatchBuffer } from './batch-buffer.ts';
import { toBatchRequests } from './batch-encoding.ts';
import {
  type BatchOptions,
  BatchReporter,
  type BatchStats,
  DEFAULT_BATCH_OPTIONS,
} from './batch-reporter.ts';
import { type Connection, type ConnectionOptions, resolveConnection } from './connection.ts';
import { type ExitParticipant, registerForExit, unregisterForExit } from './exit-hooks.ts';
import { describeLosses, hasLosses, type Losses, LossLedger, lossesToProto } from './losses.ts';
import {
  type MetricFormatName,
  type OutcomeName,
  type TaskTypeName,
  toMetricFormat,
  toOutcome,
  toTaskType,
} from './names.ts';
import { paramsWithinLimits } from './params-limits.ts';
import { DEFAULT_MAX_QUEUED_REPORTS, type EncodedCall, ReportQueue, type Settled } from './report-queue.ts';
import { type CallWithRetryOptions, callWithRetry, DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.ts';
import { sendReportsAndEndSync } from './sync-call.ts';
import { thisTrainerProcess } from './trainer-process.ts';

/** The sidecar address used when neither the `address` option nor TRAINING_CALLBACKS_ADDRESS is set. */
export const DEFAULT_ADDRESS = DEFAULT_SIDECAR_ADDRESS;

/** The default per-call deadline, in milliseconds. */
export const DEFAULT_DEADLINE_MS = 5000;

/** How long `onTrainEnd` waits by default for everything queued, in milliseconds. */
export const DEFAULT_FLUSH_TIMEOUT_MS = 30_000;

/** How long an exit path (signal, uncaught exception, exit without onTrainEnd) may take by default. */
export const DEFAULT_EXIT_FLUSH_TIMEOUT_MS = 5000;

/**
 * Channel options used unless overridden: reconnect quickly to a sidecar that restarts next to the
 * trainer (grpc-js waits 1 s to 120 s by default), and accept large read-back responses.
 */
export const DEFAULT_CHANNEL_OPTIONS: Readonly<ChannelOptions> = Object.freeze({
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 2000,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
});

/** The typed promise client of the TrainingCallbacks service, for the read RPCs. */
export type TrainingCallbacksClient = ServiceClient<(typeof TrainingCallbacksService)['method']>;

/** Metric name → value, as a framework reports it (normalised by the sidecar's catalog). */
export type Metrics = Readonly<Record<string, number>>;

/** A custom metric's definition, so that it displays with a label, a format and a direction. */
export interface CustomMetric {
  /** The metric name as reported. */
  readonly name: string;
  /** Human label; defaults to the name. */
  readonly label?: string;
  /** Display format; default "float". */
  readonly format?: MetricFormatName;
  /** True when a larger value is better. */
  readonly higherIsBetter: boolean;
  /** One sentence on what it measures. */
  readonly description?: string;
}

/**
 * Options of {@link TrainingCallbacks}. Only `jobId` and `taskType` are required. The connection
 * options (`token`, `tokenFile`, `caFile`, `clientCertFile`, `clientKeyFile`) default to their
 * environment variables (TRAINING_CALLBACKS_TOKEN, …; see docs/security.md).
 */
export interface TrainingCallbacksOptions extends ConnectionOptions {
  /** Trainer-chosen job id (1–128 characters); beginning it again resumes the job. */
  readonly jobId: string;
  /** The task type by name ("object_detection") or proto enum value. */
  readonly taskType: TaskTypeName | TaskType;
  /**
   * The sidecar: "host:port" or "unix:/path/to.sock". Default: env TRAINING_CALLBACKS_ADDRESS, else
   * {@link DEFAULT_ADDRESS}.
   */
  readonly address?: string;
  /** Training framework, e.g. "ultralytics", "timm", "custom". */
  readonly framework?: string;
  /** Model name, e.g. "yolo11n". */
  readonly modelName?: string;
  /** Model configuration (JSON). */
  readonly modelConfig?: JsonObject;
  /** Training configuration (JSON). */
  readonly trainingConfig?: JsonObject;
  /** Flat parameters; numbers and booleans are sent as strings. */
  readonly params?: Readonly<Record<string, string | number | boolean>>;
  /** Definitions of custom metrics. */
  readonly customMetrics?: readonly CustomMetric[];
  /** The epoch training (re)starts from; also the default epoch of `onBatchEnd`. Default 0. */
  readonly startEpoch?: number;
  /** Name of the job's MLflow run; default `job_<jobId>`. A resume with another name renames the run. */
  readonly runName?: string;
  /** Extra MLflow run tags (not `mlflow.*` nor `training_callbacks.*`; the proto says the limits). */
  readonly tags?: Readonly<Record<string, string>>;
  /**
   * Deadline of each call (each attempt), in milliseconds. Default {@link DEFAULT_DEADLINE_MS}. Batch
   * streams get 10 µs per point and uploads 100 ms per MiB on top.
   */
  readonly deadlineMs?: number;
  /** Retry policy; fields not given keep {@link DEFAULT_RETRY_POLICY}. */
  readonly retry?: Partial<RetryPolicy>;
  /**
   * How long `onTrainEnd` waits for pending batch points, in milliseconds (default
   * {@link DEFAULT_FLUSH_TIMEOUT_MS}). What is still unacknowledged when the deadline less a reserve
   * for EndTraining (the smaller of `deadlineMs` and half of it) has passed is given up and counted
   * in the losses sent with EndTraining.
   */
  readonly flushTimeoutMs?: number;
  /** Batch buffering; fields not given keep {@link DEFAULT_BATCH_OPTIONS}. */
  readonly batch?: Partial<BatchOptions>;
  /**
   * How artifacts reach the sidecar: "auto" (default) tries LogArtifact by path and uploads when the
   * sidecar answers PERMISSION_DENIED or FAILED_PRECONDITION; "path" only logs by path; "upload" always
   * streams the bytes.
   */
  readonly artifactTransfer?: 'auto' | 'path' | 'upload';
  /** Called with errors of the background batch pipeline and with every lost report (also counted in `losses()`). */
  readonly onBackgroundError?: (error: RpcError) => void;
  /**
   * Strict mode, for tests: a lost report rejects its promise with the {@link RpcError} (a transient
   * failure after the retry budget `retry.maxRetryTimeMs`), awaited calls wait for their answer,
   * and `flush()` rejects when batch points failed. Default false: nothing rejects, nothing waits
   * longer than `answerWaitMs`, transient failures are retried until acknowledged or until
   * onTrainEnd's flush deadline.
   */
  readonly strict?: boolean;
  /**
   * How long an awaited report (`await onEpochEnd(…)`) waits for the sidecar's answer, in
   * milliseconds; after it the promise resolves with `pending: true` while the report stays queued.
   * Default: `deadlineMs`. (Not awaiting is fine: reports keep their order.)
   */
  readonly answerWaitMs?: number;
  /**
   * Bound of the queue of reports waiting for the sidecar (begin, epochs, artifacts): beyond it a new
   * report is lost and counted in `losses()`. Default {@link DEFAULT_MAX_QUEUED_REPORTS}.
   */
  readonly maxQueuedReports?: number;
  /**
   * Called once per distinct problem (a report refused, the sidecar unreachable, a full queue) with
   * a line naming it. Default: `process.emitWarning` (type `TrainingCallbacksWarning`).
   */
  readonly onWarning?: (message: string) => void;
  /**
   * End the job when the process ends without `onTrainEnd` (see the README's exit paths): exit,
   * uncaught exception, unhandled rejection, SIGTERM/SIGINT. Default true; false installs nothing.
   */
  readonly exitHooks?: boolean;
  /** How long an exit path may take to end the job, in milliseconds. Default {@link DEFAULT_EXIT_FLUSH_TIMEOUT_MS}. */
  readonly exitFlushTimeoutMs?: number;
  /**
   * Channel credentials, instead of the ones made from `caFile` / `clientCertFile` (TLS) or plaintext
   * without them (a sidecar on loopback or a unix socket).
   */
  readonly credentials?: ChannelCredentials;
  /** grpc-js channel options, merged over {@link DEFAULT_CHANNEL_OPTIONS}. */
  readonly channelOptions?: ChannelOptions;
}

/** How an awaited report ended, beside the sidecar's answer. */
export interface Delivery {
  /** True when the sidecar acknowledged the report. */
  readonly delivered: boolean;
  /**
   * True when the answer did not come within `answerWaitMs`: the report stays queued and is
   * delivered (or counted as lost) in the background.
   */
  readonly pending: boolean;
  /** Why the report was lost (refused, or given up at onTrainEnd's deadline); undefined otherwise. */
  readonly error: RpcError | undefined;
}

/** What `onTrainBegin` returns. */
export interface TrainBeginResult extends Delivery {
  /** The job as stored; undefined until BeginTraining is acknowledged. */
  readonly job: Job | undefined;
  /** True when the job already existed and is continued. */
  readonly resumed: boolean;
  /** The metric catalog of the job's task type. */
  readonly catalog: TaskCatalog | undefined;
}

/** What `onEpochEnd` returns. */
export interface EpochEndResult extends Delivery {
  /** One verdict per reported metric, in name order (empty when not delivered). */
  readonly verdicts: readonly MetricVerdict[];
  /** True when this epoch is the new best by the task's primary metric. */
  readonly isBest: boolean;
  /** The best epoch so far, if any epoch had a finite primary value. */
  readonly best: BestEpoch | undefined;
  /** The console line the sidecar printed for this epoch. */
  readonly summary: string;
}

/** What was delivered and what was lost, as `flush()` and `onTrainEnd` resolve. */
export interface DeliveryReport {
  /** Reports (begin, epochs, artifacts, end) the sidecar acknowledged. */
  readonly reportsDelivered: number;
  /** Batch points the sidecar acknowledged as stored. */
  readonly pointsDelivered: number;
  /** What could not be delivered, with the reasons (sent with EndTraining); all zero when nothing. */
  readonly losses: Losses;
  /** Empty when nothing was lost; otherwise one line saying what was lost and why. */
  readonly lossSummary: string;
}

/** What `flush()` resolves to. */
export interface FlushResult extends DeliveryReport {
  /** True when everything queued before the call was settled (acknowledged or lost) in time. */
  readonly complete: boolean;
}

/** What `onTrainEnd` returns. */
export interface TrainEndResult extends DeliveryReport {
  /** True when EndTraining was acknowledged: the job is ended in the sidecar. */
  readonly delivered: boolean;
  /** Why EndTraining failed, if it did. */
  readonly error: RpcError | undefined;
  /** The job as stored after ending (its `clientLosses` are the losses); undefined when not delivered. */
  readonly job: Job | undefined;
  /** One verdict per final metric. */
  readonly verdicts: readonly MetricVerdict[];
}

/** Options of `onTrainEnd`. */
export interface TrainEndOptions {
  /** How training ended; default "completed", or "failed" when `error` is given. */
  readonly outcome?: OutcomeName;
  /** What went wrong: an Error (its message is sent) or a message. */
  readonly error?: unknown;
  /** The flush deadline, in milliseconds; default the `flushTimeoutMs` option. */
  readonly timeoutMs?: number;
}

/** Options of `flush`. */
export interface FlushOptions {
  /** Wait at most this long, in milliseconds; default the `flushTimeoutMs` option. */
  readonly timeoutMs?: number;
}

/** The counters of `stats()`: the batch pipeline's, the report queue's and the heartbeats. */
export interface ClientStats extends BatchStats {
  /** Reports (begin, epochs, artifacts, end) queued or in flight. */
  readonly reportsPending: number;
  /** Reports the sidecar acknowledged. */
  readonly reportsDelivered: number;
  /** Reports lost (refused, given up, over the queue's bound). */
  readonly reportsLost: number;
  /** Heartbeats the sidecar acknowledged. */
  readonly heartbeatsSent: number;
}

/** Where a {@link TrainingCallbacks} is in the job's life. */
export type CallbacksState = 'new' | 'running' | 'ended' | 'closed';

/** `promise`'s value, or `undefined` when it takes longer than `ms` milliseconds. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  if (!(ms < 2 ** 31)) return promise; // beyond a timer's range: no time limit
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return typeof error === 'string' ? error : String(error);
}

const DELIVERED = { delivered: true, pending: false, error: undefined } as const;
const NOT_DELIVERED = { delivered: false, pending: false } as const;

/** Queued epoch reports the exit path still sends (from its child process, before EndTraining). */
const MAX_REPORTS_AT_EXIT = 8;

/**
 * The trainer's side of the sidecar, mirroring the seed's callbacks: `onTrainBegin`, `onEpochBegin`,
 * `onBatchEnd`, `onEpochEnd`, `onTrainEnd`, `logArtifact`, `logArtifacts`. It never throws into or
 * blocks the training loop: reports are queued in order and delivered in the background, each call
 * with a deadline and retried by the shared status table (transient statuses until acknowledged or
 * until onTrainEnd's flush deadline, INTERNAL a few times; every write of the contract is idempotent);
 * a refused report is dropped with a warning and counted in {@link losses}. The promises the calls
 * return never reject (unless `strict`) and settle within `answerWaitMs`. Batch metrics are buffered
 * and streamed in the background.
 */
export class TrainingCallbacks implements ExitParticipant {
  /** The job id. */
  readonly jobId: string;
  /** The sidecar address in use. */
  readonly address: string;
  /** The typed client, for the read RPCs (getJob, listEpochs, listBatchMetrics, …). */
  readonly client: TrainingCallbacksClient;
  /** How long an exit path may take, in milliseconds. */
  readonly exitFlushTimeoutMs: number;
  /**
   * This client's session (a random UUID), sent with BeginTraining's trainer process and with every
   * report and heartbeat: the sidecar revives a job it declared lost when this session reports again.
   */
  readonly sessionId = randomUUID();

  private readonly options: TrainingCallbacksOptions;
  private readonly taskType: TaskType;
  private readonly deadlineMs: number;
  private readonly answerWaitMs: number;
  private readonly strict: boolean;
  private readonly retryPolicy: RetryPolicy;
  private readonly reporter: BatchReporter;
  /** The batch buffer's bound (named in the losses). */
  private readonly bufferPoints: number;
  private readonly queue: ReportQueue;
  private readonly lost = new LossLedger();
  private readonly connection: Connection;
  /** Ends the retries of reports and batch streams when onTrainEnd's flush deadline passes. */
  private readonly giveUpRetries = new AbortController();
  /** Ends EndTraining's retries at the flush deadline itself. */
  private readonly endRetries = new AbortController();
  private readonly flushTimeoutMs: number;
  private readonly warned = new Set<string>();
  private currentEpoch: number;
  private currentState: CallbacksState = 'new';
  /** False once the job ended, ends, or was refused: batch points are then dropped and counted. */
  private accepting = true;
  private begun: Promise<Settled<TrainBeginResult>> | undefined;
  private beginAcknowledged = false;
  private beginError: RpcError | undefined;
  private ending: Promise<TrainEndResult> | undefined;
  private endDone = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private heartbeats: NodeJS.Timeout | undefined;
  private heartbeatInFlight = false;
  private heartbeatsSent = 0;

  constructor(options: TrainingCallbacksOptions) {
    if (typeof options.jobId !== 'string' || options.jobId.length === 0) {
      throw new RpcError(
        Status.INVALID_ARGUMENT,
        'jobId is empty; give the training job an id (1–128 characters)',
      );
    }
    this.taskType = toTaskType(options.taskType);
    const deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    if (!(deadlineMs > 0)) {
      throw new RpcError(
        Status.INVALID_ARGUMENT,
        `deadlineMs is ${deadlineMs}; give a positive number of milliseconds`,
      );
    }
    this.options = options;
    this.jobId = options.jobId;
    this.deadlineMs = deadlineMs;
    this.answerWaitMs = options.answerWaitMs ?? deadlineMs;
    this.strict = options.strict ?? false;
    this.flushTimeoutMs = options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS;
    this.exitFlushTimeoutMs = options.exitFlushTimeoutMs ?? DEFAULT_EXIT_FLUSH_TIMEOUT_MS;
    this.retryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.currentEpoch = options.startEpoch ?? 0;
    const connection = resolveConnection(options);
    this.connection = connection;
    this.address = connection.address;
    const channelOptions: ChannelOptions = { ...DEFAULT_CHANNEL_OPTIONS, ...options.channelOptions };
    if (connection.interceptor) {
      channelOptions.interceptors = [connection.interceptor, ...(options.channelOptions?.interceptors ?? [])];
    }
    this.client = createClient(TrainingCallbacksService, this.address, {
      credentials: options.credentials ?? connection.credentials,
      channelOptions,
    });
    const batch: BatchOptions = { ...DEFAULT_BATCH_OPTIONS, ...options.batch };
    this.bufferPoints = batch.bufferPoints;
    precompileBatchBuffer(); // here, not in the trainer's first onBatchEnd
    this.reporter = new BatchReporter(
      batch,
      (blocks) => {
        const requests = toBatchRequests(this, blocks).map((bytes) =>
          preEncoded(ReportBatchMetricsRequestSchema, bytes),
        );
        // A big stream needs longer than a small call: allow 10 µs per point on top (1 M points: +10 s).
        let points = 0;
        for (const block of blocks) points += block.values.length;
        const extraMs = Math.ceil(points / 100);
        const send = () =>
          this.call(
            (deadline) => this.client.reportBatchMetrics(requests, { deadline: deadline + extraMs }),
            this.giveUpRetries.signal,
            true,
          );
        return this.resendAfterRebegin(send);
      },
      (error) => this.backgroundError(error),
      this.lost,
    );
    this.queue = new ReportQueue({
      maxQueuedReports: options.maxQueuedReports ?? DEFAULT_MAX_QUEUED_REPORTS,
      losses: this.lost,
      // Batch points reported before a report go first (an epoch's points before its EndEpoch).
      beforeEach: () => this.flushBatchQuietly(),
      warn: (key, message) => this.warnOnce(key, message),
      onLost: (_what, error) => this.backgroundError(error),
    });
  }

  /** Where the job is: "new" before `onTrainBegin`, "running", "ended" after `onTrainEnd`, "closed". */
  get state(): CallbacksState {
    return this.currentState;
  }

  private backgroundError(error: RpcError): void {
    try {
      this.options.onBackgroundError?.(error);
    } catch {
      // A throwing listener must not reach the training loop.
    }
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    const line = `training-callbacks: job ${this.jobId}: ${message}`;
    try {
      if (this.options.onWarning) this.options.onWarning(line);
      else process.emitWarning(line, 'TrainingCallbacksWarning');
    } catch {
      // Warnings are best effort.
    }
  }

  /**
   * Runs one call with the per-call deadline and the retry policy (the shared status table). In the
   * default mode a transient failure is retried until acknowledged (or until `signal` aborts, at
   * onTrainEnd's flush deadline); in strict mode within the retry budget.
   */
  private call<T>(
    attempt: (deadlineMs: number) => Promise<T>,
    signal: AbortSignal = this.giveUpRetries.signal,
    untilAcknowledged = !this.strict,
  ): Promise<T> {
    const policy = untilAcknowledged
      ? { ...this.retryPolicy, maxRetryTimeMs: Number.POSITIVE_INFINITY }
      : this.retryPolicy;
    const options: CallWithRetryOptions = {
      onRetry: (error) => {
        this.reporter.retries++;
        this.warnOnce(
          'unreachable',
          `the sidecar at ${this.address} does not answer (${error.codeName}: ${error.message}); ` +
            (untilAcknowledged
              ? 'reports are queued and retried in the background, training goes on'
              : `retried for up to ${policy.maxRetryTimeMs} ms, then the call rejects (strict mode)`),
        );
      },
      signal,
    };
    return callWithRetry(() => attempt(this.deadlineMs), policy, options);
  }

  /**
   * Queues a write of the job. When the sidecar answers NOT_FOUND for a job it had acknowledged (it
   * lost it: restarted on another database), BeginTraining is sent again once and the write retried
   * (the shared status table's rule). A write after a refused BeginTraining is not sent.
   */
  private enqueueWrite<T>(
    what: string,
    send: () => Promise<T>,
    encode?: () => EncodedCall,
  ): Promise<Settled<T>> {
    return this.queue.enqueue(
      what,
      'write',
      async () => {
        this.assertBeginNotFailed();
        return this.resendAfterRebegin(send);
      },
      encode,
    );
  }

  /** A report of a job whose BeginTraining failed (refused, or given up) is not sent: FAILED_PRECONDITION. */
  private assertBeginNotFailed(): void {
    if (!this.beginError) return;
    throw new RpcError(
      Status.FAILED_PRECONDITION,
      `not sent: BeginTraining failed (${this.beginError.codeName}: ${this.beginError.message})`,
    );
  }

  /** Runs `send`; on NOT_FOUND for the acknowledged job, BeginTraining once again, then `send` once more. */
  private async resendAfterRebegin<T>(send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (thrown) {
      const error = RpcError.from(thrown);
      if (error.code !== Status.NOT_FOUND || !this.beginAcknowledged) throw error;
      this.warnOnce(
        'job-lost',
        `the sidecar at ${this.address} does not know the job any more; beginning it again`,
      );
      await this.call((deadline) => this.client.beginTraining(this.beginRequest(), { deadline }));
      return send();
    }
  }

  /**
   * The report's answer for an awaited call: within `answerWaitMs` (or `pending`), never a rejection
   * unless strict.
   */
  private async answer<T>(settled: Promise<Settled<T>>): Promise<Settled<T> | undefined> {
    const result = this.strict ? await settled : await within(settled, this.answerWaitMs);
    if (this.strict && result && !result.delivered) throw result.error;
    return result;
  }

  private static delivery(result: Settled<unknown> | undefined): Delivery {
    if (result === undefined) return { delivered: false, pending: true, error: undefined };
    return result.delivered ? DELIVERED : { ...NOT_DELIVERED, error: result.error };
  }

  /**
   * Heartbeats renew the job's lease from a timer (unref'd: it never keeps the process alive), never
   * from the training loop, every `intervalSeconds` as BeginTraining answered (0: an older sidecar,
   * none). One at a time; a failed one is not retried nor counted (the next follows at the interval).
   * They stop when the job ended (the sidecar answers another status than RUNNING).
   */
  private startHeartbeats(intervalSeconds: number): void {
    this.stopHeartbeats();
    if (!(intervalSeconds > 0)) return;
    this.heartbeats = setInterval(() => void this.heartbeat(), intervalSeconds * 1000);
    this.heartbeats.unref();
  }

  private stopHeartbeats(): void {
    if (this.heartbeats) clearInterval(this.heartbeats);
    this.heartbeats = undefined;
  }

  private async heartbeat(): Promise<void> {
    if (this.heartbeatInFlight || this.currentState !== 'running') return;
    this.heartbeatInFlight = true;
    try {
      const response = await this.client.heartbeat(
        { jobId: this.jobId, sessionId: this.sessionId },
        { deadline: this.deadlineMs },
      );
      this.heartbeatsSent++;
      if (response.status !== JobStatus.RUNNING) {
        this.stopHeartbeats();
        this.warnOnce(
          'ended',
          `the sidecar says the job is ${JobStatusSchema.value[response.status]?.localName ?? response.status}; heartbeats stop`,
        );
      }
    } catch {
      // Not retried nor counted: the next heartbeat follows at the interval, and reports renew the lease too.
    } finally {
      this.heartbeatInFlight = false;
    }
  }

  /** What could not be delivered so far, with the reasons (sent with EndTraining). */
  losses(): Losses {
    return this.lost.snapshot(
      this.reporter.buffer.dropped,
      `batch buffer full (${this.bufferPoints} points), or points reported after onTrainEnd or for a refused job`,
    );
  }

  private deliveryReport(): DeliveryReport {
    const losses = this.losses();
    return {
      reportsDelivered: this.queue.delivered,
      pointsDelivered: this.reporter.stats().pointsAccepted,
      losses,
      lossSummary: hasLosses(losses) ? describeLosses(losses) : '',
    };
  }

  private beginRequest() {
    const o = this.options;
    // fromEntries defines each entry; `params[key] = …` on a plain object would drop a `__proto__` key.
    const asText = Object.fromEntries(Object.entries(o.params ?? {}).map(([k, v]) => [k, String(v)]));
    // A param beyond the sidecar's limits would have the whole BeginTraining refused.
    const { params, notes } = paramsWithinLimits(asText);
    if (notes.length > 0) {
      const shown =
        notes.slice(0, 10).join('; ') + (notes.length > 10 ? `; and ${notes.length - 10} more` : '');
      this.warnOnce(
        'params-limits',
        `${notes.length} params are beyond what the sidecar (and MLflow) accepts: ${shown}; the full configuration is still stored as trainingConfig`,
      );
    }
    return {
      jobId: this.jobId,
      taskType: this.taskType,
      framework: o.framework ?? '',
      modelName: o.modelName ?? '',
      ...(o.modelConfig ? { modelConfig: o.modelConfig } : {}),
      ...(o.trainingConfig ? { trainingConfig: o.trainingConfig } : {}),
      params,
      customMetrics: (o.customMetrics ?? []).map((m) => ({
        name: m.name,
        label: m.label ?? m.name,
        format: toMetricFormat(m.format ?? 'float'),
        higherIsBetter: m.higherIsBetter,
        description: m.description ?? '',
      })),
      startEpoch: o.startEpoch ?? 0,
      runName: o.runName ?? '',
      tags: Object.fromEntries(Object.entries(o.tags ?? {})),
      trainer: thisTrainerProcess(this.sessionId),
    };
  }

  /**
   * Begins the job (BeginTraining), or continues it when the id already exists: queued, delivered in
   * the background; batch points stream once it is acknowledged. Resolves with the stored job,
   * `resumed` and the task's catalog — or `pending` after `answerWaitMs`, or not `delivered` with the
   * refusal (then nothing of the job is sent; every later report counts as lost). A second call
   * returns the first one's answer.
   */
  async onTrainBegin(): Promise<TrainBeginResult> {
    this.assertOpen('onTrainBegin');
    if (this.begun === undefined) {
      this.currentState = 'running';
      if (this.options.exitHooks ?? true) registerForExit(this);
      this.begun = this.queue.enqueue('BeginTraining', 'begin', async () => {
        const response = await this.call((deadline) =>
          this.client.beginTraining(this.beginRequest(), { deadline }),
        );
        if (!response.job) throw new RpcError(Status.INTERNAL, 'BeginTraining answered without a job');
        this.beginAcknowledged = true;
        this.reporter.start();
        this.startHeartbeats(response.heartbeatIntervalSeconds);
        return { ...DELIVERED, job: response.job, resumed: response.resumed, catalog: response.catalog };
      });
      void this.begun.then((settled) => {
        if (settled.delivered) return;
        this.beginError = settled.error;
        this.accepting = false;
        return this.reporter.giveUp(
          `dropped: BeginTraining failed (${settled.error.codeName}: ${settled.error.message})`,
        );
      });
    }
    const result = await this.answer(this.begun);
    if (result?.delivered) return result.value;
    return { ...TrainingCallbacks.delivery(result), job: undefined, resumed: false, catalog: undefined };
  }

  /**
   * Marks the start of an epoch (BeginEpoch); it becomes the default epoch of `onBatchEnd`. Queued;
   * awaiting it is not needed.
   */
  async onEpochBegin(epoch: number, options: { timestamp?: Date } = {}): Promise<Delivery> {
    this.assertOpen('onEpochBegin');
    this.currentEpoch = epoch;
    const timestamp = timestampFromDate(options.timestamp ?? new Date());
    const request = { jobId: this.jobId, sessionId: this.sessionId, epoch, timestamp };
    const settled = this.enqueueWrite(
      `BeginEpoch ${epoch}`,
      () => this.call((deadline) => this.client.beginEpoch(request, { deadline })),
      () => ({
        method: 'beginEpoch',
        request: toBinary(BeginEpochRequestSchema, create(BeginEpochRequestSchema, request)),
      }),
    );
    return TrainingCallbacks.delivery(await this.answer(settled));
  }

  /**
   * Records one batch's metrics. Synchronous and cheap: the values go into the typed arrays of the
   * current block and are streamed in the background. Never blocks and never throws; points that
   * cannot be kept (buffer full, job ended, bad step) are counted in {@link stats}.
   *
   * @param step - the global step, a non-negative integer
   * @param metrics - metric name → value; keep the same names in the same order for compact blocks
   * @param options - `epoch`, default the epoch of the last `onEpochBegin` (or `startEpoch`)
   */
  onBatchEnd(step: number, metrics: Metrics, options?: { readonly epoch?: number }): void {
    try {
      const buffer = this.reporter.buffer;
      if (!this.accepting || this.currentState === 'closed') {
        let n = 0;
        for (const _ in metrics) n++;
        buffer.dropped += n;
        return;
      }
      if (buffer.append(options?.epoch ?? this.currentEpoch, step, metrics)) this.reporter.notify();
    } catch {
      // Never throw into the training loop (e.g. a metrics object with a throwing getter).
    }
  }

  /**
   * Waits until everything queued before the call — reports and batch points — is settled:
   * acknowledged, or lost (refused, given up) and counted; at most `timeoutMs` (default
   * `flushTimeoutMs`; `complete` is false when the time ran out — the rest stays queued). Resolves
   * with what was delivered and what was lost so far. Never rejects, unless strict: then it rejects
   * with the error of a batch flush that failed for good, or when the time ran out.
   */
  async flush(options: FlushOptions = {}): Promise<FlushResult> {
    const timeoutMs = options.timeoutMs ?? this.flushTimeoutMs;
    let batchError: RpcError | undefined;
    const barrier = this.queue.enqueue('flush', 'barrier', async () => undefined);
    // The batch points reported so far, whatever the queue's order (before BeginTraining they wait).
    const points = this.beginAcknowledged
      ? this.reporter.flush().catch((e: unknown) => {
          batchError = RpcError.from(e);
        })
      : Promise.resolve();
    const done = await within(Promise.all([barrier, points]), timeoutMs);
    const pendingBeforeBegin = !this.beginAcknowledged && this.reporter.buffer.pending > 0;
    if (this.strict) {
      if (batchError) throw batchError;
      if (pendingBeforeBegin) {
        throw new RpcError(
          Status.FAILED_PRECONDITION,
          'batch points cannot be sent before onTrainBegin() succeeded',
        );
      }
      if (!done)
        throw new RpcError(
          Status.DEADLINE_EXCEEDED,
          `flush: not everything was acknowledged within ${timeoutMs} ms`,
        );
    }
    return { ...this.deliveryReport(), complete: done !== undefined && !pendingBeforeBegin };
  }

  /** Sends the batch points reported so far; a failure is counted (losses, stats), not thrown. */
  private async flushBatchQuietly(): Promise<void> {
    if (!this.beginAcknowledged) return;
    // Already counted and passed to onBackgroundError when it fails; the reports go ahead regardless.
    const flushed = this.reporter.flush().catch(() => undefined);
    // Strict mode bounds the wait as its awaited calls are bounded: by the retry budget.
    await within(flushed, this.strict ? this.retryPolicy.maxRetryTimeMs : Number.POSITIVE_INFINITY);
  }

  /**
   * Reports an epoch's metrics (EndEpoch), after the batch points reported before it. Re-reporting an
   * epoch replaces it. Queued; resolves with the sidecar's verdict per metric, whether it is the new
   * best, the best so far and its console summary — or `pending` after `answerWaitMs`, or not
   * `delivered` with the reason (counted in {@link losses}).
   */
  async onEpochEnd(
    epoch: number,
    metrics: Metrics,
    options: { timestamp?: Date } = {},
  ): Promise<EpochEndResult> {
    this.assertOpen('onEpochEnd');
    const timestamp = timestampFromDate(options.timestamp ?? new Date());
    const request = {
      jobId: this.jobId,
      sessionId: this.sessionId,
      epoch,
      metrics: { ...metrics },
      timestamp,
    };
    const settled = this.enqueueWrite(
      `EndEpoch ${epoch}`,
      () => this.call((deadline) => this.client.endEpoch(request, { deadline })),
      () => ({
        method: 'endEpoch',
        request: toBinary(EndEpochRequestSchema, create(EndEpochRequestSchema, request)),
      }),
    );
    const result = await this.answer(settled);
    if (result?.delivered) {
      const response = result.value;
      return {
        ...DELIVERED,
        verdicts: response.verdicts,
        isBest: response.isBest,
        best: response.best,
        summary: response.summary,
      };
    }
    return {
      ...TrainingCallbacks.delivery(result),
      verdicts: [],
      isBest: false,
      best: undefined,
      summary: '',
    };
  }

  /**
   * Ends the job (EndTraining) after everything queued before it: outcome "completed" by default,
   * "failed" when `options.error` is given (its message is sent), or as given. Waits at most
   * `timeoutMs` (default `flushTimeoutMs`): what is not acknowledged when that deadline less a
   * reserve for EndTraining (the smaller of `deadlineMs` and half of it) has passed is given up and
   * counted. Everything lost (see {@link losses}) is sent with EndTraining, so the job shows it, and
   * returned with what was delivered. Batch points reported afterwards are dropped. Never rejects
   * (unless strict); a second call returns the first one's result.
   */
  onTrainEnd(finalMetrics: Metrics = {}, options: TrainEndOptions = {}): Promise<TrainEndResult> {
    this.assertOpen('onTrainEnd');
    this.ending ??= this.end(finalMetrics, options);
    return this.ending;
  }

  private async end(finalMetrics: Metrics, options: TrainEndOptions): Promise<TrainEndResult> {
    this.accepting = false;
    const outcome = toOutcome(options.outcome ?? (options.error === undefined ? 'completed' : 'failed'));
    const timeoutMs = options.timeoutMs ?? this.flushTimeoutMs;
    const giveUpMs = Math.max(0, timeoutMs - Math.min(this.deadlineMs, timeoutMs / 2));
    const why = `not acknowledged by onTrainEnd's flush deadline (${timeoutMs} ms)`;
    this.timers.push(
      setTimeout(() => {
        this.giveUpRetries.abort();
        this.queue.giveUp(why);
        void this.reporter.giveUp(why);
      }, giveUpMs),
      setTimeout(() => this.endRetries.abort(), timeoutMs),
    );
    const errorText = options.error === undefined ? '' : errorMessage(options.error);
    const settled = await this.queue.enqueue('EndTraining', 'end', async () => {
      this.assertBeginNotFailed();
      // Everything queued before the end is settled now (acknowledged, refused or given up).
      return this.call(
        (deadline) =>
          this.client.endTraining(
            {
              jobId: this.jobId,
              sessionId: this.sessionId,
              outcome,
              finalMetrics: { ...finalMetrics },
              errorMessage: errorText,
              losses: lossesToProto(this.losses()),
            },
            { deadline },
          ),
        this.endRetries.signal,
      );
    });
    this.endDone = true;
    this.stopHeartbeats();
    for (const timer of this.timers) clearTimeout(timer);
    if (this.currentState === 'running') this.currentState = 'ended';
    this.reporter.discard();
    unregisterForExit(this);
    if (this.strict && !settled.delivered) throw settled.error;
    return {
      ...this.deliveryReport(),
      delivered: settled.delivered,
      error: settled.delivered ? undefined : settled.error,
      job: settled.delivered ? settled.value.job : undefined,
      verdicts: settled.delivered ? settled.value.verdicts : [],
    };
  }

  /**
   * Logs a file (LogArtifact by absolute path) under `artifactPath` ("checkpoints" places it at
   * "checkpoints/<file name>"). When the sidecar cannot read the path (PERMISSION_DENIED or
   * FAILED_PRECONDITION: outside its artifact roots, no shared volume) the file is uploaded instead
   * (UploadArtifact, ≤ 1 MiB chunks, SHA-256 checked by the sidecar). Queued: keep the file until
   * `onTrainEnd`. Resolves with the stored artifacts (empty when lost, or still pending after
   * `answerWaitMs`; the loss is counted in {@link losses}).
   */
  async logArtifact(path: string, artifactPath = ''): Promise<Artifact[]> {
    return this.artifacts(`LogArtifact ${path}`, path, artifactPath);
  }

  /**
   * Logs every file of a directory under `artifactPath`, keeping their relative paths; by path when
   * the sidecar can read it, else uploaded file by file (as {@link logArtifact}).
   */
  async logArtifacts(dir: string, artifactPath = ''): Promise<Artifact[]> {
    return this.artifacts(`LogArtifact ${dir}`, dir, artifactPath);
  }

  private async artifacts(what: string, path: string, artifactPath: string): Promise<Artifact[]> {
    this.assertOpen('logArtifact');
    const absolute = resolvePath(path);
    const result = await this.answer(this.enqueueWrite(what, () => this.logPath(absolute, artifactPath)));
    return result?.delivered ? result.value : [];
  }

  private async logPath(absolute: string, artifactPath: string): Promise<Artifact[]> {
    const transfer = this.options.artifactTransfer ?? 'auto';
    if (transfer !== 'upload') {
      try {
        const response = await this.call((deadline) =>
          this.client.logArtifact(
            { jobId: this.jobId, sessionId: this.sessionId, path: absolute, artifactPath },
            { deadline },
          ),
        );
        return response.artifacts;
      } catch (thrown) {
        const error = RpcError.from(thrown);
        const fallback = UPLOAD_FALLBACK_CODES.has(error.code); // proto/status-table.json
        if (transfer === 'path' || !fallback) throw error;
      }
    }
    let items: UploadItem[];
    try {
      items = await listUploadItems(absolute, artifactPath);
    } catch (thrown) {
      throw new RpcError(
        Status.INVALID_ARGUMENT,
        `cannot read ${absolute} to upload it: ${errorMessage(thrown)}`,
        {
          cause: thrown,
        },
      );
    }
    const artifacts: Artifact[] = [];
    for (const item of items) artifacts.push(await this.upload(item));
    return artifacts;
  }

  private async upload(item: UploadItem): Promise<Artifact> {
    const digest = await hashFile(item.sourcePath);
    // A large file needs longer than a small call: allow 100 ms per MiB (a 10 MiB/s floor) on top.
    const extraMs = Math.ceil(digest.size / UPLOAD_CHUNK_BYTES) * 100;
    const response = await this.call((deadline) =>
      this.client.uploadArtifact(uploadRequests(this, item, digest), { deadline: deadline + extraMs }),
    );
    if (!response.artifact)
      throw new RpcError(Status.INTERNAL, 'UploadArtifact answered without an artifact');
    return response.artifact;
  }

  /** Counters of the batch pipeline (buffered, accepted, rejected, dropped, failed, pending, retries…) and of the report queue. */
  stats(): ClientStats {
    return {
      ...this.reporter.stats(),
      reportsPending: this.queue.pending,
      reportsDelivered: this.queue.delivered,
      reportsLost: this.queue.lost,
      heartbeatsSent: this.heartbeatsSent,
    };
  }

  /** Stops the background delivery and closes the channel; what is still queued is not sent. */
  close(): void {
    if (this.currentState === 'closed') return;
    this.currentState = 'closed';
    this.accepting = false;
    unregisterForExit(this);
    this.stopHeartbeats();
    for (const timer of this.timers) clearTimeout(timer);
    this.giveUpRetries.abort();
    this.endRetries.abort();
    this.reporter.stop();
    void this.queue.close('not sent: the TrainingCallbacks was closed');
    this.client.close();
  }

  /** For `await using`: waits for what is queued (at most `flushTimeoutMs`), then closes. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.currentState === 'running' && !this.endDone) {
      try {
        await (this.ending ?? this.flush());
      } catch {
        // Strict mode's rejection: disposal is best effort.
      }
    }
    this.close();
  }

  // --- exit paths (see exit-hooks.ts) -------------------------------------------------------------

  /** An exit path with time to spare (a signal, the event loop drained): onTrainEnd within `timeoutMs`. */
  async endOnExit(outcome: OutcomeName, message: string | undefined, timeoutMs: number): Promise<void> {
    if (this.currentState !== 'running' || this.endDone) return;
    const ended =
      this.ending ?? this.onTrainEnd({}, { outcome, ...(message && { error: message }), timeoutMs });
    await within(
      ended.catch(() => undefined),
      timeoutMs + this.deadlineMs,
    );
  }

  /**
   * An exit path without an event loop ('exit', an uncaught exception): the queued epoch reports,
   * then EndTraining, are sent by a short-lived child process while this one waits (at most
   * `timeoutMs`). What cannot be sent that way (artifacts, batch points) is counted in the losses.
   */
  endSyncOnExit(outcome: OutcomeName, message: string | undefined, timeoutMs: number): void {
    if (this.currentState !== 'running' || this.endDone) return;
    this.endDone = true;
    // The epoch reports still queued go first, in order, from the child process; the rest (artifacts,
    // a BeginTraining never acknowledged, batch points) cannot, and is counted as lost.
    const pending = this.queue.pendingReports();
    const sendable = pending.filter((r) => r.encode !== undefined).slice(0, MAX_REPORTS_AT_EXIT);
    const unsendable = pending.filter((r) => !sendable.includes(r)).map((r) => r.what);
    if (unsendable.length > 0) {
      this.lost.add(`not delivered before the process exited: ${unsendable.join(', ')}`, {
        failedWrites: unsendable.length,
      });
    }
    const stats = this.reporter.stats();
    const points = stats.pointsPending + stats.pointsInFlight;
    if (points > 0)
      this.lost.add('batch points not delivered before the process exited', { droppedPoints: points });
    // EndTraining carries the losses, which depend on how many of those reports fail: one variant
    // per count, the child sends the one that is true.
    const base = this.losses();
    const endVariants = sendable
      .map((_, index) => index)
      .concat(sendable.length)
      .map((failed) => {
        const losses =
          failed === 0
            ? base
            : {
                ...base,
                failedWrites: base.failedWrites + failed,
                reasons: [
                  ...base.reasons,
                  `${failed} of ${sendable.length} reports sent as the process exited not acknowledged`,
                ].slice(0, 16),
              };
        const request = create(EndTrainingRequestSchema, {
          jobId: this.jobId,
          sessionId: this.sessionId,
          outcome: toOutcome(outcome),
          errorMessage: message ?? '',
          losses: lossesToProto(losses),
        });
        return toBinary(EndTrainingRequestSchema, request);
      });
    const failure = sendReportsAndEndSync(
      this.connection,
      sendable.map((r) => (r.encode as () => EncodedCall)()),
      endVariants,
      timeoutMs,
    );
    if (failure) this.warnOnce('exit', `could not end the job as the process exited: ${failure}`);
    this.currentState = 'ended';
  }

  private assertOpen(method: string): void {
    if (this.currentState === 'closed') {
      throw new RpcError(
        Status.FAILED_PRECONDITION,
        `${method}: this TrainingCallbacks is closed; create a new one`,
      );
    }
  }
}
