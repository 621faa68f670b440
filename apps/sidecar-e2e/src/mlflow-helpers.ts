// Shared by the mlflow-*.spec.ts files: a sidecar process mirroring into the run's real MLflow server
// (or into a fault proxy in front of it), and read-backs through MLflow's REST API.
import { createHash, randomBytes } from 'node:crypto';
import { createClient, type ServiceClient } from '@training-callbacks/grpc-adapter';
import { createMlflowClient, type MlflowClient, type Run } from '@training-callbacks/mlflow-bridge';
import { type Job, TaskType, TrainingCallbacks, TrainingOutcome } from '@training-callbacks/proto';
import { type SidecarProcessOptions, startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { expect, inject } from 'vitest';

type Methods = typeof TrainingCallbacks extends { method: infer M } ? M : never;
export type Rpc = ServiceClient<Methods>;
export { TaskType, TrainingOutcome };

/** The run's MLflow server (started once by the global setup). */
export function mlflowUrl(): string {
  const url = inject('mlflowUrl');
  if (!url)
    throw new Error(
      'no MLflow server: run the mlflow-*.spec.ts files without a file filter that excludes them',
    );
  return url;
}

/** A REST client straight to the real server, for reading back. */
export function mlflowReader(): MlflowClient {
  return createMlflowClient({ trackingUri: mlflowUrl() });
}

/** A job id unique on the shared server. */
export function uniqueJobId(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** Starts the real sidecar with MLFLOW_TRACKING_URI = `trackingUri`; short backoff so tests recover fast. */
export async function startMirroredSidecar(trackingUri: string, options: SidecarProcessOptions = {}) {
  const sidecar = await startSidecarProcess({
    ...options,
    args: ['--mlflow-max-backoff', '0.5', ...(options.args ?? [])],
    env: { MLFLOW_TRACKING_URI: trackingUri, MLFLOW_HTTP_REQUEST_TIMEOUT: '5', ...options.env },
  });
  return { sidecar, rpc: createClient(TrainingCallbacks, sidecar.address) };
}

export async function getJob(rpc: Rpc, jobId: string): Promise<Job> {
  const { job } = await rpc.getJob({ jobId });
  return job!;
}

/** Waits until the job's mirror is in sync (nothing pending, nothing parked) and returns the job. */
export async function waitInSync(rpc: Rpc, jobId: string, timeoutMs = 45_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await getJob(rpc, jobId);
    const sync = job.mlflowSync!;
    if (sync.parkedError) throw new Error(`job ${jobId} parked: ${sync.parkedError}`);
    if (sync.inSync && job.mlflowRunId) return job;
    if (Date.now() > deadline) {
      throw new Error(
        `job ${jobId} not in sync after ${timeoutMs} ms: ${sync.pendingItems} pending, oldest ${sync.oldestPendingAgeSeconds.toFixed(1)} s`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The job's experiment `job_<id>` must hold exactly one run: returns it. */
export async function onlyRunOf(mlflow: MlflowClient, jobId: string): Promise<Run> {
  const experiment = await mlflow.getExperimentByName(`job_${jobId}`);
  expect(experiment, `experiment job_${jobId}`).toBeDefined();
  const runs = await mlflow.searchRuns({ experimentIds: [experiment!.experimentId], runViewType: 'ALL' });
  expect(runs.map((r) => r.info.runId)).toHaveLength(1);
  return mlflow.getRun(runs[0]!.info.runId);
}

/**
 * Every point of `key` exactly once: the history's steps are `steps` (no step twice), with `value(step)`.
 */
export async function expectExactlyOnce(
  mlflow: MlflowClient,
  runId: string,
  key: string,
  steps: readonly number[],
  value?: (step: number) => number,
): Promise<void> {
  const history = await mlflow.getMetricHistory(runId, key);
  const seen = history.map((m) => m.step).sort((a, b) => a - b);
  expect(seen, `steps of ${key}`).toEqual([...steps].sort((a, b) => a - b));
  if (value) {
    for (const m of history) expect(m.value, `${key} at step ${m.step}`).toBeCloseTo(value(m.step), 12);
  }
}

export const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Polls `check` until it returns true (bounded). */
export async function until(check: () => Promise<boolean> | boolean, timeoutMs = 20_000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
