import { decodeNumber } from '@training-callbacks/store/number-codec';
import { JOB_ID_TAG, LOG_BATCH_LIMITS, type Metric, type MlflowClient } from './client.ts';
import { MlflowError } from './errors.ts';
import { MAX_KEY_LENGTH, MetricKeyMap } from './names.ts';
import type { MetricSourcesPayload, MlflowJobMirror, MlflowOutbox, OutboxItem } from './outbox.ts';

export const DEFAULT_RETRY_HORIZON_MS = 7 * 24 * 3600 * 1000;
/** Prefix of the run tags that name the reported metric behind a renamed MLflow key. */
export const METRIC_NAME_TAG_PREFIX = 'training_callbacks.metric_name.';
/** Prefix of the run tags that name what the trainer reported behind a key the producer renamed. */
export const REPORTED_AS_TAG_PREFIX = 'training_callbacks.reported_as.';
/** Prefix of the run tags that say how a key's values were converted from the reported unit. */
export const UNIT_TAG_PREFIX = 'training_callbacks.unit.';
/** Prefix of final metrics. */
export const FINAL_PREFIX = 'final_';
/** What the parked error of a job whose run vanished says to do, unless the caller words it. */
export const DEFAULT_RUN_GONE_HINT =
  "restore the run in MLflow and retry the job's sync, or re-mirror the job (a job_begun with `remirror`) to copy it whole into a new run";
/** `errorCode` of the error for a run that is still in MLflow but deleted. */
const RUN_DELETED = 'RUN_DELETED';

export interface BackoffOptions {
  /** First retry delay (default 1 s). */
  initialMs?: number;
  /** Largest delay (default 5 min). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Fraction of the delay that is randomised: delay × (1 − jitter × random) (default 0.5). */
  jitter?: number;
}

export type SyncEvent =
  | { type: 'delivered'; jobId: string; kind: OutboxItem['kind']; items: number; points: number }
  | { type: 'retry'; jobId: string; itemId: number; attempts: number; delayMs: number; error: string }
  | { type: 'parked'; jobId: string; itemId: number; error: string }
  | { type: 'warning'; jobId: string; message: string }
  /** A probe found MLflow answering again; `jobs` jobs that waited out a backoff are retried now. */
  | { type: 'reachable'; jobs: number }
  | { type: 'artifact_progress'; jobId: string; artifactPath: string; sentBytes: number; totalBytes: number };

export interface SyncWorkerOptions {
  client: MlflowClient;
  outbox: MlflowOutbox;
  /** How long a failing item is retried (from its receipt) before it is parked (default 7 days). */
  retryHorizonMs?: number;
  backoff?: BackoffOptions;
  /** Upper bound on a server's Retry-After (default 1 h). */
  maxRetryAfterMs?: number;
  /** How often an idle worker looks for work it was not told about (default 1 s). */
  pollIntervalMs?: number;
  /**
   * While a job waits out its backoff after MLflow was unreachable (connection failures, time-outs,
   * 502/503/504 without Retry-After), the worker probes MLflow this often (default 5 s) with one cheap
   * request and retries those jobs at once when it answers: catch-up starts within about this interval
   * of MLflow's return, however long the backoff has grown. 0 turns probing off.
   */
  probeIntervalMs?: number;
  /** Time limit of one probe (default 5 s). */
  probeTimeoutMs?: number;
  /**
   * How long an idle worker waits after a `notify()` before it drains (default 0). A few tens of
   * milliseconds fold the items of many fast RPCs into one log-batch call and keep the worker's
   * database reads off the RPCs' hot path.
   */
  notifyDelayMs?: number;
  /** Jobs synced in parallel (default 2); items of one job are always sent in order, one request at a time. */
  concurrency?: number;
  /** Most metric points folded into one drain step (sent as log-batch requests of ≤1000; default 10 000). */
  maxPointsPerStep?: number;
  /** Log-batch requests of one drain step in flight together (default 1). Steps of a job stay in order. */
  requestConcurrency?: number;
  /**
   * Appended to the parked error of a job whose run vanished (MLflow answers that it does not exist, or
   * that it was deleted): what the operator can do. Default `DEFAULT_RUN_GONE_HINT`.
   */
  runGoneHint?: string;
  /** MLflow experiment name of a job (default `job_<jobId>`). */
  experimentName?: (jobId: string) => string;
  /** Every delivery, retry, parking, warning and artifact progress. */
  onEvent?: (event: SyncEvent) => void;
  now?: () => number;
  random?: () => number;
}

export interface SyncWorker {
  /** Runs in the background until `stop()`. */
  start(): void;
  /** New items were enqueued: look now instead of at the next poll. */
  notify(): void;
  /** Stops after the requests in flight. */
  stop(): Promise<void>;
  /** One pass over the jobs that are due; returns the number of items delivered. */
  drainOnce(): Promise<number>;
  /** Drains (waiting out backoffs) until no job has a pending item that is not parked. */
  runUntilIdle(opts?: { timeoutMs?: number }): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The run tag that holds a lost job's verdict (and, after a revival, that it was revived). */
export const END_CAUSE_TAG = 'training_callbacks.end_cause';

const METRIC_KINDS = new Set<OutboxItem['kind']>(['epoch_metrics', 'batch_metrics', 'final_metrics']);

/** MLflow says the run is not there (any more): the backend was reset or restored, or the run deleted. */
function isRunGone(e: MlflowError): boolean {
  if (e.errorCode === RUN_DELETED) return true;
  if (e.status === 404 && e.errorCode === 'RESOURCE_DOES_NOT_EXIST') return /\brun\b/i.test(e.message);
  return e.status === 400 && /must be in the 'active' state/.test(e.message);
}

/** A failure that says MLflow (or the way to it) is down, rather than that a request was wrong. */
function isUnreachable(e: MlflowError): boolean {
  if (e.retryAfterMs !== undefined) return false;
  if (e.kind === 'network' || e.kind === 'timeout') return true;
  return e.kind === 'http' && (e.status === 502 || e.status === 503 || e.status === 504);
}

function pointsOf(item: OutboxItem): number {
  switch (item.kind) {
    case 'epoch_metrics':
    case 'final_metrics':
      return Object.keys(item.payload.metrics).length;
    case 'batch_metrics':
      return item.payload.values.length;
    default:
      return 0;
  }
}

export function createSyncWorker(options: SyncWorkerOptions): SyncWorker {
  const { client, outbox } = options;
  const horizon = options.retryHorizonMs ?? DEFAULT_RETRY_HORIZON_MS;
  const initialMs = options.backoff?.initialMs ?? 1000;
  const maxMs = options.backoff?.maxMs ?? 300_000;
  const factor = options.backoff?.factor ?? 2;
  const jitter = options.backoff?.jitter ?? 0.5;
  const maxRetryAfter = options.maxRetryAfterMs ?? 3_600_000;
  const pollMs = options.pollIntervalMs ?? 1000;
  const probeIntervalMs = Math.max(0, options.probeIntervalMs ?? 5000);
  const probeTimeoutMs = options.probeTimeoutMs ?? 5000;
  const notifyDelayMs = Math.max(0, options.notifyDelayMs ?? 0);
  const concurrency = Math.max(1, options.concurrency ?? 2);
  const maxPoints = options.maxPointsPerStep ?? 10_000;
  const requestConcurrency = Math.max(1, options.requestConcurrency ?? 1);
  const experimentName = options.experimentName ?? ((jobId: string) => `job_${jobId}`);
  const runGoneHint = options.runGoneHint ?? DEFAULT_RUN_GONE_HINT;
  const emit = options.onEvent ?? (() => undefined);
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;

  let running = false;
  let loop: Promise<void> | undefined;
  /** Shortens the current sleep to at most `ms`. */
  let wake: ((ms: number) => void) | undefined;
  /** Set by notify(); cleared when a drain starts, so a notify during a drain is never lost. */
  let notified = false;
  const busy = new Set<string>();
  /** Jobs waiting out a backoff because MLflow was unreachable: their head item, to retry when a probe answers. */
  const unreachable = new Map<string, { itemId: number; attempts: number; lastError: string }>();
  let probing = false;
  let lastProbeAt = 0;

  function backoff(attempts: number): number {
    const base = Math.min(maxMs, initialMs * factor ** Math.max(0, attempts - 1));
    return Math.round(base * (1 - jitter * random()));
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let until = Date.now() + Math.max(0, ms);
      let t = setTimeout(done, Math.max(0, ms));
      function done() {
        clearTimeout(t);
        wake = undefined;
        resolve();
      }
      wake = (shorter: number) => {
        if (Date.now() + shorter >= until) return;
        clearTimeout(t);
        until = Date.now() + shorter;
        t = setTimeout(done, Math.max(0, shorter));
      };
    });
  }

  function noRun(jobId: string): MlflowError {
    return new MlflowError(
      `job ${jobId} has no MLflow run: its job_begun item was never delivered (enqueue job_begun before other items)`,
      { kind: 'config', retryable: false },
    );
  }

  async function onJobBegun(
    jobId: string,
    item: Extract<OutboxItem, { kind: 'job_begun' }>,
    mirror: MlflowJobMirror,
  ) {
    const p = item.payload;
    const tags: Record<string, string> = {
      [JOB_ID_TAG]: jobId,
      job_id: jobId,
      task: p.task,
      framework: p.framework,
      model: p.modelName,
      'mlflow.source.name': 'training-callbacks',
      ...p.tags,
    };
    let status: string;
    if (p.remirror) {
      // The whole job follows. What the mirror remembers may be stale (a step of the old queue that was
      // in flight during the re-mirror may have saved it since): start from nothing.
      const previous = mirror.runId;
      for (const k of Object.keys(mirror) as Array<keyof MlflowJobMirror>) delete mirror[k];
      if (previous)
        emit({ type: 'warning', jobId, message: `re-mirroring the job (its run was ${previous})` });
    }
    if (mirror.runId) {
      const run = await client.getRun(mirror.runId);
      if (run.info.lifecycleStage !== 'active') {
        throw new MlflowError(`job ${jobId}: its MLflow run ${mirror.runId} was deleted`, {
          kind: 'config',
          retryable: false,
          errorCode: RUN_DELETED,
        });
      }
      status = run.info.status;
    } else {
      const r = await client.ensureRunForJob({
        jobId,
        experimentName: experimentName(jobId),
        runName: p.runName ?? `job_${jobId}`,
        startTimeMs: p.startTimeMs,
        tags,
        experimentTags: { [JOB_ID_TAG]: jobId },
      });
      mirror.runId = r.run.runId;
      mirror.experimentId = r.experimentId;
      mirror.artifactUri = r.run.artifactUri;
      await outbox.saveMirror(jobId, mirror);
      status = r.run.status;
      if (p.remirror) {
        emit({
          type: 'warning',
          jobId,
          message: r.created
            ? `re-mirror: created run ${r.run.runId}; the whole job follows`
            : `re-mirror: the job's run ${r.run.runId} is in MLflow; filling it up (points it has are dropped by MLflow)`,
        });
      }
    }
    // Resumed (or begun again after an end): the run continues.
    if (status !== 'RUNNING') await client.updateRun(mirror.runId, { status: 'RUNNING' });
    // The name as a tag too: on a run that exists already (a resume with another name, a re-mirror
    // that found the run) setting `mlflow.runName` is how MLflow renames it.
    await client.setTags(mirror.runId, p.runName ? { ...tags, 'mlflow.runName': p.runName } : tags);
    const params = await client.logParams(mirror.runId, p.params);
    for (const c of params.changed) {
      emit({
        type: 'warning',
        jobId,
        message: `param ${c.key} was logged as "${c.loggedValue}" and is now "${c.newValue}"; MLflow params are write-once, so the new value is in tag ${c.tag}`,
      });
    }
  }

  async function sendMetrics(jobId: string, group: OutboxItem[], mirror: MlflowJobMirror): Promise<number> {
    const runId = mirror.runId;
    if (!runId) throw noRun(jobId);
    const keys = new MetricKeyMap(mirror.metricKeys);
    const metrics: Metric[] = [];
    for (const it of group) {
      if (it.kind === 'epoch_metrics') {
        const { epoch, timestampMs } = it.payload;
        for (const [name, v] of Object.entries(it.payload.metrics)) {
          metrics.push({
            key: keys.keyFor(name),
            value: decodeNumber(v),
            timestamp: timestampMs,
            step: epoch,
          });
        }
      } else if (it.kind === 'final_metrics') {
        const { step, timestampMs } = it.payload;
        for (const [name, v] of Object.entries(it.payload.metrics)) {
          metrics.push({
            key: keys.keyFor(FINAL_PREFIX + name),
            value: decodeNumber(v),
            timestamp: timestampMs,
            step,
          });
        }
      } else if (it.kind === 'batch_metrics') {
        const { names, steps, values, timestampMs } = it.payload;
        const cols = names.map((n) => keys.keyFor(n));
        for (let row = 0; row < steps.length; row++) {
          for (let c = 0; c < cols.length; c++) {
            const v = values[row * cols.length + c];
            if (v === undefined) continue;
            metrics.push({
              key: cols[c]!,
              value: decodeNumber(v),
              timestamp: timestampMs,
              step: steps[row]!,
            });
          }
        }
      }
    }
    const added = keys.takeAdded();
    const tags: Record<string, string> = {};
    if (added.length) {
      mirror.metricKeys = keys.toJSON();
      await outbox.saveMirror(jobId, mirror);
      for (const [original, key] of added) {
        if (original === key) continue;
        const tag = METRIC_NAME_TAG_PREFIX + key;
        if (tag.length <= MAX_KEY_LENGTH) tags[tag] = original;
      }
      for (const c of keys.collisions) {
        emit({
          type: 'warning',
          jobId,
          message: `metric "${c.original}" would be "${c.wanted}" in MLflow, taken by "${c.takenBy}"; logged as "${c.assigned}"`,
        });
      }
    }
    await client.logMetrics(runId, metrics, tags, { concurrency: requestConcurrency });
    return metrics.length;
  }

  /** Tags for renamed and rescaled metrics (under the keys their points get: same key map). */
  async function recordSources(
    jobId: string,
    payload: MetricSourcesPayload,
    mirror: MlflowJobMirror,
  ): Promise<void> {
    if (!mirror.runId) throw noRun(jobId);
    const keys = new MetricKeyMap(mirror.metricKeys);
    const tags: Record<string, string> = {};
    for (const { name, reported, scale } of payload.sources) {
      const key = keys.keyFor(name);
      if (name !== key) tags[METRIC_NAME_TAG_PREFIX + key] = name;
      if (reported !== key) tags[REPORTED_AS_TAG_PREFIX + key] = reported;
      if (scale !== 1) {
        tags[UNIT_TAG_PREFIX + key] =
          scale === 0.01
            ? `reported in percent (${reported}), stored as a fraction: ×0.01`
            : `reported values ×${scale}`;
      }
    }
    if (keys.takeAdded().length) {
      mirror.metricKeys = keys.toJSON();
      await outbox.saveMirror(jobId, mirror);
    }
    for (const t of Object.keys(tags)) if (t.length > MAX_KEY_LENGTH) delete tags[t];
    await client.setTags(mirror.runId, tags);
  }

  async function runInfo(
    jobId: string,
    mirror: MlflowJobMirror,
  ): Promise<{ runId: string; artifactUri: string }> {
    if (!mirror.runId) throw noRun(jobId);
    if (!mirror.artifactUri) {
      mirror.artifactUri = (await client.getRun(mirror.runId)).info.artifactUri;
      await outbox.saveMirror(jobId, mirror);
    }
    return { runId: mirror.runId, artifactUri: mirror.artifactUri };
  }

  async function fail(head: OutboxItem, e: unknown): Promise<void> {
    unreachable.delete(head.jobId);
    // Anything that is not an MlflowError (the outbox's database was busy, a bug) is retried like a network
    // error, until the horizon: parking would need an operator for what is usually transient.
    const err =
      e instanceof MlflowError
        ? e
        : new MlflowError(`unexpected failure: ${(e as Error)?.message ?? String(e)}`, {
            kind: 'network',
            retryable: true,
          });
    const t = now();
    if (err.retryable) {
      const attempts = head.attempts + 1;
      if (t - head.createdAtMs >= horizon) {
        const error = `gave up after ${attempts} attempts over ${Math.round((t - head.createdAtMs) / 1000)} s (retry horizon ${Math.round(horizon / 1000)} s): ${err.message}`;
        await outbox.park(head.id, error);
        emit({ type: 'parked', jobId: head.jobId, itemId: head.id, error });
        return;
      }
      const delayMs =
        err.retryAfterMs !== undefined
          ? Math.min(maxRetryAfter, Math.max(err.retryAfterMs, 0))
          : backoff(attempts);
      await outbox.reschedule(head.id, { attempts, nextAttemptAtMs: t + delayMs, lastError: err.message });
      if (e instanceof MlflowError && isUnreachable(e) && probeIntervalMs > 0 && delayMs > probeIntervalMs) {
        unreachable.set(head.jobId, { itemId: head.id, attempts, lastError: err.message });
      }
      emit({ type: 'retry', jobId: head.jobId, itemId: head.id, attempts, delayMs, error: err.message });
    } else {
      const error = isRunGone(err) ? `${err.message} — the run is gone: ${runGoneHint}` : err.message;
      await outbox.park(head.id, error);
      emit({ type: 'parked', jobId: head.jobId, itemId: head.id, error });
    }
  }

  /**
   * One probe while jobs wait because MLflow was unreachable: when it answers, their head items are due
   * now (attempts kept, so a relapse backs off further) and the loop wakes. Never awaited by the loop.
   */
  function maybeProbe(): void {
    if (probing || unreachable.size === 0 || !running) return;
    const t = now();
    if (t - lastProbeAt < probeIntervalMs) return;
    probing = true;
    lastProbeAt = t;
    client
      .probe(probeTimeoutMs)
      .then(
        async () => {
          const waiting = [...unreachable];
          unreachable.clear();
          for (const [, w] of waiting) {
            // An item delivered or parked meanwhile is gone or no longer the head: rescheduling it is harmless.
            await outbox.reschedule(w.itemId, {
              attempts: w.attempts,
              nextAttemptAtMs: now(),
              lastError: w.lastError,
            });
          }
          emit({ type: 'reachable', jobs: waiting.length });
          wake?.(0);
        },
        () => undefined,
      )
      .catch((e: unknown) => emit({ type: 'warning', jobId: '', message: `probe: ${(e as Error).message}` }))
      .finally(() => {
        probing = false;
      });
  }

  /** Delivers the head item of a job (with the metric items right behind it). Returns items delivered. */
  async function step(jobId: string): Promise<number> {
    const items = await outbox.peek(jobId, 500);
    const head = items[0];
    if (!head || head.parkedError !== null || head.nextAttemptAtMs > now()) return 0;
    const mirror: MlflowJobMirror = (await outbox.getMirror(jobId)) ?? {};
    try {
      if (METRIC_KINDS.has(head.kind)) {
        const group: OutboxItem[] = [];
        let points = 0;
        for (const it of items) {
          if (!METRIC_KINDS.has(it.kind) || it.parkedError !== null) break;
          if (group.length > 0 && points + pointsOf(it) > maxPoints) break;
          group.push(it);
          points += pointsOf(it);
        }
        // Full log-batch requests only: the items that would make a last, partial request wait for the
        // next step (sent right after, with whatever arrived meanwhile). Fewer requests for the same
        // points; MLflow's cost is mostly per request. A group under one request goes as it is.
        const perRequest = LOG_BATCH_LIMITS.metrics;
        if (points > perRequest && points % perRequest !== 0) {
          const target = Math.floor(points / perRequest) * perRequest;
          while (group.length > 1 && points > target) points -= pointsOf(group.pop()!);
        }
        const sent = await sendMetrics(jobId, group, mirror);
        unreachable.delete(jobId);
        await outbox.complete(group.map((i) => i.id));
        emit({ type: 'delivered', jobId, kind: head.kind, items: group.length, points: sent });
        return group.length;
      }
      switch (head.kind) {
        case 'job_begun':
          await onJobBegun(jobId, head, mirror);
          break;
        case 'job_ended': {
          if (!mirror.runId) throw noRun(jobId);
          const { errorMessage, endCause } = head.payload;
          if (errorMessage || endCause) {
            await client.setTags(mirror.runId, {
              ...(errorMessage && { 'training_callbacks.error': errorMessage }),
              ...(endCause && { [END_CAUSE_TAG]: endCause }),
            });
          }
          await client.setTerminated(mirror.runId, head.payload.status, head.payload.endTimeMs);
          break;
        }
        case 'job_revived': {
          if (!mirror.runId) throw noRun(jobId);
          await client.setTags(mirror.runId, { [END_CAUSE_TAG]: head.payload.endCause });
          await client.updateRun(mirror.runId, { status: 'RUNNING' });
          break;
        }
        case 'metric_sources':
          await recordSources(jobId, head.payload, mirror);
          break;
        case 'artifact': {
          const { artifactUri } = await runInfo(jobId, mirror);
          const { filePath, artifactPath } = head.payload;
          await client.uploadArtifact({
            artifactUri,
            localPath: filePath,
            artifactPath,
            onProgress: (sentBytes, totalBytes) =>
              emit({ type: 'artifact_progress', jobId, artifactPath, sentBytes, totalBytes }),
          });
          break;
        }
      }
      unreachable.delete(jobId);
      await outbox.complete([head.id]);
      emit({ type: 'delivered', jobId, kind: head.kind, items: 1, points: 0 });
      return 1;
    } catch (e) {
      await fail(head, e);
      return 0;
    }
  }

  async function drainOnce(): Promise<number> {
    notified = false;
    const jobs = (await outbox.dueJobs(now(), concurrency * 4)).filter((j) => !busy.has(j));
    let delivered = 0;
    for (let i = 0; i < jobs.length; i += concurrency) {
      const slice = jobs.slice(i, i + concurrency);
      const counts = await Promise.all(
        slice.map(async (jobId) => {
          busy.add(jobId);
          try {
            let n = 0;
            // Keep going on this job while it makes progress (bounded, so other jobs get their turn).
            for (let k = 0; k < 20; k++) {
              const d = await step(jobId);
              if (d === 0) break;
              n += d;
            }
            return n;
          } finally {
            busy.delete(jobId);
          }
        }),
      );
      delivered += counts.reduce((a, b) => a + b, 0);
    }
    return delivered;
  }

  async function waitTime(): Promise<number> {
    const next = await outbox.nextDueAtMs();
    return next === undefined ? pollMs : Math.min(pollMs, Math.max(0, next - now()));
  }

  const worker: SyncWorker = {
    start() {
      if (running) return;
      running = true;
      loop = (async () => {
        while (running) {
          try {
            const n = await drainOnce();
            maybeProbe();
            if (n === 0 && running) {
              const ms = await waitTime();
              await sleep(notified ? Math.min(ms, notifyDelayMs) : ms);
            }
          } catch (e) {
            // The outbox itself failed (database busy, …): try again after a poll interval.
            emit({ type: 'warning', jobId: '', message: `sync loop: ${(e as Error).message}` });
            if (running) await sleep(pollMs);
          }
        }
      })();
    },
    notify() {
      notified = true;
      wake?.(notifyDelayMs);
    },
    async stop() {
      running = false;
      wake?.(0);
      await loop;
      loop = undefined;
    },
    drainOnce,
    async runUntilIdle({ timeoutMs = 60_000 } = {}) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const next = await outbox.nextDueAtMs();
        if (next === undefined) return;
        if (Date.now() > deadline) throw new Error(`runUntilIdle: still pending after ${timeoutMs} ms`);
        if (running) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        const n = await drainOnce();
        if (n === 0) await sleep(Math.min(await waitTime(), Math.max(0, deadline - Date.now()) + 1));
      }
    },
    async [Symbol.asyncDispose]() {
      await worker.stop();
    },
  };
  return worker;
}
