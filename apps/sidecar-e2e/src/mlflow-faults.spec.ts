// Fault tests: a TCP proxy or an HTTP fault injector between the real sidecar process and the real
// MLflow server. After each scenario every point is in MLflow exactly once and the run has the right
// status; meanwhile the trainer's RPCs never wait for MLflow and the read side shows the backlog.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Status } from '@training-callbacks/grpc-adapter';
import { startHttpFaultInjector, startTcpFaultProxy } from '@training-callbacks/mlflow-bridge/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { ON_POSTGRES, queryDatabase } from './database.ts';
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

const mlflow = mlflowReader();
afterAll(() => mlflow.close());

const acc = (e: number) => 0.3 + e / 50;

/** Reports epochs `from..to-1` and returns the slowest round trip (ms). */
async function epochs(rpc: Rpc, jobId: string, from: number, to: number): Promise<number> {
  let slowest = 0;
  for (let e = from; e < to; e++) {
    const t = performance.now();
    await rpc.endEpoch({ jobId, epoch: e, metrics: { accuracy: acc(e), train_loss: 1 / (e + 1) } });
    slowest = Math.max(slowest, performance.now() - t);
  }
  return slowest;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

async function expectEpochs(runId: string, n: number) {
  await expectExactlyOnce(mlflow, runId, 'accuracy', range(n), acc);
  await expectExactlyOnce(mlflow, runId, 'train_loss', range(n), (e) => 1 / (e + 1));
}

describe('MLflow outages and errors', () => {
  it('MLflow unreachable for the middle epochs, then back: the trainer never waits, nothing is lost or doubled', async () => {
    await using proxy = await startTcpFaultProxy(mlflowUrl());
    const { sidecar, rpc } = await startMirroredSidecar(proxy.url);
    await using _ = sidecar;
    const jobId = uniqueJobId('outage');
    await rpc.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION, params: { lr: '0.01' } });
    await epochs(rpc, jobId, 0, 3);
    await waitInSync(rpc, jobId);

    await proxy.setMode('refuse');
    const slowest = await epochs(rpc, jobId, 3, 7);
    expect(slowest, 'an EndEpoch waited for MLflow').toBeLessThan(250);
    await rpc.reportBatchMetrics([
      { jobId, blocks: [{ epoch: 6, names: ['loss'], steps: [600n, 601n, 602n], values: [0.3, 0.2, 0.1] }] },
    ]);
    // The read side shows the backlog while MLflow is down.
    await until(async () => (await getJob(rpc, jobId)).mlflowSync!.pendingItems >= 5n, 5000, 'pending items');
    await until(
      () => sidecar.output.some((l) => l.includes('MLflow:') && l.includes('retrying')),
      10_000,
      'retry log',
    );
    await new Promise((r) => setTimeout(r, 600));
    const down = (await getJob(rpc, jobId)).mlflowSync!;
    expect(down).toMatchObject({ enabled: true, inSync: false, parkedError: '' });
    // 4 epochs + the batch block + the rename of batch `loss` to `train_loss` (metric_sources).
    expect(down.pendingItems).toBe(6n);
    expect(down.oldestPendingAgeSeconds).toBeGreaterThan(0.5);

    await proxy.setMode('pass');
    await epochs(rpc, jobId, 7, 10);
    await rpc.endTraining({ jobId, outcome: TrainingOutcome.COMPLETED, finalMetrics: { accuracy: 0.9 } });
    const job = await waitInSync(rpc, jobId);
    expect(job.mlflowSync).toMatchObject({ inSync: true, pendingItems: 0n, oldestPendingAgeSeconds: 0 });
    const run = await onlyRunOf(mlflow, jobId);
    expect(run.info.status).toBe('FINISHED');
    await expectEpochs(run.info.runId, 10);
    await expectExactlyOnce(mlflow, run.info.runId, 'batch/train_loss', [600, 601, 602]);
    await expectExactlyOnce(mlflow, run.info.runId, 'final_accuracy', [9]);
    expect(sidecar.output.some((l) => l.includes('reachable again'))).toBe(true);
    rpc.close();
  });

  it('MLflow away for longer than the longest backoff, then back: catch-up starts within ~10 s', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'tc-probe-'));
    try {
      await using proxy = await startTcpFaultProxy(mlflowUrl());
      const MAX_BACKOFF_S = 20;
      const { sidecar, rpc } = await startMirroredSidecar(proxy.url, {
        dataDir,
        args: ['--mlflow-max-backoff', String(MAX_BACKOFF_S)],
      });
      await using _ = sidecar;
      const jobId = uniqueJobId('probe');
      await rpc.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
      await epochs(rpc, jobId, 0, 1);
      await waitInSync(rpc, jobId);
      await proxy.setMode('refuse');
      await epochs(rpc, jobId, 1, 4);
      // Longer than the longest wait between attempts: the backoff has grown to its cap.
      await new Promise((r) => setTimeout(r, (MAX_BACKOFF_S + 6) * 1000));
      const [head] = await queryDatabase<{ attempts: number; next: number }>(
        sidecar.dbPath,
        'select attempts, next_attempt_at_ms next from outbox_item order by id limit 1',
      );
      await proxy.setMode('pass');
      const back = Date.now();
      await waitInSync(rpc, jobId, 30_000);
      const catchUpMs = Date.now() - back;
      console.log(
        `catch-up after a ${MAX_BACKOFF_S + 6} s outage: ${catchUpMs} ms (head item: ${head!.attempts} attempts, next attempt was due in ${((head!.next - back) / 1000).toFixed(1)} s)`,
      );
      expect(head!.attempts).toBeGreaterThanOrEqual(5);
      expect(catchUpMs).toBeLessThan(10_000);
      // The reachability probe's own line, when the catch-up came before the head item's own next
      // attempt was due (so the probe started it); when that attempt was due within the catch-up
      // (the backoff's jitter put it there), the plain retry may have won the race and logged nothing.
      if (head!.next - back > catchUpMs) {
        expect(sidecar.output.some((l) => l.includes('MLflow answers again'))).toBe(true);
      }
      await expectEpochs((await onlyRunOf(mlflow, jobId)).info.runId, 4);
      rpc.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 90_000);

  it('MLflow answering 500, then 429 with Retry-After, and answers lost after MLflow applied them', async () => {
    await using injector = await startHttpFaultInjector(mlflowUrl());
    const { sidecar, rpc } = await startMirroredSidecar(injector.url);
    await using _ = sidecar;
    const jobId = uniqueJobId('http-faults');
    await rpc.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
    await waitInSync(rpc, jobId);

    injector.failFor(2000, 500);
    expect(await epochs(rpc, jobId, 0, 4)).toBeLessThan(250);
    await until(() => injector.stats().injected > 0, 5000, 'a 500');
    await new Promise((r) => setTimeout(r, 2100));
    injector.add({ action: 429, retryAfterSeconds: 1, times: 3 });
    // The request reaches MLflow, the answer never comes back: the worker resends the same points.
    injector.add({ match: /log-batch/, action: 'drop-after-forward', times: 2 });
    await epochs(rpc, jobId, 4, 8);
    await rpc.endTraining({ jobId, outcome: TrainingOutcome.COMPLETED });
    await waitInSync(rpc, jobId);
    const stats = injector.stats();
    expect(stats.byRule[0]).toBeGreaterThan(0); // 500s
    expect(stats.byRule[1]).toBe(3); // 429s
    expect(stats.byRule[2]).toBe(2); // lost answers
    const run = await onlyRunOf(mlflow, jobId);
    expect(run.info.status).toBe('FINISHED');
    await expectEpochs(run.info.runId, 8);
    rpc.close();
  });

  it('parks a failure retrying cannot fix, says so in the log and the job, and retries it after a restart', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'tc-park-'));
    try {
      const jobId = uniqueJobId('parked');
      {
        await using injector = await startHttpFaultInjector(mlflowUrl());
        const { sidecar, rpc } = await startMirroredSidecar(injector.url, { dataDir });
        await using _ = sidecar;
        await rpc.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
        await waitInSync(rpc, jobId);
        injector.add({
          match: /log-batch/,
          action: 400,
          times: 1,
          body: JSON.stringify({ error_code: 'INVALID_PARAMETER_VALUE', message: 'injected refusal' }),
        });
        await epochs(rpc, jobId, 0, 3);
        await until(async () => (await getJob(rpc, jobId)).mlflowSync!.parkedError !== '', 10_000, 'parked');
        const sync = (await getJob(rpc, jobId)).mlflowSync!;
        expect(sync.inSync).toBe(false);
        expect(sync.parkedError).toContain('injected refusal');
        expect(sync.pendingItems).toBeGreaterThan(0n);
        await until(() => sidecar.output.some((l) => l.includes('MLflow sync STOPPED')), 5000, 'parked log');
        expect(sidecar.output.join('\n')).toMatch(/restart the sidecar/);
        rpc.close();
      }
      // "Fixed": restart; parked items are retried at start.
      const { sidecar, rpc } = await startMirroredSidecar(mlflowUrl(), { dataDir });
      await using _ = sidecar;
      await rpc.endTraining({ jobId, outcome: TrainingOutcome.COMPLETED });
      await waitInSync(rpc, jobId);
      const run = await onlyRunOf(mlflow, jobId);
      expect(run.info.status).toBe('FINISHED');
      await expectEpochs(run.info.runId, 3);
      rpc.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('RetryMlflowSync: retries a parked job and ends a long wait between retries, without a restart', async () => {
    await using injector = await startHttpFaultInjector(mlflowUrl());
    // Long waits between retries, so only RetryMlflowSync can explain a quick recovery.
    const { sidecar, rpc } = await startMirroredSidecar(injector.url, {
      // --quiet: an operator's retry is still in the log.
      args: ['--mlflow-max-backoff', '600', '--quiet'],
    });
    await using _ = sidecar;
    const jobId = uniqueJobId('retry-now');
    await rpc.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
    await waitInSync(rpc, jobId);
    // Nothing to retry: nothing changes.
    expect((await rpc.retryMlflowSync({ jobId })).retriedItems).toBe(0n);
    await expect(rpc.retryMlflowSync({ jobId: 'nobody' })).rejects.toMatchObject({ code: Status.NOT_FOUND });

    // Parked by a refusal retrying cannot fix; "fixed" (the injector refuses only once); retried now.
    injector.add({
      match: /log-batch/,
      action: 400,
      times: 1,
      body: '{"error_code":"INVALID_PARAMETER_VALUE"}',
    });
    await epochs(rpc, jobId, 0, 2);
    await until(async () => (await getJob(rpc, jobId)).mlflowSync!.parkedError !== '', 10_000, 'parked');
    const parked = await rpc.retryMlflowSync({ jobId });
    expect(parked.retriedItems).toBeGreaterThan(0n);
    expect(parked.job!.mlflowSync!.parkedError).toBe('');
    await waitInSync(rpc, jobId, 10_000);

    // MLflow asks for an hour's pause (the worker waits its 600 s cap); the operator says now.
    injector.add({ match: /log-batch/, action: 503, retryAfterSeconds: 3600, times: 1 });
    await epochs(rpc, jobId, 2, 4);
    await until(async () => (await getJob(rpc, jobId)).mlflowSync!.pendingItems > 0n, 5000, 'queued');
    await until(
      () =>
        sidecar.output.some((l) => l.includes(`[${jobId}] MLflow:`) && l.includes('retrying (every item')),
      10_000,
      'retry line',
    );
    const waiting = await rpc.retryMlflowSync({ jobId });
    expect(waiting.retriedItems).toBeGreaterThan(0n);
    await waitInSync(rpc, jobId, 10_000);
    expect(sidecar.output).toContainEqual(
      expect.stringMatching(
        new RegExp(`^\\[${jobId}\\] MLflow: retrying \\d+ item\\(s\\) now \\(RetryMlflowSync\\)$`),
      ),
    );

    const run = await onlyRunOf(mlflow, jobId);
    await expectEpochs(run.info.runId, 4);
    rpc.close();
  });

  it('SIGKILLed with a full outbox, and again in the middle of catching up: resumes where it stopped', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'tc-kill-'));
    await using proxy = await startTcpFaultProxy(mlflowUrl());
    const jobId = uniqueJobId('killed');
    const artifact = randomBytes(256 * 1024);
    const BLOCKS = 30;
    const ROWS = 500;
    let dbPath = ''; // the SQLite file in dataDir, or the PostgreSQL database named there
    // A killed sidecar's outbox claims live on until their lease ends: a SQLite sidecar, alone on its
    // file, drops them at start; on PostgreSQL another sidecar may still hold them, so the restarted one
    // waits the lease out (30 s by default, twice here): a short lease keeps the test within its time.
    const args = ON_POSTGRES ? ['--mlflow-claim-lease', '2'] : [];
    try {
      await proxy.setMode('refuse');
      {
        const { sidecar, rpc } = await startMirroredSidecar(proxy.url, { dataDir, args });
        await using _ = sidecar;
        dbPath = sidecar.dbPath;
        await rpc.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION, params: { seed: '7' } });
        await epochs(rpc, jobId, 0, 10);
        // 30 blocks × 500 steps × 2 metrics: many log-batch requests to catch up with.
        for (let b = 0; b < BLOCKS; b++) {
          const steps = Array.from({ length: ROWS }, (_, i) => BigInt(b * ROWS + i));
          await rpc.reportBatchMetrics([
            {
              jobId,
              blocks: [
                {
                  epoch: Math.floor(b / 3),
                  names: ['loss', 'grad_norm'],
                  steps,
                  values: steps.flatMap((s) => [Number(s) / 1e4, 1 + Number(s) / 1e5]),
                },
              ],
            },
          ]);
        }
        await rpc.uploadArtifact([
          {
            part: {
              case: 'header',
              value: {
                jobId,
                artifactPath: 'last.pt',
                sizeBytes: BigInt(artifact.length),
                sha256: sha256(artifact),
              },
            },
          },
          { part: { case: 'chunk', value: artifact } },
        ]);
        await rpc.endTraining({ jobId, outcome: TrainingOutcome.COMPLETED, finalMetrics: { accuracy: 0.5 } });
        const sync = (await getJob(rpc, jobId)).mlflowSync!;
        // job_begun + 10 epochs + 30 blocks + the rename of batch `loss` to `train_loss` (metric_sources)
        // + artifact + final metrics + end.
        expect(sync.pendingItems).toBe(45n);
        rpc.close();
        expect(await sidecar.stop('SIGKILL')).toBe('SIGKILL');
      }
      expect((await queryDatabase<{ n: number }>(dbPath, 'select count(*) n from outbox_item'))[0]!.n).toBe(
        45,
      );

      await proxy.setMode('pass');
      {
        const { sidecar, rpc } = await startMirroredSidecar(proxy.url, { dataDir, args });
        await using _ = sidecar;
        // Kill it again while it is catching up.
        await until(
          async () => {
            const n = (await getJob(rpc, jobId)).mlflowSync!.pendingItems;
            return n < 40n && n > 0n;
          },
          30_000,
          'partial catch-up',
        );
        rpc.close();
        expect(await sidecar.stop('SIGKILL')).toBe('SIGKILL');
      }
      const { sidecar, rpc } = await startMirroredSidecar(proxy.url, { dataDir, args });
      await using _ = sidecar;
      const job = await waitInSync(rpc, jobId, 60_000);
      const run = await onlyRunOf(mlflow, jobId);
      expect(run.info.runId).toBe(job.mlflowRunId);
      expect(run.info.status).toBe('FINISHED');
      expect(run.data.params).toEqual({ seed: '7' });
      await expectEpochs(run.info.runId, 10);
      const steps = range(BLOCKS * ROWS);
      await expectExactlyOnce(mlflow, run.info.runId, 'batch/train_loss', steps, (s) => s / 1e4);
      await expectExactlyOnce(mlflow, run.info.runId, 'batch/grad_norm', steps, (s) => 1 + s / 1e5);
      await expectExactlyOnce(mlflow, run.info.runId, 'final_accuracy', [9]);
      expect(sha256(await mlflow.downloadArtifact(run.info.artifactUri, 'last.pt'))).toBe(sha256(artifact));
      rpc.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  for (const [outcome, how, status, error] of [
    [TrainingOutcome.FAILED, 'the trainer reports a failure', 'FAILED', 'CUDA out of memory'],
    [TrainingOutcome.CANCELLED, 'the job is cancelled', 'KILLED', ''],
  ] as const) {
    it(`closes the run as ${status} when ${how}, also after an outage at the end`, async () => {
      await using proxy = await startTcpFaultProxy(mlflowUrl());
      const { sidecar, rpc } = await startMirroredSidecar(proxy.url);
      await using _ = sidecar;
      const jobId = uniqueJobId(status.toLowerCase());
      await rpc.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
      await epochs(rpc, jobId, 0, 2);
      await proxy.setMode('refuse');
      await epochs(rpc, jobId, 2, 4);
      const ended = await rpc.endTraining({ jobId, outcome, errorMessage: error });
      await new Promise((r) => setTimeout(r, 700));
      await proxy.setMode('pass');
      await waitInSync(rpc, jobId);
      const run = await onlyRunOf(mlflow, jobId);
      expect(run.info.status).toBe(status);
      const endedAt = ended.job!.endedAt!;
      expect(run.info.endTime).toBe(Number(endedAt.seconds) * 1000 + Math.floor(endedAt.nanos / 1e6));
      if (error) expect(run.data.tags['training_callbacks.error']).toBe(error);
      else expect(run.data.tags['training_callbacks.error']).toBeUndefined();
      await expectEpochs(run.info.runId, 4);
      rpc.close();
    });
  }
});
