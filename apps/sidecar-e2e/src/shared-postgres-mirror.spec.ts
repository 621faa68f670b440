// Two sidecars draining one PostgreSQL outbox into the run's real MLflow server (issue 9, point 4): a
// sidecar drains a job only while it holds the job's claim. Sidecar A mirrors through a TCP proxy that
// swallows MLflow's answers, so its requests reach MLflow but are never confirmed: it is stuck
// mid-send, holding its jobs' claims and renewing them, and sidecar B (mirroring straight to MLflow)
// must leave those jobs alone. Then A is SIGKILLed: its claims run out after the lease, B takes the
// jobs over and resends at most what A had in flight (MLflow drops the exact duplicate points).
// Afterwards every point is in MLflow exactly once and every run is FINISHED. Runs only in the
// PostgreSQL run (vitest.postgres.config.ts: SQLite allows one sidecar per file).
import { setTimeout as sleep } from 'node:timers/promises';
import { startTcpFaultProxy } from '@training-callbacks/mlflow-bridge/testing';
import { type PostgresServer, startPostgres } from '@training-callbacks/postgres-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectExactlyOnce,
  mlflowReader,
  mlflowUrl,
  onlyRunOf,
  type Rpc,
  startMirroredSidecar,
  TaskType,
  TrainingOutcome,
  uniqueJobId,
  until,
  waitInSync,
} from './mlflow-helpers.ts';

const LEASE_S = 2;
const EPOCHS = 10;
const acc = (e: number) => 0.3 + e / 50;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

async function epochs(rpc: Rpc, jobId: string, from: number, to: number): Promise<void> {
  for (let e = from; e < to; e++) {
    await rpc.endEpoch({ jobId, epoch: e, metrics: { accuracy: acc(e) } });
  }
}

describe('two sidecars on one PostgreSQL outbox', () => {
  let pg: PostgresServer;
  const mlflow = mlflowReader();

  beforeAll(async () => {
    pg = await startPostgres({ database: 'mirror' });
  });
  afterAll(async () => {
    mlflow.close();
    await pg?.stop();
  });

  /** outbox_claim rows: job id → the claiming sidecar's instance id (`host/pid/…`). */
  const claims = async () =>
    new Map((await pg.sql('SELECT job_id, claimed_by FROM outbox_claim')).map(([job, by]) => [job!, by!]));

  it('leaves a live sidecar’s jobs alone, takes them over after it is SIGKILLed mid-send, every point once', async () => {
    const args = ['--quiet', '--mlflow-claim-lease', String(LEASE_S)];
    await using proxy = await startTcpFaultProxy(mlflowUrl());
    const a = await startMirroredSidecar(proxy.url, { dbPath: pg.url, args });
    await using _a = a.sidecar;
    const jobs = [uniqueJobId('claim-0'), uniqueJobId('claim-1'), uniqueJobId('claim-2')];
    for (const jobId of jobs) {
      await a.rpc.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION, params: { lr: '0.01' } });
      await epochs(a.rpc, jobId, 0, 3);
      await a.rpc.reportBatchMetrics([
        { jobId, blocks: [{ epoch: 2, names: ['loss'], steps: [20n, 21n, 22n], values: [0.3, 0.2, 0.1] }] },
      ]);
    }
    for (const jobId of jobs) await waitInSync(a.rpc, jobId);

    // A's requests now reach MLflow, which applies them, but no answer comes back: A is stuck mid-send.
    await proxy.setMode('swallow-responses');
    const sentBefore = proxy.accepted;
    for (const jobId of jobs) {
      await epochs(a.rpc, jobId, 3, EPOCHS);
      await a.rpc.endTraining({ jobId, outcome: TrainingOutcome.COMPLETED, finalMetrics: { accuracy: 0.9 } });
    }
    const aTag = `/${a.sidecar.child.pid}/`;
    await until(
      async () =>
        proxy.accepted > sentBefore && [...(await claims()).values()].some((by) => by.includes(aTag)),
      20_000,
      'sidecar A sending under its claims',
    );
    const heldByA = [...(await claims())].filter(([, by]) => by.includes(aTag)).map(([job]) => job);
    expect(heldByA.length).toBeGreaterThan(0);

    const b = await startMirroredSidecar(mlflowUrl(), { dbPath: pg.url, args });
    await using _b = b.sidecar;
    // Longer than the lease: A renews its claims while it waits for MLflow, so B takes none of them.
    await sleep(LEASE_S * 1000 * 2);
    const now = await claims();
    for (const job of heldByA) expect(now.get(job), `${job} still A's`).toContain(aTag);
    for (const job of heldByA)
      expect((await b.rpc.getJob({ jobId: job })).job!.mlflowSync!.inSync).toBe(false);

    // Killed mid-send: the claims run out after the lease and B drains what A left.
    a.rpc.close();
    await a.sidecar.stop('SIGKILL');
    for (const jobId of jobs) await waitInSync(b.rpc, jobId, 60_000);
    for (const jobId of jobs) {
      const run = await onlyRunOf(mlflow, jobId);
      expect(run.info.status, jobId).toBe('FINISHED');
      expect(run.data.params).toMatchObject({ lr: '0.01' });
      await expectExactlyOnce(mlflow, run.info.runId, 'accuracy', range(EPOCHS), acc);
      await expectExactlyOnce(mlflow, run.info.runId, 'batch/train_loss', [20, 21, 22]);
      await expectExactlyOnce(mlflow, run.info.runId, 'final_accuracy', [EPOCHS - 1]);
    }
    // Drained outboxes give their claims up.
    await until(async () => (await claims()).size === 0, 10_000, 'claims released');
    b.rpc.close();
  }, 180_000);
});
