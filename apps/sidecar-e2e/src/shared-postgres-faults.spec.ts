// Many sidecars, one PostgreSQL, one MLflow (issue 9, point 7): three sidecar processes on one real
// PostgreSQL server and the run's real MLflow server; 30 jobs spread over them through both clients (20
// TypeScript trainers in this process, 10 Python trainer processes). Meanwhile one sidecar is SIGKILLed
// mid-drain and restarted, PostgreSQL is restarted (an RPC during the outage answers UNAVAILABLE; the
// sidecars reconnect by themselves and the clients' retries deliver), later another sidecar is SIGKILLed
// and restarted. Afterwards every epoch and batch point is in the database and in MLflow exactly once,
// and every job and run has the right status. Runs only in the PostgreSQL run (vitest.postgres.config.ts).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Status } from '@grpc/grpc-js/build/src/constants.js';
import { runTraining, TrainingCallbacks } from '@training-callbacks/client';
import { RpcError } from '@training-callbacks/grpc-adapter';
import { type PostgresServer, startPostgres } from '@training-callbacks/postgres-testing';
import { JobStatus, TaskType } from '@training-callbacks/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectExactlyOnce,
  mlflowReader,
  mlflowUrl,
  onlyRunOf,
  type Rpc,
  startMirroredSidecar,
  uniqueJobId,
  waitInSync,
} from './mlflow-helpers.ts';
import { type LoggedProcess, spawnLogged } from './processes.ts';

const REPO = path.join(import.meta.dirname, '..', '..', '..');
const PYTHON_TRAINER = path.join(import.meta.dirname, 'shared-postgres-trainer.py');
const EPOCHS = 8;
const STEPS = 250;
const PAUSE_MS = 400;
const loss = (step: number) => 1 / (step + 1);
const accuracy = (epoch: number) => 0.5 + epoch / 100;

type Node = Awaited<ReturnType<typeof startMirroredSidecar>>;

describe('three sidecars on one PostgreSQL', () => {
  let pg: PostgresServer;
  const nodes: Node[] = [];
  const addresses: string[] = [];

  /** Sidecar `i` on the shared database, on its old address when restarted (the clients keep it). */
  const startNode = async (i: number) => {
    const node = await startMirroredSidecar(mlflowUrl(), {
      dbPath: pg.url,
      listen: addresses[i] ?? '127.0.0.1:0',
      args: ['--quiet'],
    });
    addresses[i] = node.sidecar.address;
    nodes[i] = node;
    return node;
  };

  const killAndRestart = async (i: number, downMs: number) => {
    const old = nodes[i]!;
    old.rpc.close();
    await old.sidecar.stop('SIGKILL');
    await sleep(downMs);
    await startNode(i);
  };

  beforeAll(async () => {
    pg = await startPostgres({ database: 'shared' });
    // All three at once: the migrations must be safe when many sidecars start together.
    await Promise.all([0, 1, 2].map((i) => startNode(i)));
  });
  afterAll(async () => {
    for (const node of nodes) {
      node?.rpc.close();
      await node?.sidecar[Symbol.asyncDispose]();
    }
    await pg?.stop();
  });

  it('keeps every point exactly once through SIGKILLs and a PostgreSQL restart', {
    timeout: 600_000,
  }, async () => {
    const python = execFileSync(path.join(REPO, 'tools/python/venv.sh'), ['client'], {
      encoding: 'utf8',
    }).trim();
    const jobs = Array.from({ length: 30 }, (_, n) => ({
      jobId: uniqueJobId(`shared-${n}`),
      node: n % 3,
      python: n % 3 === 0,
    }));

    const tsTrainer = async (jobId: string, address: string) => {
      await using callbacks = new TrainingCallbacks({
        jobId,
        taskType: 'image_classification',
        framework: 'custom',
        address,
      });
      await runTraining(
        callbacks,
        async (cb) => {
          for (let epoch = 0; epoch < EPOCHS; epoch++) {
            void cb.onEpochBegin(epoch);
            for (let i = 0; i < STEPS; i++)
              cb.onBatchEnd(epoch * STEPS + i, { train_loss: loss(epoch * STEPS + i) });
            void cb.onEpochEnd(epoch, { accuracy: accuracy(epoch) });
            await sleep(PAUSE_MS);
          }
        },
        { finalMetrics: () => ({ accuracy: accuracy(EPOCHS - 1) }) },
      );
      return callbacks.losses();
    };
    const pyTrainers: LoggedProcess[] = [];
    const runs = jobs.map(({ jobId, node, python: isPython }) => {
      if (!isPython) return tsTrainer(jobId, addresses[node]!);
      const trainer = spawnLogged(
        python,
        [PYTHON_TRAINER, addresses[node]!, jobId, String(EPOCHS), String(STEPS), String(PAUSE_MS / 1000)],
        {
          env: { ...process.env, PYTHONPATH: path.join(REPO, 'packages/python-client/src') },
        },
      );
      pyTrainers.push(trainer);
      return trainer.exited.then((code) => {
        if (code !== 0)
          throw new Error(`python trainer ${jobId} exited ${code}:\n${trainer.output.join('\n')}`);
        return trainer.output.join('\n');
      });
    });

    // The faults, while the jobs run and the mirror drains.
    await sleep(1_500);
    await killAndRestart(0, 1_000); // mid-drain: its claims must be taken over after the lease
    const outage = pg.restart({ downMs: 2_500 });
    await sleep(800);
    const probe = nodes[1]!.rpc.getJob({ jobId: jobs[1]!.jobId }).then(
      () => 'answered',
      (error: unknown) => (error instanceof RpcError ? Status[error.code] : String(error)),
    );
    expect(await probe).toBe('UNAVAILABLE');
    await outage;
    await sleep(1_000);
    await killAndRestart(1, 500);

    const results = await Promise.all(runs);
    // Nothing lost on the clients' side: TS losses, and the Python trainers' `"lost": 0` line.
    for (const result of results) {
      if (typeof result === 'string') expect(result).toMatch(/"lost": 0\b/);
      else
        expect(
          result.droppedPoints + result.refusedPoints + result.failedWrites,
          result.reasons.join('; '),
        ).toBe(0);
    }
    for (const trainer of pyTrainers) await trainer[Symbol.asyncDispose]();

    // Every job is readable from every sidecar (the read side is the shared database).
    const mlflow = mlflowReader();
    for (const [n, { jobId }] of jobs.entries()) {
      const rpc: Rpc = nodes[(n + 1) % 3]!.rpc;
      const job = await waitInSync(rpc, jobId, 120_000);
      expect(job.status, jobId).toBe(JobStatus.COMPLETED);
      expect(job.taskType).toBe(TaskType.IMAGE_CLASSIFICATION);
      expect(job.epochsReported, jobId).toBe(EPOCHS);
      const { epochs } = await rpc.listEpochs({ jobId, pageSize: 100 });
      expect(epochs.map((e) => e.epoch)).toEqual(Array.from({ length: EPOCHS }, (_, e) => e));
      const steps: number[] = [];
      let pageToken = '';
      do {
        const page = await rpc.listBatchMetrics({ jobId, pageSize: 10_000, pageToken });
        for (const block of page.blocks) steps.push(...block.steps.map(Number));
        pageToken = page.nextPageToken;
      } while (pageToken);
      expect(
        steps.sort((a, b) => a - b),
        `${jobId} batch steps in the database`,
      ).toEqual(Array.from({ length: EPOCHS * STEPS }, (_, s) => s));

      const run = await onlyRunOf(mlflow, jobId);
      expect(run.info.status, jobId).toBe('FINISHED');
      await expectExactlyOnce(
        mlflow,
        run.info.runId,
        'batch/train_loss',
        Array.from({ length: EPOCHS * STEPS }, (_, s) => s),
        loss,
      );
      await expectExactlyOnce(
        mlflow,
        run.info.runId,
        'accuracy',
        Array.from({ length: EPOCHS }, (_, e) => e),
        accuracy,
      );
    }
    const [[count]] = (await pg.sql(
      "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )) as [[string]];
    expect(Number(count)).toBeGreaterThan(0);
  });
});
