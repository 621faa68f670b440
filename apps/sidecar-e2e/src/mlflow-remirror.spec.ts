// RemirrorMlflowRun against real processes: a job mirrored into the real MLflow server, its run then
// deleted in MLflow (and the sidecar restarted on the same database), the job parked with a message that names the RPC, and the re-mirror copying the whole job into exactly
// one new run — also when the sidecar is SIGKILLed between MLflow creating the run and the sidecar
// storing its id, and when the operator calls the RPC twice.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Status } from '@training-callbacks/grpc-adapter';
import { startHttpFaultInjector } from '@training-callbacks/mlflow-bridge/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { ON_POSTGRES } from './database.ts';
import {
  expectExactlyOnce,
  getJob,
  mlflowReader,
  mlflowUrl,
  onlyRunOf,
  type Rpc,
  sha256,
  startMirroredSidecar,
  TaskType,
  TrainingOutcome,
  uniqueJobId,
  until,
  waitInSync,
} from './mlflow-helpers.ts';

// A SIGKILLed sidecar's outbox claims outlive it until their lease ends: a SQLite sidecar, alone on its
// file, drops them at start; on PostgreSQL the sidecar restarted on the same data waits the lease out
// (30 s by default, longer than the waits here): a short lease there.
const RESTART_ARGS = ON_POSTGRES ? ['--mlflow-claim-lease', '2'] : [];

const shared = mlflowReader();
afterAll(() => shared.close());

const acc = (e: number) => 0.4 + e / 40;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

async function endEpochs(rpc: Rpc, jobId: string, from: number, to: number) {
  for (let e = from; e < to; e++) {
    await rpc.endEpoch({ jobId, epoch: e, metrics: { accuracy: acc(e), train_loss: 1 / (e + 1) } });
  }
}

describe('RemirrorMlflowRun', () => {
  it('refuses an unknown job and an empty job id', async () => {
    const { sidecar, rpc } = await startMirroredSidecar(mlflowUrl());
    await using _ = sidecar;
    await expect(rpc.remirrorMlflowRun({ jobId: 'nobody' })).rejects.toMatchObject({
      code: Status.NOT_FOUND,
    });
    await expect(rpc.remirrorMlflowRun({ jobId: '' })).rejects.toMatchObject({
      code: Status.INVALID_ARGUMENT,
    });
    rpc.close();
  });

  it('copies a job whose run was deleted into exactly one new run, across a SIGKILL after runs/create and a repeated call', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'tc-remirror-'));
    const jobId = uniqueJobId('remirror');
    const artifact = randomBytes(64 * 1024);
    const steps = range(300);
    let oldRunId: string;
    try {
      // 1. Mirrored into the shared server.
      {
        const { sidecar, rpc } = await startMirroredSidecar(mlflowUrl(), { dataDir, args: RESTART_ARGS });
        await using _ = sidecar;
        await rpc.beginTraining({
          jobId,
          taskType: TaskType.IMAGE_CLASSIFICATION,
          framework: 'timm',
          params: { lr: '0.01', seed: '7' },
        });
        await endEpochs(rpc, jobId, 0, 3);
        await rpc.reportBatchMetrics([
          {
            jobId,
            blocks: [
              { epoch: 0, names: ['loss'], steps: steps.map(BigInt), values: steps.map((s) => 1 / (s + 1)) },
            ],
          },
        ]);
        await rpc.uploadArtifact([
          {
            part: {
              case: 'header',
              value: {
                jobId,
                artifactPath: 'weights/last.pt',
                sizeBytes: BigInt(artifact.length),
                sha256: sha256(artifact),
              },
            },
          },
          { part: { case: 'chunk', value: artifact } },
        ]);
        oldRunId = (await waitInSync(rpc, jobId)).mlflowRunId;
        rpc.close();
      }

      // 2. The run is deleted in MLflow (the backend-reset case, a run id MLflow does not know, is
      // the bridge's worker.spec.ts); the sidecar now talks to MLflow through a fault injector.
      await shared.deleteRun(oldRunId);
      await using injector = await startHttpFaultInjector(mlflowUrl());
      const reader = shared;
      {
        {
          const { sidecar, rpc } = await startMirroredSidecar(injector.url, { dataDir, args: RESTART_ARGS });
          await using _ = sidecar;
          await endEpochs(rpc, jobId, 3, 4);
          await until(
            async () => (await getJob(rpc, jobId)).mlflowSync!.parkedError !== '',
            15_000,
            'parked',
          );
          const parked = (await getJob(rpc, jobId)).mlflowSync!.parkedError;
          expect(parked).toContain(oldRunId);
          expect(parked).toMatch(/the run is gone/);
          expect(parked).toContain('RemirrorMlflowRun(job_id)');
          expect(parked).toContain('RetryMlflowSync');
          // RetryMlflowSync cannot help: the run is still gone.
          await rpc.retryMlflowSync({ jobId });
          await until(
            async () => (await getJob(rpc, jobId)).mlflowSync!.parkedError !== '',
            15_000,
            'parked again',
          );

          // 3. Re-mirror; MLflow creates the run but its answer is lost, and then searches fail, so the
          // sidecar has not stored the run id when it is SIGKILLed.
          const lostCreate = injector.add({ match: /runs\/create/, action: 'drop-after-forward', times: 1 });
          const remirrored = await rpc.remirrorMlflowRun({ jobId });
          // job_begun + the batch stream's rename (loss → batch/train_loss, recorded in the store's
          // metric_source) + 4 epochs + 1 block + 1 artifact (the job still runs: no end).
          expect(remirrored.queuedItems).toBe(8n);
          expect(remirrored.droppedItems).toBeGreaterThanOrEqual(1n);
          expect(remirrored.job!.mlflowRunId).toBe('');
          expect(remirrored.job!.mlflowSync!.parkedError).toBe('');
          await until(() => injector.stats().byRule[0] === 1, 15_000, 'runs/create forwarded, answer lost');
          const noSearch = injector.add({ match: /runs\/search/, action: 503 });
          expect(sidecar.output.join('\n')).toContain('RemirrorMlflowRun');
          rpc.close();
          expect(await sidecar.stop('SIGKILL')).toBe('SIGKILL');
          lostCreate();
          noSearch();
        }
        const experimentId = (await reader.getExperimentByName(`job_${jobId}`))!.experimentId;
        const activeRuns = () => reader.searchRuns({ experimentIds: [experimentId] });
        // The run MLflow created during the re-mirror, whose id the sidecar never stored.
        expect(await activeRuns()).toHaveLength(1);

        // 4. Restarted; the operator, unsure the first call took, calls it again; training ends.
        const { sidecar, rpc } = await startMirroredSidecar(injector.url, { dataDir, args: RESTART_ARGS });
        await using _ = sidecar;
        await rpc.remirrorMlflowRun({ jobId });
        await rpc.endTraining({ jobId, outcome: TrainingOutcome.COMPLETED, finalMetrics: { accuracy: 0.9 } });
        const job = await waitInSync(rpc, jobId, 60_000);

        const active = await activeRuns();
        expect(active.map((r) => r.info.runId)).toEqual([job.mlflowRunId]);
        // The deleted run is still there (deleted), untouched; no other run was made.
        const all = await reader.searchRuns({ experimentIds: [experimentId], runViewType: 'ALL' });
        expect(all.map((r) => r.info.runId).sort()).toEqual([oldRunId, job.mlflowRunId].sort());
        const run = await reader.getRun(job.mlflowRunId);
        expect(run.info.runId).not.toBe(oldRunId);
        expect(run.info.status).toBe('FINISHED');
        expect(run.data.params).toEqual({ lr: '0.01', seed: '7' });
        expect(run.data.tags).toMatchObject({
          'training_callbacks.job_id': jobId,
          framework: 'timm',
          // The new run records the batch rename too, though no report after the re-mirror sent it.
          'training_callbacks.reported_as.batch/train_loss': 'loss',
        });
        await expectExactlyOnce(reader, run.info.runId, 'accuracy', range(4), acc);
        await expectExactlyOnce(reader, run.info.runId, 'train_loss', range(4), (e) => 1 / (e + 1));
        await expectExactlyOnce(reader, run.info.runId, 'batch/train_loss', steps, (s) => 1 / (s + 1));
        await expectExactlyOnce(reader, run.info.runId, 'final_accuracy', [3]);
        expect(sha256(await reader.downloadArtifact(run.info.artifactUri, 'weights/last.pt'))).toBe(
          sha256(artifact),
        );
        // No experiment but the job's own was created.
        const names = (await reader.searchExperiments({ viewType: 'ALL' })).map((e) => e.name);
        expect(names.filter((n) => n.includes(jobId))).toEqual([`job_${jobId}`]);
        rpc.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 180_000);

  it('fills up a run that is still there (restored from an older backup) instead of making a second one', async () => {
    const { sidecar, rpc } = await startMirroredSidecar(mlflowUrl());
    await using _ = sidecar;
    const jobId = uniqueJobId('refill');
    await rpc.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION, params: { lr: '0.1' } });
    await endEpochs(rpc, jobId, 0, 5);
    await rpc.endTraining({ jobId, outcome: TrainingOutcome.FAILED, errorMessage: 'OOM' });
    const before = await waitInSync(rpc, jobId);
    const r = await rpc.remirrorMlflowRun({ jobId });
    // job_begun + 5 epochs + end.
    expect(r.queuedItems).toBe(7n);
    expect(r.droppedItems).toBe(0n);
    const after = await waitInSync(rpc, jobId);
    expect(after.mlflowRunId).toBe(before.mlflowRunId);
    const run = await onlyRunOf(shared, jobId);
    expect(run.info.status).toBe('FAILED');
    expect(run.data.tags['training_callbacks.error']).toBe('OOM');
    await expectExactlyOnce(shared, run.info.runId, 'accuracy', range(5), acc);
    expect(sidecar.output.some((l) => l.includes('filling it up'))).toBe(true);
    rpc.close();
  });
});
