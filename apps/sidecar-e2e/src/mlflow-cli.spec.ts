// The CLI's MLflow commands (`training-callbacks mlflow status|retry|remirror`, the package's built
// bin as a child process) against a sidecar mirroring into the real MLflow server, through an HTTP
// fault injector that parks the job once.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { startHttpFaultInjector } from '@training-callbacks/mlflow-bridge/testing';
import { afterAll, describe, expect, it } from 'vitest';
import {
  getJob,
  mlflowReader,
  mlflowUrl,
  onlyRunOf,
  startMirroredSidecar,
  TaskType,
  uniqueJobId,
  until,
  waitInSync,
} from './mlflow-helpers.ts';

const BIN = path.join(import.meta.dirname, '../../sidecar/bin/training-callbacks.js');
const mlflow = mlflowReader();
afterAll(() => mlflow.close());

function cli(
  args: readonly string[],
  address: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args, '--address', address],
      { env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('training-callbacks mlflow', () => {
  it('status shows the sync; retry clears a parked error; remirror queues the whole job again', {
    timeout: 180_000,
  }, async () => {
    await using injector = await startHttpFaultInjector(mlflowUrl());
    // Long waits between retries: only `mlflow retry` explains a quick recovery.
    const { sidecar, rpc } = await startMirroredSidecar(injector.url, {
      args: ['--mlflow-max-backoff', '600', '--quiet'],
    });
    await using _ = sidecar;
    const jobId = uniqueJobId('cli-mlflow');
    await rpc.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
    await rpc.endEpoch({ jobId, epoch: 0, metrics: { accuracy: 0.5 } });
    await waitInSync(rpc, jobId);

    const inSync = await cli(['mlflow', 'status', jobId, '--json'], sidecar.address);
    expect(inSync.code, inSync.stderr).toBe(0);
    const run = await onlyRunOf(mlflow, jobId);
    expect(JSON.parse(inSync.stdout)).toMatchObject({
      jobId,
      mlflowRunId: run.info.runId,
      mlflowSync: { enabled: true, inSync: true, pendingItems: '0', parkedError: '' },
    });

    // Parked by a refusal retrying cannot fix (the injector refuses once: the "cause" is then fixed).
    injector.add({
      match: /log-batch/,
      action: 400,
      times: 1,
      body: '{"error_code":"INVALID_PARAMETER_VALUE"}',
    });
    await rpc.endEpoch({ jobId, epoch: 1, metrics: { accuracy: 0.6 } });
    await until(async () => (await getJob(rpc, jobId)).mlflowSync!.parkedError !== '', 20_000, 'parked');
    const parked = await cli(['mlflow', 'status'], sidecar.address);
    expect(parked.code).toBe(0);
    expect(parked.stdout).toMatch(
      new RegExp(`^${jobId}\\s+running\\s+${run.info.runId}\\s+parked\\s+[1-9]`, 'm'),
    );
    expect(parked.stderr).toMatch(/1 job parked: fix the cause .*`training-callbacks mlflow retry JOB`/);

    const retried = await cli(['mlflow', 'retry', jobId], sidecar.address);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).toMatch(new RegExp(`^${jobId} {2}retried [1-9]\\d* items {2}mlflow `));
    await waitInSync(rpc, jobId, 20_000);

    const remirrored = await cli(['mlflow', 'remirror', jobId, '--json'], sidecar.address);
    expect(remirrored.code, remirrored.stderr).toBe(0);
    expect(Number(JSON.parse(remirrored.stdout).queuedItems)).toBeGreaterThan(0);
    expect(remirrored.stderr).toMatch(/queued for MLflow again/);
    await waitInSync(rpc, jobId, 30_000);
    // The run was still there: it is filled up, not duplicated.
    expect((await onlyRunOf(mlflow, jobId)).info.runId).toBe(run.info.runId);

    const unknown = await cli(['mlflow', 'retry', 'nobody'], sidecar.address);
    expect(unknown.code).toBe(10);
    expect(unknown.stderr).toMatch(/NOT_FOUND/);
    rpc.close();
  });
});
