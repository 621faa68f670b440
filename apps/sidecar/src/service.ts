// The TrainingCallbacks handlers: validate, normalise through the metric catalog, commit to the store,
// then acknowledge. Nothing is answered OK before the store's transaction has committed, and a refused
// call changes nothing.
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { RpcError, type ServiceHandlers, Status } from '@training-callbacks/grpc-adapter';
import {
  applyScale,
  CatalogError,
  checkMetricName,
  columnValues,
  createMetricClassifier,
  formatEpochLine,
  formatMetricValue,
  getTaskCatalog,
  listTaskCatalogs,
  type MetricClassifier,
  type MetricVerdict,
  selectBestEpoch,
  type TaskType,
} from '@training-callbacks/metric-catalog';
import { type JobEndedPayload, outboxItems } from '@training-callbacks/mlflow-bridge/core';
import {
  type TrainingCallbacks,
  TrainingOutcome,
  type UploadArtifactRequest,
} from '@training-callbacks/proto';
import type { BatchBlock, JobRecord, JobStatus, OutboxItemInput, Store } from '@training-callbacks/store';
import type { ArtifactFiles } from './artifacts.ts';
import {
  artifactToProto,
  blockToProto,
  catalogToProto,
  definitionFromProto,
  epochToProto,
  jobStatuses,
  jobToProto,
  taskTypes,
  verdictToProto,
} from './convert.ts';
import { createKeyedMutex } from './keyed-mutex.ts';
import type { Mirror } from './mlflow-mirror.ts';
import {
  checkArtifactPath,
  checkEpoch,
  checkJobId,
  checkMetricNames,
  checkParams,
  checkShortText,
  ERROR_MESSAGE_MAX_LENGTH,
  quote,
} from './validation.ts';

type Methods = typeof TrainingCallbacks extends { method: infer M } ? M : never;

export interface ServiceOptions {
  store: Store;
  artifacts: ArtifactFiles;
  /** Receives the human-readable per-epoch and per-job lines. */
  log: (line: string) => void;
  /** Lines about an operator's action (RetryMlflowSync), printed even when `log` is quiet; default `log`. */
  notice?: (line: string) => void;
  /** MLflow mirroring; absent when MLflow is not configured (then no outbox entry is written). */
  mirror?: Mirror;
}

/** Batch points are committed in transactions of about this many points while a stream is open. */
const BATCH_COMMIT_POINTS = 200_000;
/** How many jobs' classifiers and best-epoch state are kept in memory. */
const CACHED_JOBS = 1000;

/** What the sidecar keeps in memory about a job it has served, to avoid reading it back per call. */
interface JobState {
  job: JobRecord;
  classifier: MetricClassifier;
  /** Loaded on the first epoch report: every stored epoch, and the finite primary values by epoch. */
  epochs?: { seen: Set<number>; primary: Map<number, number> };
}

const OUTCOME_STATUS: Record<number, Exclude<JobStatus, 'running'>> = {
  [TrainingOutcome.COMPLETED]: 'completed',
  [TrainingOutcome.FAILED]: 'failed',
  [TrainingOutcome.CANCELLED]: 'cancelled',
};

/** How an ended job's MLflow run ends. */
const RUN_STATUS: Record<Exclude<JobStatus, 'running'>, JobEndedPayload['status']> = {
  completed: 'FINISHED',
  failed: 'FAILED',
  cancelled: 'KILLED',
};

function acceptedMetrics(verdicts: readonly MetricVerdict[]): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const verdict of verdicts) if (verdict.tier !== 'rejected') metrics[verdict.name] = verdict.value;
  return metrics;
}

/** A stored artifact file, to upload into the run's artifacts. */
function artifactItem(record: {
  storedPath: string;
  artifactPath: string;
  sizeBytes: number;
  sha256: string;
}) {
  return outboxItems.artifact(record.storedPath, record.artifactPath, {
    sizeBytes: record.sizeBytes,
    sha256: record.sha256,
  });
}

function classifierFor(task: TaskType, job: Pick<JobRecord, 'customMetrics'>): MetricClassifier {
  try {
    return createMetricClassifier(task, job.customMetrics);
  } catch (error) {
    if (error instanceof CatalogError)
      throw new RpcError(Status.INVALID_ARGUMENT, `custom_metrics: ${error.message}`);
    throw error;
  }
}

/**
 * The best epoch once `epoch` reports `value` (undefined: no finite primary value). Only when the
 * current best epoch itself is re-reported can the best move elsewhere, so only then are all epochs
 * compared again; otherwise the challenger meets the incumbent. The catalog decides either way.
 */
function nextBest(
  state: JobState,
  primaryByEpoch: ReadonlyMap<number, number>,
  epoch: number,
  value: number | undefined,
): { epoch: number; value: number } | null {
  const task = state.job.task as TaskType;
  const primaryName = state.classifier.catalog.primaryMetric;
  const candidate = (e: number, v: number) => ({ epoch: e, metrics: { [primaryName]: v } });
  const incumbent = state.job.bestEpoch;
  if (incumbent === undefined || incumbent === epoch) {
    const all = [...primaryByEpoch].filter(([e]) => e !== epoch).map(([e, v]) => candidate(e, v));
    if (value !== undefined) all.push(candidate(epoch, value));
    return selectBestEpoch(task, all) ?? null;
  }
  const current = { epoch: incumbent, value: state.job.bestValue! };
  if (value === undefined) return current;
  return selectBestEpoch(task, [candidate(current.epoch, current.value), candidate(epoch, value)]) ?? current;
}

export function createTrainingCallbacksHandlers(options: ServiceOptions): ServiceHandlers<Methods> {
  const { store, artifacts, log, mirror } = options;
  const notice = options.notice ?? log;
  /** Outbox entries for a write, only when mirroring; the worker is nudged once the write committed. */
  const mirrored = (build: () => OutboxItemInput[]): { outbox?: OutboxItemInput[] } =>
    mirror ? { outbox: build() } : {};
  const notify = () => mirror?.notify();
  /** Job records → protos, with MlflowSync when mirroring. */
  async function jobsToProto(jobs: readonly JobRecord[]) {
    const sync = mirror ? await mirror.sync(jobs.map((j) => j.jobId)) : undefined;
    return jobs.map((job) => jobToProto(job, sync?.get(job.jobId)));
  }
  const states = new Map<string, JobState>();
  const lock = createKeyedMutex();

  function remember(job: JobRecord, classifier?: MetricClassifier): JobState {
    const previous = states.get(job.jobId);
    const state: JobState = {
      job,
      classifier: classifier ?? previous?.classifier ?? classifierFor(job.task as TaskType, job),
      ...(previous?.epochs && { epochs: previous.epochs }),
    };
    states.delete(job.jobId);
    states.set(job.jobId, state);
    if (states.size > CACHED_JOBS) states.delete(states.keys().next().value as string);
    return state;
  }

  async function existing(jobId: string): Promise<JobState> {
    const cached = states.get(jobId);
    if (cached) return cached;
    const job = await store.getJob(jobId);
    if (!job) {
      throw new RpcError(
        Status.NOT_FOUND,
        `job ${quote(jobId)} not found; call BeginTraining (on_train_begin) first`,
      );
    }
    return remember(job);
  }

  async function running(jobId: string): Promise<JobState> {
    const state = await existing(jobId);
    if (state.job.status !== 'running') {
      throw new RpcError(
        Status.FAILED_PRECONDITION,
        `job ${quote(jobId)} has ended (${state.job.status}); reports after the end are refused — ` +
          'call BeginTraining again to resume a failed or cancelled job, or use a new job id',
      );
    }
    return state;
  }

  async function storedEpochs(state: JobState): Promise<NonNullable<JobState['epochs']>> {
    if (state.epochs) return state.epochs;
    const primaryName = state.classifier.catalog.primaryMetric;
    const epochs = { seen: new Set<number>(), primary: new Map<number, number>() };
    for (const epoch of await store.listEpochs(state.job.jobId)) {
      epochs.seen.add(epoch.epoch);
      const value = epoch.metrics[primaryName];
      if (value !== undefined && Number.isFinite(value)) epochs.primary.set(epoch.epoch, value);
    }
    state.epochs = epochs;
    return epochs;
  }

  return {
    async beginTraining(request) {
      checkJobId(request.jobId);
      const task = taskTypes.name(request.taskType);
      if (!task) {
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          `task_type ${request.taskType} is not a task type; send one of ${taskTypes
            .names()
            .map((n) => `TASK_TYPE_${n.toUpperCase()}`)
            .join(', ')}`,
        );
      }
      checkShortText(request.framework, 'framework');
      checkShortText(request.modelName, 'model_name');
      checkEpoch(request.startEpoch, 'start_epoch');
      checkParams(request.params);
      const customMetrics = request.customMetrics.map(definitionFromProto);
      for (const definition of customMetrics) {
        const problem = checkMetricName(definition.name);
        if (problem)
          throw new RpcError(
            Status.INVALID_ARGUMENT,
            `custom_metrics: ${quote(definition.name)}: ${problem}`,
          );
      }
      const classifier = classifierFor(task, { customMetrics });
      const catalog = getTaskCatalog(task);

      return lock(request.jobId, async () => {
        const fields = {
          jobId: request.jobId,
          task,
          framework: request.framework,
          modelName: request.modelName,
          modelConfig: (request.modelConfig ?? {}) as Record<string, unknown>,
          trainingConfig: (request.trainingConfig ?? {}) as Record<string, unknown>,
          params: { ...request.params },
          customMetrics,
          startEpoch: request.startEpoch,
          primaryMetric: catalog.primaryMetric,
        };
        const begun = (startTimeMs: number) =>
          outboxItems.jobBegun({
            task,
            framework: request.framework,
            modelName: request.modelName,
            params: fields.params,
            startTimeMs,
          });
        const { job, created } = await store.createOrGetJob(
          fields,
          mirrored(() => [begun(Date.now())]),
        );
        if (created) {
          notify();
          remember(job, classifier);
          log(
            `[${job.jobId}] training begun │ ${task} │ ${job.framework || 'unknown framework'} │ ${job.modelName || 'unnamed model'}`,
          );
          return { job: (await jobsToProto([job]))[0]!, resumed: false, catalog: catalogToProto(catalog) };
        }
        if (job.task !== task) {
          throw new RpcError(
            Status.FAILED_PRECONDITION,
            `job ${quote(job.jobId)} exists with task type ${job.task}, not ${task}; use a new job id for a different task`,
          );
        }
        if (job.status === 'completed') {
          throw new RpcError(
            Status.FAILED_PRECONDITION,
            `job ${quote(job.jobId)} already completed; to train further, begin a new job id (only running, failed or cancelled jobs can be resumed)`,
          );
        }
        // A retry of the same BeginTraining, or a resume after a crash: continue the same job.
        const reopened = await store.reopenJob(job.jobId, {
          startEpoch: request.startEpoch,
          modelConfig: fields.modelConfig,
          trainingConfig: fields.trainingConfig,
          params: fields.params,
          customMetrics,
          ...mirrored(() => [begun(job.createdAt.getTime())]),
        });
        notify();
        remember(reopened, classifier);
        log(`[${job.jobId}] training resumed from epoch ${request.startEpoch} (was ${job.status})`);
        return { job: (await jobsToProto([reopened]))[0]!, resumed: true, catalog: catalogToProto(catalog) };
      });
    },

    async beginEpoch(request) {
      checkJobId(request.jobId);
      checkEpoch(request.epoch);
      await running(request.jobId);
      await store.beginEpoch(
        request.jobId,
        request.epoch,
        request.timestamp ? timestampDate(request.timestamp) : new Date(),
      );
      return {};
    },

    async endEpoch(request) {
      checkJobId(request.jobId);
      checkEpoch(request.epoch);
      checkMetricNames(request.metrics, 'metrics');
      const timestamp = request.timestamp ? timestampDate(request.timestamp) : new Date();
      return lock(request.jobId, async () => {
        const state = await running(request.jobId);
        const verdicts = state.classifier.classify(request.metrics);
        const metrics = acceptedMetrics(verdicts);
        const primaryName = state.classifier.catalog.primaryMetric;
        const primary = metrics[primaryName];

        const stored = await storedEpochs(state);
        const finite = primary !== undefined && Number.isFinite(primary);
        const best = nextBest(state, stored.primary, request.epoch, finite ? primary : undefined);

        await store.saveEpoch({
          jobId: request.jobId,
          epoch: request.epoch,
          metrics,
          columns: columnValues(metrics),
          timestamp,
          best,
          ...mirrored(() => [outboxItems.epochMetrics(request.epoch, metrics, timestamp.getTime())]),
        });
        notify();

        // Committed: now update what we remember and answer.
        if (finite) stored.primary.set(request.epoch, primary);
        else stored.primary.delete(request.epoch);
        stored.seen.add(request.epoch);
        state.job = {
          ...state.job,
          ...(best ? { bestEpoch: best.epoch, bestValue: best.value } : {}),
          epochsReported: stored.seen.size,
          updatedAt: new Date(),
        };
        if (!best) {
          delete state.job.bestEpoch;
          delete state.job.bestValue;
        }
        const summary = `[${request.jobId}] ${formatEpochLine(state.classifier, request.epoch, verdicts)}`;
        log(summary);
        return {
          verdicts: verdicts.map(verdictToProto),
          isBest: best?.epoch === request.epoch,
          ...(best && { best }),
          summary,
        };
      });
    },

    async reportBatchMetrics(requests) {
      let jobId: string | undefined;
      let state: JobState | undefined;
      let pending: BatchBlock[] = [];
      let pendingPoints = 0;
      let accepted = 0;
      let rejected = 0;
      let nonFinite = 0;
      const reasons = new Set<string>();
      const flush = async () => {
        if (pending.length === 0) return;
        // The outbox refers to the stored blocks; their points are read when MLflow is sent them.
        await store.appendBatchBlocks(jobId!, pending, mirror ? { outboxKind: 'batch_metrics' } : {});
        notify();
        pending = [];
        pendingPoints = 0;
      };
      const reject = (points: number, reason: string) => {
        rejected += points;
        reasons.add(reason);
      };

      for await (const request of requests) {
        if (jobId === undefined) {
          checkJobId(request.jobId);
          jobId = request.jobId;
          state = await running(jobId);
        } else if (request.jobId !== '' && request.jobId !== jobId) {
          throw new RpcError(
            Status.INVALID_ARGUMENT,
            `every message of a ReportBatchMetrics stream must name the same job; got ${quote(request.jobId)} after ${quote(jobId)}`,
          );
        }
        for (const block of request.blocks) {
          const columns = block.names.length;
          const rows = block.steps.length;
          const points = block.values.length;
          if (columns === 0 || rows === 0) {
            reject(points, 'a block needs at least one name and one step');
            continue;
          }
          if (points !== rows * columns) {
            reject(
              points,
              `a block's values must hold len(steps) × len(names) numbers (got ${points} for ${rows} × ${columns})`,
            );
            continue;
          }
          if (block.epoch < 0) {
            reject(points, `epoch ${block.epoch} is negative; epochs are counted from 0`);
            continue;
          }
          const badName = block.names.find((name) => checkMetricName(name) !== undefined);
          if (badName !== undefined) {
            reject(points, `metric name ${quote(badName)}: ${checkMetricName(badName)}`);
            continue;
          }
          const normalised = block.names.map((name) => state!.classifier.normaliseName(name));
          const names = normalised.map((n) => n.name);
          if (new Set(names).size !== names.length) {
            reject(
              points,
              `names ${quote(block.names.join(', '))} repeat a metric once normalised (${names.join(', ')})`,
            );
            continue;
          }
          const values = Float64Array.from(block.values);
          for (let c = 0; c < columns; c++) {
            const scale = normalised[c]!.scale;
            if (scale !== 1)
              for (let i = c; i < points; i += columns) values[i] = applyScale(values[i]!, scale);
          }
          for (let i = 0; i < points; i++) if (!Number.isFinite(values[i]!)) nonFinite++;
          pending.push({ epoch: block.epoch, names, steps: BigInt64Array.from(block.steps), values });
          pendingPoints += points;
          accepted += points;
        }
        if (pendingPoints >= BATCH_COMMIT_POINTS) await flush();
      }
      if (jobId !== undefined) await flush();
      return {
        acceptedPoints: BigInt(accepted),
        rejectedPoints: BigInt(rejected),
        nonFinitePoints: BigInt(nonFinite),
        rejections: [...reasons],
      };
    },

    async endTraining(request) {
      checkJobId(request.jobId);
      const status = OUTCOME_STATUS[request.outcome];
      if (!status) {
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          'outcome must be set: TRAINING_OUTCOME_COMPLETED, TRAINING_OUTCOME_FAILED or TRAINING_OUTCOME_CANCELLED',
        );
      }
      checkMetricNames(request.finalMetrics, 'final_metrics');
      return lock(request.jobId, async () => {
        const state = await existing(request.jobId);
        const verdicts = state.classifier.classify(request.finalMetrics);
        if (state.job.status !== 'running') {
          if (state.job.status === status)
            return { job: (await jobsToProto([state.job]))[0]!, verdicts: verdicts.map(verdictToProto) };
          throw new RpcError(
            Status.FAILED_PRECONDITION,
            `job ${quote(request.jobId)} already ended as ${state.job.status}; it cannot end again as ${status}`,
          );
        }
        const finalMetrics = acceptedMetrics(verdicts);
        const primaryName = state.classifier.catalog.primaryMetric;
        const reportedPrimary = finalMetrics[primaryName];
        const finalPrimaryValue =
          reportedPrimary !== undefined && Number.isFinite(reportedPrimary)
            ? reportedPrimary
            : state.job.bestValue;
        const finalAccuracy =
          finalMetrics.accuracy ?? (primaryName === 'accuracy' ? state.job.bestValue : undefined);
        let errorMessage = request.errorMessage;
        if (errorMessage.length > ERROR_MESSAGE_MAX_LENGTH) {
          errorMessage = `${errorMessage.slice(0, ERROR_MESSAGE_MAX_LENGTH)}… (truncated from ${errorMessage.length} characters)`;
        }
        const endedAt = new Date();
        let finalStep = state.job.startEpoch;
        if (mirror) for (const e of (await storedEpochs(state)).seen) finalStep = Math.max(finalStep, e);
        const job = await store.endJob({
          jobId: request.jobId,
          status,
          finalMetrics,
          ...(finalPrimaryValue !== undefined && { finalPrimaryValue }),
          ...(finalAccuracy !== undefined && { finalAccuracy }),
          errorMessage,
          endedAt,
          ...mirrored(() => [
            ...(Object.keys(finalMetrics).length
              ? [outboxItems.finalMetrics(finalMetrics, finalStep, endedAt.getTime())]
              : []),
            outboxItems.jobEnded(RUN_STATUS[status], endedAt.getTime(), errorMessage || undefined),
          ]),
        });
        notify();
        remember(job, state.classifier);
        const primaryDefinition = state.classifier.definitionOf(primaryName);
        const bestText =
          job.bestEpoch !== undefined && job.bestValue !== undefined
            ? ` │ best epoch ${job.bestEpoch} (${primaryDefinition?.label ?? primaryName} ${formatMetricValue(primaryDefinition, job.bestValue)})`
            : '';
        log(
          `[${job.jobId}] training ${status}${bestText}${errorMessage ? ` │ ${errorMessage.split('\n')[0]}` : ''}`,
        );
        return { job: (await jobsToProto([job]))[0]!, verdicts: verdicts.map(verdictToProto) };
      });
    },

    async logArtifact(request) {
      checkJobId(request.jobId);
      checkArtifactPath(request.artifactPath);
      if (request.path === '')
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          'path is empty; send the absolute path of a file or directory',
        );
      await running(request.jobId);
      const real = await artifacts.confine(request.path);
      const records = await artifacts.copyIn(request.jobId, real, request.artifactPath);
      await store.putArtifacts(
        request.jobId,
        records,
        mirrored(() => records.map(artifactItem)),
      );
      notify();
      return { artifacts: records.map(artifactToProto) };
    },

    async uploadArtifact(requests) {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      const header = first.done ? undefined : (first.value as UploadArtifactRequest).part;
      if (header?.case !== 'header') {
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          'the first message of UploadArtifact must be the header (job_id, artifact_path, size_bytes, sha256)',
        );
      }
      const { jobId, artifactPath, sizeBytes, sha256 } = header.value;
      checkJobId(jobId);
      checkArtifactPath(artifactPath, 'header.artifact_path', false);
      if (!/^[0-9a-fA-F]{64}$/.test(sha256)) {
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          'header.sha256 must be the 64-character hex SHA-256 of the content',
        );
      }
      await running(jobId);
      const chunks = (async function* () {
        for (;;) {
          const next = await iterator.next();
          if (next.done) return;
          const part = (next.value as UploadArtifactRequest).part;
          if (part.case !== 'chunk')
            throw new RpcError(
              Status.INVALID_ARGUMENT,
              'only the first message of UploadArtifact may be a header',
            );
          yield part.value;
        }
      })();
      const record = await artifacts.receive(jobId, artifactPath, { sizeBytes, sha256 }, chunks);
      await store.putArtifacts(
        jobId,
        [record],
        mirrored(() => [artifactItem(record)]),
      );
      notify();
      return { artifact: artifactToProto(record) };
    },

    async getJob(request) {
      checkJobId(request.jobId);
      const job = await store.getJob(request.jobId);
      if (!job) throw new RpcError(Status.NOT_FOUND, `job ${quote(request.jobId)} not found`);
      return { job: (await jobsToProto([job]))[0]! };
    },

    async listJobs(request) {
      if (request.pageSize < 0 || request.pageSize > 1000) {
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          `page_size must be between 1 and 1000 (0 means 50); got ${request.pageSize}`,
        );
      }
      const status = request.status === 0 ? undefined : jobStatuses.name(request.status);
      if (request.status !== 0 && !status)
        throw new RpcError(Status.INVALID_ARGUMENT, `status ${request.status} is not a job status`);
      const task = request.taskType === 0 ? undefined : taskTypes.name(request.taskType);
      if (request.taskType !== 0 && !task)
        throw new RpcError(Status.INVALID_ARGUMENT, `task_type ${request.taskType} is not a task type`);
      let page: Awaited<ReturnType<Store['listJobs']>>;
      try {
        page = await store.listJobs({
          limit: request.pageSize || 50,
          ...(status && { status }),
          ...(task && { task }),
          ...(request.pageToken && { cursor: request.pageToken }),
        });
      } catch (error) {
        if (request.pageToken) {
          throw new RpcError(
            Status.INVALID_ARGUMENT,
            'page_token is not one this sidecar issued; start from an empty page_token',
            { cause: error },
          );
        }
        throw error;
      }
      return { jobs: await jobsToProto(page.jobs), nextPageToken: page.nextCursor ?? '' };
    },

    async listEpochs(request) {
      checkJobId(request.jobId);
      await existing(request.jobId);
      return { epochs: (await store.listEpochs(request.jobId)).map(epochToProto) };
    },

    async getBestEpoch(request) {
      checkJobId(request.jobId);
      const { job } = await existing(request.jobId);
      const fresh = (await store.getJob(request.jobId)) ?? job;
      if (fresh.bestEpoch === undefined) return { primaryMetric: fresh.primaryMetric };
      const epoch = (await store.listEpochs(request.jobId)).find((e) => e.epoch === fresh.bestEpoch);
      return { primaryMetric: fresh.primaryMetric, ...(epoch && { epoch: epochToProto(epoch) }) };
    },

    async listBatchMetrics(request) {
      checkJobId(request.jobId);
      await existing(request.jobId);
      const blocks = await store.listBatchBlocks(request.jobId, request.epoch);
      return { blocks: blocks.map(blockToProto) };
    },

    async listArtifacts(request) {
      checkJobId(request.jobId);
      await existing(request.jobId);
      return { artifacts: (await store.listArtifacts(request.jobId)).map(artifactToProto) };
    },

    async getMetricCatalog(request) {
      if (request.taskType === 0) return { catalogs: listTaskCatalogs().map(catalogToProto) };
      const task = taskTypes.name(request.taskType);
      if (!task)
        throw new RpcError(Status.INVALID_ARGUMENT, `task_type ${request.taskType} is not a task type`);
      return { catalogs: [catalogToProto(getTaskCatalog(task))] };
    },

    async retryMlflowSync(request) {
      checkJobId(request.jobId);
      if (!mirror) {
        throw new RpcError(
          Status.FAILED_PRECONDITION,
          'MLflow is not configured on this sidecar: set MLFLOW_TRACKING_URI (and restart it) to mirror jobs',
        );
      }
      await existing(request.jobId);
      const retried = await store.retryOutboxNow(request.jobId, Date.now());
      if (retried > 0) {
        notice(`[${request.jobId}] MLflow: retrying ${retried} item(s) now (RetryMlflowSync)`);
        notify();
      }
      const job = (await store.getJob(request.jobId))!;
      return { retriedItems: BigInt(retried), job: (await jobsToProto([job]))[0]! };
    },
  };
}
