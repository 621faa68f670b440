import { resolve as resolvePath } from 'node:path';
import type { JsonObject } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';
import { createClient, RpcError, type ServiceClient, Status } from '@training-callbacks/grpc-adapter';
import {
  type Artifact,
  type BestEpoch,
  DEFAULT_SIDECAR_ADDRESS,
  type Job,
  type MetricVerdict,
  type TaskCatalog,
  type TaskType,
  TrainingCallbacks as TrainingCallbacksService,
} from '@training-callbacks/proto';
import {
  hashFile,
  listUploadItems,
  UPLOAD_CHUNK_BYTES,
  type UploadItem,
  uploadRequests,
} from './artifact-files.ts';
import { toBatchRequests } from './batch-encoding.ts';
import {
  type BatchOptions,
  BatchReporter,
  type BatchStats,
  DEFAULT_BATCH_OPTIONS,
} from './batch-reporter.ts';
import { type ConnectionOptions, resolveConnection } from './connection.ts';
import { describeLosses, hasLosses, type Losses, LossLedger, lossesToProto } from './losses.ts';
import {
  type MetricFormatName,
  type OutcomeName,
  type TaskTypeName,
  toMetricFormat,
  toOutcome,
  toTaskType,
} from './names.ts';
import { type CallWithRetryOptions, callWithRetry, DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.ts';

/** The sidecar address used when neither the `address` option nor TRAINING_CALLBACKS_ADDRESS is set. */
export const DEFAULT_ADDRESS = DEFAULT_SIDECAR_ADDRESS;

/** The default per-call deadline, in milliseconds. */
export const DEFAULT_DEADLINE_MS = 5000;

/** How long `onTrainEnd` waits by default for pending batch points, in milliseconds. */
export const DEFAULT_FLUSH_TIMEOUT_MS = 30_000;

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
  /** Called with errors of the background batch pipeline (also counted in `stats()`). */
  readonly onBackgroundError?: (error: RpcError) => void;
  /**
   * Channel credentials, instead of the ones made from `caFile` / `clientCertFile` (TLS) or plaintext
   * without them (a sidecar on loopback or a unix socket).
   */
  readonly credentials?: ChannelCredentials;
  /** grpc-js channel options, merged over {@link DEFAULT_CHANNEL_OPTIONS}. */
  readonly channelOptions?: ChannelOptions;
}

/** What `onTrainBegin` returns. */
export interface TrainBeginResult {
  /** The job as stored. */
  readonly job: Job;
  /** True when the job already existed and is continued. */
  readonly resumed: boolean;
  /** The metric catalog of the job's task type. */
  readonly catalog: TaskCatalog | undefined;
}

/** What `onEpochEnd` returns. */
export interface EpochEndResult {
  /** One verdict per reported metric, in name order. */
  readonly verdicts: readonly MetricVerdict[];
  /** True when this epoch is the new best by the task's primary metric. */
  readonly isBest: boolean;
  /** The best epoch so far, if any epoch had a finite primary value. */
  readonly best: BestEpoch | undefined;
  /** The console line the sidecar printed for this epoch. */
  readonly summary: string;
}

/** What `onTrainEnd` returns. */
export interface TrainEndResult {
  /** The job as stored after ending (its `clientLosses` are the losses below). */
  readonly job: Job | undefined;
  /** One verdict per final metric. */
  readonly verdicts: readonly MetricVerdict[];
  /** What the client could not deliver for this job, sent with EndTraining; all zero when nothing. */
  readonly losses: Losses;
  /** Empty when nothing was lost; otherwise one line saying what was lost and why. */
  readonly lossSummary: string;
}

/** Options of `onTrainEnd`. */
export interface TrainEndOptions {
  /** How training ended; default "completed", or "failed" when `error` is given. */
  readonly outcome?: OutcomeName;
  /** What went wrong: an Error (its message is sent) or a message. */
  readonly error?: unknown;
}

/** Where a {@link TrainingCallbacks} is in the job's life. */
export type CallbacksState = 'new' | 'running' | 'ended' | 'closed';

/** True when `promise` settles within `ms` milliseconds (its rejection is the caller's to handle). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  if (!(ms < 2 ** 31)) {
    await promise; // beyond a timer's range (e.g. an unbounded retry budget): no time limit
    return true;
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return typeof error === 'string' ? error : String(error);
}

/**
 * The trainer's side of the sidecar, mirroring the seed's callbacks: `onTrainBegin`, `onEpochBegin`,
 * `onBatchEnd`, `onEpochEnd`, `onTrainEnd`, `logArtifact`, `logArtifacts`. Every call carries a
 * deadline and is retried by the shared status table (transient statuses such as UNAVAILABLE and
 * DEADLINE_EXCEEDED within the retry budget, INTERNAL a few times; every write of the contract is
 * idempotent) with exponential backoff and jitter; other failures reject with the sidecar's
 * {@link RpcError}. Batch metrics are buffered and streamed in the background.
 */
export class TrainingCallbacks {
  /** The job id. */
  readonly jobId: string;
  /** The sidecar address in use. */
  readonly address: string;
  /** The typed client, for the read RPCs (getJob, listEpochs, listBatchMetrics, …). */
  readonly client: TrainingCallbacksClient;

  private readonly options: TrainingCallbacksOptions;
  private readonly taskType: TaskType;
  private readonly deadlineMs: number;
  private readonly retryPolicy: RetryPolicy;
  private readonly reporter: BatchReporter;
  private readonly lost = new LossLedger();
  /** Ends the retries of the batch stream in flight when onTrainEnd's flush deadline passes. */
  private readonly batchRetries = new AbortController();
  private readonly flushTimeoutMs: number;
  private currentEpoch: number;
  private currentState: CallbacksState = 'new';

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
    this.flushTimeoutMs = options.flushTimeoutMs ?? DEFAULT_FLUSH_TIMEOUT_MS;
    this.retryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.currentEpoch = options.startEpoch ?? 0;
    const connection = resolveConnection(options);
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
    this.reporter = new BatchReporter(
      batch,
      (blocks) => {
        const requests = toBatchRequests(this.jobId, blocks);
        // A big stream needs longer than a small call: allow 10 µs per point on top (1 M points: +10 s).
        let points = 0;
        for (const block of blocks) points += block.values.length;
        const extraMs = Math.ceil(points / 100);
        return this.call(
          (deadline) => this.client.reportBatchMetrics(requests, { deadline: deadline + extraMs }),
          this.batchRetries.signal,
          true,
        );
      },
      (error) => options.onBackgroundError?.(error),
      this.lost,
    );
  }

  /** Where the job is: "new" before `onTrainBegin`, "running", "ended" after `onTrainEnd`, "closed". */
  get state(): CallbacksState {
    return this.currentState;
  }

  /** Runs one call with the per-call deadline and the retry policy (the shared status table). */
  private call<T>(
    attempt: (deadlineMs: number) => Promise<T>,
    signal?: AbortSignal,
    untilAcknowledged = false,
  ): Promise<T> {
    // Batch streams run in the background: a transient failure is retried until acknowledged (or
    // until onTrainEnd's flush deadline aborts it), not only for the retry budget of awaited calls.
    const policy = untilAcknowledged
      ? { ...this.retryPolicy, maxRetryTimeMs: Number.POSITIVE_INFINITY }
      : this.retryPolicy;
    const options: CallWithRetryOptions = {
      onRetry: () => {
        this.reporter.retries++;
      },
      ...(signal && { signal }),
    };
    return callWithRetry(() => attempt(this.deadlineMs), policy, options);
  }

  /** Runs a write; when it fails for good it is counted in the losses, then rethrown. */
  private async write<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (thrown) {
      const error = RpcError.from(thrown);
      this.lost.add(`${what} failed: ${error.codeName}: ${error.message}`, { failedWrites: 1 });
      throw error;
    }
  }

  /** What could not be delivered so far, with the reasons (sent with EndTraining). */
  losses(): Losses {
    const batch = { ...DEFAULT_BATCH_OPTIONS, ...this.options.batch };
    return this.lost.snapshot(
      this.reporter.buffer.dropped,
      `batch buffer full (${batch.bufferPoints} points) or points reported after onTrainEnd`,
    );
  }

  /**
   * Begins the job (BeginTraining), or continues it when the id already exists. Starts the
   * background batch stream. Resolves with the stored job, `resumed`, and the task's catalog.
   */
  async onTrainBegin(): Promise<TrainBeginResult> {
    this.assertOpen('onTrainBegin');
    const o = this.options;
    // fromEntries defines each entry; `params[key] = …` on a plain object would drop a `__proto__` key.
    const params = Object.fromEntries(Object.entries(o.params ?? {}).map(([k, v]) => [k, String(v)]));
    const response = await this.call((deadline) =>
      this.client.beginTraining(
        {
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
        },
        { deadline },
      ),
    );
    if (!response.job) throw new RpcError(Status.INTERNAL, 'BeginTraining answered without a job');
    this.currentState = 'running';
    this.reporter.start();
    return { job: response.job, resumed: response.resumed, catalog: response.catalog };
  }

  /** Marks the start of an epoch (BeginEpoch); it becomes the default epoch of `onBatchEnd`. */
  async onEpochBegin(epoch: number, options: { timestamp?: Date } = {}): Promise<void> {
    this.assertOpen('onEpochBegin');
    this.currentEpoch = epoch;
    await this.write(`BeginEpoch ${epoch}`, () =>
      this.call((deadline) =>
        this.client.beginEpoch(
          {
            jobId: this.jobId,
            epoch,
            ...(options.timestamp ? { timestamp: timestampFromDate(options.timestamp) } : {}),
          },
          { deadline },
        ),
      ),
    );
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
      if (this.currentState === 'ended' || this.currentState === 'closed') {
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
   * Waits until every batch point reported before the call is acknowledged by the sidecar; while the
   * sidecar is unreachable it keeps waiting (batch streams are retried until acknowledged). Rejects
   * with the {@link RpcError} of a flush that failed for good — refused, or given up at
   * `onTrainEnd`'s flush deadline (those points are counted in {@link losses}).
   */
  flush(): Promise<void> {
    return this.reporter.flush();
  }

  /** Flushes batch points, reporting a failure only through stats and `onBackgroundError`. */
  private async flushQuietly(): Promise<void> {
    if (this.currentState !== 'running') return;
    try {
      await this.reporter.flush();
    } catch {
      // Already counted and passed to onBackgroundError; epoch and final metrics go ahead regardless.
    }
  }

  /**
   * Reports an epoch's metrics (EndEpoch) after flushing pending batch points. Re-reporting an epoch
   * replaces it. Resolves with the sidecar's verdict per metric, whether it is the new best, the best
   * so far, and its console summary.
   */
  async onEpochEnd(
    epoch: number,
    metrics: Metrics,
    options: { timestamp?: Date } = {},
  ): Promise<EpochEndResult> {
    this.assertOpen('onEpochEnd');
    // Batch points go first, but an outage holds the epoch no longer than an awaited call's retry
    // budget (the points keep being retried in the background).
    await settlesWithin(this.flushQuietly(), this.retryPolicy.maxRetryTimeMs);
    const response = await this.write(`EndEpoch ${epoch}`, () =>
      this.call((deadline) =>
        this.client.endEpoch(
          {
            jobId: this.jobId,
            epoch,
            metrics: { ...metrics },
            ...(options.timestamp ? { timestamp: timestampFromDate(options.timestamp) } : {}),
          },
          { deadline },
        ),
      ),
    );
    return {
      verdicts: response.verdicts,
      isBest: response.isBest,
      best: response.best,
      summary: response.summary,
    };
  }

  /**
   * Ends the job (EndTraining) after flushing pending batch points: outcome "completed" by default,
   * "failed" when `options.error` is given (its message is sent), or as given. The flush waits at
   * most `flushTimeoutMs` less a reserve for EndTraining; what is not acknowledged by then is given up.
   * Everything lost (see {@link losses}) is sent with EndTraining, so the job shows it, and returned
   * with a one-line summary. Batch points reported afterwards are dropped.
   */
  async onTrainEnd(finalMetrics: Metrics = {}, options: TrainEndOptions = {}): Promise<TrainEndResult> {
    this.assertOpen('onTrainEnd');
    const outcome = toOutcome(options.outcome ?? (options.error === undefined ? 'completed' : 'failed'));
    const giveUpMs = Math.max(0, this.flushTimeoutMs - Math.min(this.deadlineMs, this.flushTimeoutMs / 2));
    if (!(await settlesWithin(this.flushQuietly(), giveUpMs))) {
      this.batchRetries.abort();
      await this.reporter.giveUp(
        `not acknowledged by onTrainEnd's flush deadline (${this.flushTimeoutMs} ms)`,
      );
    }
    const losses = this.losses();
    const response = await this.call((deadline) =>
      this.client.endTraining(
        {
          jobId: this.jobId,
          outcome,
          finalMetrics: { ...finalMetrics },
          errorMessage: options.error === undefined ? '' : errorMessage(options.error),
          losses: lossesToProto(losses),
        },
        { deadline },
      ),
    );
    this.currentState = 'ended';
    this.reporter.discard();
    return {
      job: response.job,
      verdicts: response.verdicts,
      losses,
      lossSummary: hasLosses(losses) ? describeLosses(losses) : '',
    };
  }

  /**
   * Logs a file (LogArtifact by absolute path) under `artifactPath` ("checkpoints" places it at
   * "checkpoints/<file name>"). When the sidecar cannot read the path (PERMISSION_DENIED or
   * FAILED_PRECONDITION: outside its artifact roots, no shared volume) the file is uploaded instead
   * (UploadArtifact, ≤ 1 MiB chunks, SHA-256 checked by the sidecar). Resolves with the stored artifacts.
   */
  logArtifact(path: string, artifactPath = ''): Promise<Artifact[]> {
    return this.write(`LogArtifact ${path}`, () => this.logPath(path, artifactPath));
  }

  /**
   * Logs every file of a directory under `artifactPath`, keeping their relative paths; by path when
   * the sidecar can read it, else uploaded file by file (as {@link logArtifact}).
   */
  logArtifacts(dir: string, artifactPath = ''): Promise<Artifact[]> {
    return this.write(`LogArtifact ${dir}`, () => this.logPath(dir, artifactPath));
  }

  private async logPath(path: string, artifactPath: string): Promise<Artifact[]> {
    this.assertOpen('logArtifact');
    const absolute = resolvePath(path);
    const transfer = this.options.artifactTransfer ?? 'auto';
    if (transfer !== 'upload') {
      try {
        const response = await this.call((deadline) =>
          this.client.logArtifact({ jobId: this.jobId, path: absolute, artifactPath }, { deadline }),
        );
        return response.artifacts;
      } catch (thrown) {
        const error = RpcError.from(thrown);
        const fallback = error.code === Status.PERMISSION_DENIED || error.code === Status.FAILED_PRECONDITION;
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
      this.client.uploadArtifact(uploadRequests(this.jobId, item, digest), { deadline: deadline + extraMs }),
    );
    if (!response.artifact)
      throw new RpcError(Status.INTERNAL, 'UploadArtifact answered without an artifact');
    return response.artifact;
  }

  /** Counters of the batch pipeline: buffered, accepted, rejected, dropped, failed, pending, retries… */
  stats(): BatchStats {
    return this.reporter.stats();
  }

  /** Stops the background stream and closes the channel; pending batch points are not sent. */
  close(): void {
    if (this.currentState === 'closed') return;
    this.currentState = 'closed';
    this.batchRetries.abort();
    this.reporter.stop();
    this.client.close();
  }

  /** For `await using`: flushes pending batch points (best effort), then closes. */
  async [Symbol.asyncDispose](): Promise<void> {
    await settlesWithin(this.flushQuietly(), this.retryPolicy.maxRetryTimeMs);
    this.close();
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
