import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { decodeNumber } from '@training-callbacks/store/number-codec';
import { authHeader, type MlflowConfig, tlsConnectOptions } from './config.ts';
import { httpError, isParamConflict, MlflowError, transportError } from './errors.ts';
import { createHttpTransport, type HttpAnswer, type HttpTransport } from './http.ts';
import { MAX_KEY_LENGTH, MetricKeyMap, mlflowJsonReplacer, shortHash } from './names.ts';

/** MLflow's per-request log-batch limits (mlflow/utils/validation.py). */
export const LOG_BATCH_LIMITS = {
  metrics: 1000,
  paramsOrTags: 100,
  entities: 1000,
  /** Documented 1 MB request limit; OSS does not enforce it but proxies may. We stay well under. */
  bytes: 900_000,
} as const;
/** Longest param value current servers keep (longer is truncated by the server, or refused by old ones). */
export const MAX_PARAM_VALUE_LENGTH = 6000;
/** Longest run tag value every 2.x/3.x server accepts (3.x allows 8000). */
export const MAX_TAG_VALUE_LENGTH = 5000;
/** Run tag that identifies the job a run mirrors. */
export const JOB_ID_TAG = 'training_callbacks.job_id';
/** Prefix of the tags that record a param whose value changed on resume (params are write-once in MLflow). */
export const PARAM_CHANGED_TAG_PREFIX = 'training_callbacks.param_changed.';

export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';

export interface Experiment {
  experimentId: string;
  name: string;
  artifactLocation: string;
  lifecycleStage: 'active' | 'deleted' | string;
  tags: Record<string, string>;
}

export interface RunInfo {
  runId: string;
  experimentId: string;
  runName: string;
  status: RunStatus;
  startTime: number;
  endTime: number | undefined;
  artifactUri: string;
  lifecycleStage: string;
}

export interface Metric {
  key: string;
  /** NaN comes back as NaN; ±Infinity comes back clamped to ±1.7976931348623157e308 by MLflow's SQL store. */
  value: number;
  timestamp: number;
  step: number;
}

export interface Run {
  info: RunInfo;
  data: { metrics: Metric[]; params: Record<string, string>; tags: Record<string, string> };
}

export interface ArtifactFile {
  path: string;
  isDir: boolean;
  fileSize: number | undefined;
}

export interface ParamsResult {
  /** Params written now. */
  logged: number;
  /** Params already in the run with the same value. */
  unchanged: number;
  /** Params already in the run with another value: kept as they were, the new value went to a tag. */
  changed: Array<{ key: string; loggedValue: string; newValue: string; tag: string }>;
}

export interface EnsureRunOptions {
  jobId: string;
  experimentName: string;
  runName: string;
  startTimeMs: number;
  /** Tags set when the run is created (the job id tag is always added). */
  tags?: Record<string, string>;
  experimentTags?: Record<string, string>;
}

export interface EnsureRunResult {
  run: RunInfo;
  experimentId: string;
  /** True when this call created the run. */
  created: boolean;
}

export interface UploadArtifactOptions {
  /** The run's `artifact_uri` (`mlflow-artifacts:/<exp>/<run>/artifacts`). */
  artifactUri: string;
  /** File to upload (streamed, never read into memory). */
  localPath: string;
  /** Destination inside the run's artifacts, e.g. `weights/best.pt`. */
  artifactPath: string;
  /** Called as bytes leave, at most every 1 MiB and at the end. */
  onProgress?: (sentBytes: number, totalBytes: number) => void;
}

export interface MlflowClient {
  readonly trackingUri: string;
  /** `GET /version`. */
  version(): Promise<string>;
  /**
   * One cheap tracking call (`experiments/search`, one result) with a short time limit: resolves when
   * the server answers it, throws the `MlflowError` otherwise. The worker uses it to notice MLflow's
   * return during an outage without waiting out its backoff.
   */
  probe(timeoutMs?: number): Promise<void>;
  getExperimentByName(name: string): Promise<Experiment | undefined>;
  getExperiment(experimentId: string): Promise<Experiment>;
  /** Get-or-create, safe when several clients race; restores a soft-deleted experiment of that name. */
  ensureExperiment(name: string, tags?: Record<string, string>): Promise<Experiment>;
  deleteExperiment(experimentId: string): Promise<void>;
  /** `experiments/search`, all pages. */
  searchExperiments(opts?: {
    filter?: string;
    viewType?: 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';
  }): Promise<Experiment[]>;
  createRun(opts: {
    experimentId: string;
    runName: string;
    startTimeMs: number;
    tags?: Record<string, string>;
  }): Promise<RunInfo>;
  getRun(runId: string): Promise<Run>;
  searchRuns(opts: {
    experimentIds: string[];
    filter?: string;
    runViewType?: 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';
    maxResults?: number;
  }): Promise<Run[]>;
  deleteRun(runId: string): Promise<void>;
  /** The active runs tagged with the job id in an experiment, oldest first. */
  findRunsForJob(experimentId: string, jobId: string): Promise<RunInfo[]>;
  /** Exactly one run per job, across retries and crashes (see README, "Run identity"). */
  ensureRunForJob(opts: EnsureRunOptions): Promise<EnsureRunResult>;
  /** `runs/update`: status, end time (ms) and/or name. */
  updateRun(
    runId: string,
    update: { status?: RunStatus; endTimeMs?: number; runName?: string },
  ): Promise<void>;
  setTerminated(runId: string, status: RunStatus, endTimeMs: number): Promise<void>;
  /** One raw `runs/log-batch` request; the caller keeps to `LOG_BATCH_LIMITS`. */
  logBatch(
    runId: string,
    batch: {
      metrics?: Metric[];
      params?: Array<{ key: string; value: string }>;
      tags?: Array<{ key: string; value: string }>;
    },
  ): Promise<void>;
  /** Metrics (and tags, written after them) in as many log-batch requests as the limits need, in order. Returns the request count. */
  logMetrics(
    runId: string,
    metrics: readonly Metric[],
    tags?: Record<string, string>,
    options?: { concurrency?: number },
  ): Promise<number>;
  /** Params (write-once): only missing keys are sent, in chunks of ≤100, apart from metrics; a changed value becomes a tag. */
  logParams(runId: string, params: Record<string, string>): Promise<ParamsResult>;
  setTags(runId: string, tags: Record<string, string>): Promise<void>;
  /** Full history of one key, all pages. */
  getMetricHistory(runId: string, key: string): Promise<Metric[]>;
  listArtifacts(runId: string, path?: string): Promise<ArtifactFile[]>;
  /** Streams a file to the tracking server's artifact proxy (`PUT /api/2.0/mlflow-artifacts/artifacts/...`). */
  uploadArtifact(opts: UploadArtifactOptions): Promise<void>;
  downloadArtifact(artifactUri: string, artifactPath: string): Promise<Buffer>;
  /** Closes pooled connections. */
  close(): Promise<void>;
}

type Query = Record<string, string | number | boolean | undefined>;

interface RawExperiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage?: string;
  tags?: Array<{ key: string; value: string }>;
}
interface RawRunInfo {
  run_id: string;
  experiment_id: string;
  run_name?: string;
  status: RunStatus;
  start_time?: number;
  end_time?: number;
  artifact_uri?: string;
  lifecycle_stage?: string;
}
interface RawMetric {
  key: string;
  value: number | string;
  timestamp?: number;
  step?: number;
}
interface RawRun {
  info: RawRunInfo;
  data?: {
    metrics?: RawMetric[];
    params?: Array<{ key: string; value: string }>;
    tags?: Array<{ key: string; value: string }>;
  };
}

const kv = (list: Array<{ key: string; value: string }> | undefined): Record<string, string> =>
  Object.fromEntries((list ?? []).map((t) => [t.key, t.value ?? '']));
const toKv = (rec: Record<string, string> | undefined): Array<{ key: string; value: string }> =>
  Object.entries(rec ?? {}).map(([key, value]) => ({ key, value }));

function toExperiment(e: RawExperiment): Experiment {
  return {
    experimentId: e.experiment_id,
    name: e.name,
    artifactLocation: e.artifact_location ?? '',
    lifecycleStage: e.lifecycle_stage ?? 'active',
    tags: kv(e.tags),
  };
}
function toRunInfo(i: RawRunInfo): RunInfo {
  return {
    runId: i.run_id,
    experimentId: i.experiment_id,
    runName: i.run_name ?? '',
    status: i.status,
    startTime: i.start_time ?? 0,
    endTime: i.end_time,
    artifactUri: i.artifact_uri ?? '',
    lifecycleStage: i.lifecycle_stage ?? 'active',
  };
}
function toMetric(m: RawMetric): Metric {
  return { key: m.key, value: decodeNumber(m.value), timestamp: m.timestamp ?? 0, step: m.step ?? 0 };
}
function toRun(r: RawRun): Run {
  return {
    info: toRunInfo(r.info),
    data: {
      metrics: (r.data?.metrics ?? []).map(toMetric),
      params: kv(r.data?.params),
      tags: kv(r.data?.tags),
    },
  };
}

/** Job ids that can be quoted in a search filter as they are (anything else is compared client-side). */
const SAFE_FILTER_VALUE = /^[A-Za-z0-9_.:/ -]{1,200}$/;

function fitTagKey(key: string): string {
  return key.length <= MAX_KEY_LENGTH ? key : `${key.slice(0, MAX_KEY_LENGTH - 9)}_${shortHash(key)}`;
}

/** Encodes each segment of a relative artifact path; refuses absolute paths and `..`. */
function encodeArtifactPath(p: string): string {
  const segs = p.split('/').filter((s) => s !== '' && s !== '.');
  if (p.startsWith('/') || segs.length === 0 || segs.some((s) => s === '..')) {
    throw new MlflowError(`artifact path "${p}" must be relative, non-empty and without ".."`, {
      kind: 'config',
      retryable: false,
    });
  }
  return segs.map(encodeURIComponent).join('/');
}

/**
 * Turns a run's `artifact_uri` into the artifact proxy URL, as MLflow's `MlflowArtifactsRepository.resolve_uri`
 * does: `mlflow-artifacts:/7/<run>/artifacts` + tracking `http://h:5000` →
 * `http://h:5000/api/2.0/mlflow-artifacts/artifacts/7/<run>/artifacts`.
 */
export function resolveArtifactUrl(artifactUri: string, trackingUri: string): string {
  const tracking = new URL(trackingUri);
  if (artifactUri.startsWith('mlflow-artifacts:')) {
    const u = new URL(artifactUri);
    const host = u.host || tracking.host;
    const path = `${tracking.pathname}/api/2.0/mlflow-artifacts/artifacts/${u.pathname}`
      .replace(/\/+/g, '/')
      .replace(/\/$/, '');
    return `${tracking.protocol}//${host}${path}`;
  }
  if (/^https?:/.test(artifactUri) && artifactUri.includes('/api/2.0/mlflow-artifacts/artifacts/')) {
    return artifactUri.replace(/\/+$/, '');
  }
  throw new MlflowError(
    `the run's artifact root ${artifactUri} is not served by the tracking server's artifact proxy; only mlflow-artifacts: roots are supported (start the server with --serve-artifacts before the experiment is created)`,
    { kind: 'config', retryable: false },
  );
}

/** How one HTTP request to MLflow ended, for monitoring (a small fixed set). */
export type MlflowRequestOutcome = 'ok' | 'client_error' | 'server_error' | 'throttled' | 'unreachable';

export interface MlflowClientHooks {
  /** Called once per HTTP request with its outcome and duration (seconds). Must not throw. */
  onRequest?: (outcome: MlflowRequestOutcome, seconds: number) => void;
}

function outcomeOf(status: number): MlflowRequestOutcome {
  if (status === 429) return 'throttled';
  if (status >= 500) return 'server_error';
  if (status >= 400) return 'client_error';
  return 'ok';
}

/** Wraps a transport so every request reports its outcome and duration. */
function timedTransport(
  http: HttpTransport,
  onRequest: NonNullable<MlflowClientHooks['onRequest']>,
): HttpTransport {
  return {
    async send(url, options) {
      const started = performance.now();
      try {
        const answer = await http.send(url, options);
        onRequest(outcomeOf(answer.status), (performance.now() - started) / 1000);
        return answer;
      } catch (error) {
        onRequest('unreachable', (performance.now() - started) / 1000);
        throw error;
      }
    },
    close: () => http.close(),
  };
}

/** Creates a client for one tracking server. Plain HTTP(S) with keep-alive; no retries here (the sync worker owns them). */
export function createMlflowClient(config: MlflowConfig, hooks: MlflowClientHooks = {}): MlflowClient {
  const base = config.trackingUri.replace(/\/+$/, '');
  const auth = authHeader(config.auth);
  const timeoutMs = config.requestTimeoutMs ?? 120_000;
  const artifactIdleMs = config.artifactIdleTimeoutMs ?? 600_000;
  const transport = createHttpTransport(tlsConnectOptions(config.tls));
  const http = hooks.onRequest ? timedTransport(transport, hooks.onRequest) : transport;
  const codeOf = (e: unknown) => (e as { code?: unknown } | null | undefined)?.code;

  function headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { 'user-agent': 'training-callbacks-mlflow-bridge', ...extra };
    if (auth) h.authorization = auth;
    return h;
  }

  async function call<T>(
    method: 'GET' | 'POST',
    endpoint: string,
    opts: { query?: Query; body?: unknown; timeoutMs?: number } = {},
  ) {
    let url = `${base}/api/2.0/mlflow/${endpoint}`;
    if (opts.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(opts.query)) if (v !== undefined) q.append(k, String(v));
      url += `?${q}`;
    }
    let res: HttpAnswer;
    try {
      res = await http.send(url, {
        method,
        headers: headers(method === 'POST' ? { 'content-type': 'application/json' } : {}),
        body: method === 'POST' ? JSON.stringify(opts.body ?? {}, mlflowJsonReplacer) : undefined,
        timeoutMs: opts.timeoutMs ?? timeoutMs,
      });
    } catch (e) {
      throw transportError(method, endpoint, e, codeOf(e) === 'REQUEST_TIMEOUT');
    }
    const text = res.body.toString();
    if (res.status < 200 || res.status >= 300) {
      throw httpError(method, endpoint, res.status, text, res.headers['retry-after']);
    }
    if (text === '') return {} as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new MlflowError(
        `MLflow ${method} ${endpoint} answered HTTP ${res.status} with a body that is not JSON (is MLFLOW_TRACKING_URI an MLflow server?): ${text.slice(0, 200)}`,
        { kind: 'config', retryable: false, method, endpoint, status: res.status },
      );
    }
  }

  const isNotFound = (e: unknown) => e instanceof MlflowError && e.status === 404;
  const isAlreadyExists = (e: unknown) =>
    e instanceof MlflowError && e.errorCode === 'RESOURCE_ALREADY_EXISTS';

  const client: MlflowClient = {
    trackingUri: base,

    async version() {
      let res: HttpAnswer;
      try {
        res = await http.send(`${base}/version`, { method: 'GET', headers: headers(), timeoutMs });
      } catch (e) {
        throw transportError('GET', 'version', e, false);
      }
      const text = res.body.toString();
      if (res.status !== 200) throw httpError('GET', 'version', res.status, text, res.headers['retry-after']);
      return text.trim();
    },

    async probe(probeTimeoutMs = 5000) {
      await call('GET', 'experiments/search', { query: { max_results: 1 }, timeoutMs: probeTimeoutMs });
    },

    async getExperimentByName(name) {
      try {
        const r = await call<{ experiment: RawExperiment }>('GET', 'experiments/get-by-name', {
          query: { experiment_name: name },
        });
        return toExperiment(r.experiment);
      } catch (e) {
        if (isNotFound(e)) return undefined;
        throw e;
      }
    },

    async getExperiment(experimentId) {
      const r = await call<{ experiment: RawExperiment }>('GET', 'experiments/get', {
        query: { experiment_id: experimentId },
      });
      return toExperiment(r.experiment);
    },

    async ensureExperiment(name, tags) {
      for (let attempt = 0; attempt < 3; attempt++) {
        const found = await client.getExperimentByName(name);
        if (found) {
          if (found.lifecycleStage === 'deleted') {
            await call('POST', 'experiments/restore', { body: { experiment_id: found.experimentId } });
            return { ...found, lifecycleStage: 'active' };
          }
          return found;
        }
        try {
          const r = await call<{ experiment_id: string }>('POST', 'experiments/create', {
            body: { name, tags: toKv(tags) },
          });
          return client.getExperiment(r.experiment_id);
        } catch (e) {
          if (!isAlreadyExists(e)) throw e;
          // Another client created it between our get and create: read it again.
        }
      }
      throw new MlflowError(`experiment "${name}" neither exists nor can be created`, {
        kind: 'http',
        retryable: true,
      });
    },

    async searchExperiments({ filter, viewType } = {}) {
      const out: Experiment[] = [];
      let pageToken: string | undefined;
      do {
        const r = await call<{ experiments?: RawExperiment[]; next_page_token?: string }>(
          'POST',
          'experiments/search',
          {
            body: { max_results: 1000, filter, view_type: viewType ?? 'ACTIVE_ONLY', page_token: pageToken },
          },
        );
        out.push(...(r.experiments ?? []).map(toExperiment));
        pageToken = r.next_page_token || undefined;
      } while (pageToken);
      return out;
    },

    async deleteExperiment(experimentId) {
      await call('POST', 'experiments/delete', { body: { experiment_id: experimentId } });
    },

    async createRun({ experimentId, runName, startTimeMs, tags }) {
      const r = await call<{ run: RawRun }>('POST', 'runs/create', {
        body: { experiment_id: experimentId, run_name: runName, start_time: startTimeMs, tags: toKv(tags) },
      });
      return toRunInfo(r.run.info);
    },

    async getRun(runId) {
      const r = await call<{ run: RawRun }>('GET', 'runs/get', { query: { run_id: runId } });
      return toRun(r.run);
    },

    async searchRuns({ experimentIds, filter, runViewType, maxResults }) {
      const out: Run[] = [];
      let pageToken: string | undefined;
      do {
        const r = await call<{ runs?: RawRun[]; next_page_token?: string }>('POST', 'runs/search', {
          body: {
            experiment_ids: experimentIds,
            filter: filter ?? '',
            run_view_type: runViewType ?? 'ACTIVE_ONLY',
            max_results: maxResults ?? 1000,
            page_token: pageToken,
          },
        });
        out.push(...(r.runs ?? []).map(toRun));
        pageToken = r.next_page_token || undefined;
      } while (pageToken && (maxResults === undefined || out.length < maxResults));
      return out;
    },

    async deleteRun(runId) {
      await call('POST', 'runs/delete', { body: { run_id: runId } });
    },

    async findRunsForJob(experimentId, jobId) {
      // A server-side filter when the id is safe to quote in MLflow's filter language; the tag is
      // compared here as well, so an unusual id only costs a longer listing of its experiment.
      const filter = SAFE_FILTER_VALUE.test(jobId) ? `tags.\`${JOB_ID_TAG}\` = '${jobId}'` : undefined;
      const runs = (
        await client.searchRuns({ experimentIds: [experimentId], filter, runViewType: 'ACTIVE_ONLY' })
      )
        .filter((r) => r.data.tags[JOB_ID_TAG] === jobId)
        .map((r) => r.info);
      return runs.sort(
        (a, b) => a.startTime - b.startTime || (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0),
      );
    },

    async ensureRunForJob({ jobId, experimentName, runName, startTimeMs, tags, experimentTags }) {
      const experiment = await client.ensureExperiment(experimentName, experimentTags);
      const experimentId = experiment.experimentId;
      // A run of an earlier attempt: created, but its id never stored (the answer was lost, or the
      // process died between runs/create and saving the id).
      const existing = (await client.findRunsForJob(experimentId, jobId))[0];
      if (existing) return { run: existing, experimentId, created: false };
      const run = await client.createRun({
        experimentId,
        runName,
        startTimeMs,
        tags: { ...tags, [JOB_ID_TAG]: jobId },
      });
      return { run, experimentId, created: true };
    },

    async updateRun(runId, { status, endTimeMs, runName }) {
      await call('POST', 'runs/update', {
        body: { run_id: runId, status, end_time: endTimeMs, run_name: runName },
      });
    },

    async setTerminated(runId, status, endTimeMs) {
      await client.updateRun(runId, { status, endTimeMs });
    },

    async logBatch(runId, { metrics, params, tags }) {
      await call('POST', 'runs/log-batch', {
        body: {
          run_id: runId,
          metrics: metrics?.map((m) => ({
            key: m.key,
            value: m.value,
            timestamp: m.timestamp,
            step: m.step,
          })),
          params,
          tags,
        },
      });
    },

    async logMetrics(runId, metrics, tags, options = {}) {
      // Metric points are independent (MLflow orders a history by step and keeps the latest by
      // (step, timestamp, value)), so chunks may be in flight together; tags still go after them all.
      const concurrency = Math.max(1, options.concurrency ?? 1);
      let requests = 0;
      const chunks: Metric[][] = [];
      let chunk: Metric[] = [];
      let bytes = 0;
      for (const m of metrics) {
        const size = m.key.length + 90;
        if (chunk.length >= LOG_BATCH_LIMITS.metrics || bytes + size > LOG_BATCH_LIMITS.bytes) {
          chunks.push(chunk);
          chunk = [];
          bytes = 0;
        }
        chunk.push(m);
        bytes += size;
      }
      if (chunk.length) chunks.push(chunk);
      let next = 0;
      let failed: unknown;
      // Settle every request before reporting a failure, so nothing is still in flight when the caller retries.
      await Promise.allSettled(
        Array.from({ length: Math.min(concurrency, chunks.length) }, async () => {
          while (next < chunks.length && failed === undefined) {
            const c = chunks[next++]!;
            try {
              await client.logBatch(runId, { metrics: c });
              requests++;
            } catch (e) {
              failed ??= e;
            }
          }
        }),
      );
      if (failed !== undefined) throw failed;
      const tagList = toKv(tags).map((t) => ({
        key: fitTagKey(t.key),
        value: t.value.slice(0, MAX_TAG_VALUE_LENGTH),
      }));
      for (let i = 0; i < tagList.length; i += LOG_BATCH_LIMITS.paramsOrTags) {
        await client.logBatch(runId, { tags: tagList.slice(i, i + LOG_BATCH_LIMITS.paramsOrTags) });
        requests++;
      }
      return requests;
    },

    async setTags(runId, tags) {
      await client.logMetrics(runId, [], tags);
    },

    async logParams(runId, params) {
      // Sanitised keys (unique), values cut to what the server keeps, so the comparison below is exact.
      const keys = new MetricKeyMap();
      const wanted = new Map<string, string>();
      for (const k of Object.keys(params).sort()) {
        wanted.set(keys.keyFor(k), String(params[k]).slice(0, MAX_PARAM_VALUE_LENGTH));
      }
      for (let attempt = 0; ; attempt++) {
        const existing = (await client.getRun(runId)).data.params;
        const result: ParamsResult = { logged: 0, unchanged: 0, changed: [] };
        const missing: Array<{ key: string; value: string }> = [];
        for (const [key, value] of wanted) {
          const old = existing[key];
          if (old === undefined) missing.push({ key, value });
          else if (old === value) result.unchanged++;
          else
            result.changed.push({
              key,
              loggedValue: old,
              newValue: value,
              tag: fitTagKey(PARAM_CHANGED_TAG_PREFIX + key),
            });
        }
        try {
          for (let i = 0; i < missing.length; i += LOG_BATCH_LIMITS.paramsOrTags) {
            await client.logBatch(runId, { params: missing.slice(i, i + LOG_BATCH_LIMITS.paramsOrTags) });
            result.logged += Math.min(LOG_BATCH_LIMITS.paramsOrTags, missing.length - i);
          }
        } catch (e) {
          // Someone logged one of these keys with another value since we read the run: read again, once.
          if (isParamConflict(e) && attempt === 0) continue;
          throw e;
        }
        if (result.changed.length) {
          await client.setTags(runId, Object.fromEntries(result.changed.map((c) => [c.tag, c.newValue])));
        }
        return result;
      }
    },

    async getMetricHistory(runId, key) {
      const out: Metric[] = [];
      let pageToken: string | undefined;
      do {
        const r = await call<{ metrics?: RawMetric[]; next_page_token?: string }>(
          'GET',
          'metrics/get-history',
          {
            query: { run_id: runId, metric_key: key, max_results: 25000, page_token: pageToken },
          },
        );
        out.push(...(r.metrics ?? []).map(toMetric));
        pageToken = r.next_page_token || undefined;
      } while (pageToken);
      return out;
    },

    async listArtifacts(runId, path) {
      const out: ArtifactFile[] = [];
      let pageToken: string | undefined;
      do {
        const r = await call<{
          files?: Array<{ path: string; is_dir?: boolean; file_size?: number }>;
          next_page_token?: string;
        }>('GET', 'artifacts/list', { query: { run_id: runId, path, page_token: pageToken } });
        out.push(...(r.files ?? []).map((f) => ({ path: f.path, isDir: !!f.is_dir, fileSize: f.file_size })));
        pageToken = r.next_page_token || undefined;
      } while (pageToken);
      return out;
    },

    async uploadArtifact({ artifactUri, localPath, artifactPath, onProgress }) {
      const url = `${resolveArtifactUrl(artifactUri, base)}/${encodeArtifactPath(artifactPath)}`;
      const endpoint = `mlflow-artifacts/artifacts/.../${artifactPath}`;
      let total: number;
      try {
        total = (await stat(localPath)).size;
      } catch (e) {
        throw new MlflowError(`artifact file ${localPath} cannot be read: ${(e as Error).message}`, {
          kind: 'config',
          retryable: false,
          cause: e,
        });
      }
      let sent = 0;
      let reported = 0;
      // A file that changes size while it is sent fails the upload (never more or fewer bytes than announced).
      const mismatch = () => {
        const message = `${localPath} changed while it was sent (${sent} bytes, ${total} announced)`;
        return Object.assign(new Error(message), { code: 'CONTENT_LENGTH_MISMATCH' });
      };
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          sent += chunk.length;
          if (sent > total) return cb(mismatch());
          if (onProgress && (sent - reported >= 1 << 20 || sent === total)) {
            reported = sent;
            onProgress(sent, total);
          }
          cb(null, chunk);
        },
        flush(cb) {
          cb(sent === total ? null : mismatch());
        },
      });
      const source = createReadStream(localPath);
      source.on('error', (e) => counter.destroy(e));
      source.pipe(counter);
      let res: HttpAnswer;
      try {
        res = await http.send(url, {
          method: 'PUT',
          headers: headers({ 'content-type': 'application/octet-stream', 'content-length': String(total) }),
          body: counter,
          idleMs: artifactIdleMs,
        });
      } catch (e) {
        const code = codeOf(e);
        throw transportError('PUT', endpoint, e, typeof code === 'string' && /TIMEOUT/.test(code));
      } finally {
        // Ended already unless the request failed or the server answered before the end of the file.
        source.destroy();
      }
      if (res.status < 200 || res.status >= 300) {
        throw httpError('PUT', endpoint, res.status, res.body.toString(), res.headers['retry-after']);
      }
      if (total === 0) onProgress?.(0, 0);
    },

    async downloadArtifact(artifactUri, artifactPath) {
      const url = `${resolveArtifactUrl(artifactUri, base)}/${encodeArtifactPath(artifactPath)}`;
      let res: HttpAnswer;
      try {
        res = await http.send(url, { method: 'GET', headers: headers(), idleMs: artifactIdleMs });
      } catch (e) {
        throw transportError('GET', `mlflow-artifacts/artifacts/.../${artifactPath}`, e, false);
      }
      const buf = res.body;
      if (res.status !== 200) {
        throw httpError(
          'GET',
          `mlflow-artifacts/artifacts/.../${artifactPath}`,
          res.status,
          buf.toString(),
          undefined,
        );
      }
      return buf;
    },

    async close() {
      await http.close();
    },
  };
  return client;
}
