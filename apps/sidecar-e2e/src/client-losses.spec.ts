// A client's losses (EndTrainingRequest.losses) reach the job, survive a restart, add up over a
// resumed job's runs, and are named in the sidecar's end line even with --quiet: a job with losses
// never looks like a clean run. The real sidecar process and its SQLite file.
import { createClient } from '@training-callbacks/grpc-adapter';
import {
  JobStatus,
  TrainingCallbacks as Service,
  TaskType,
  TrainingOutcome,
} from '@training-callbacks/proto';
import { type SidecarProcess, startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryDatabase } from './database.ts';

let sidecar: SidecarProcess;
let client: ReturnType<typeof createClient<(typeof Service)['method']>>;

beforeAll(async () => {
  sidecar = await startSidecarProcess({ args: ['--quiet'] });
  client = createClient(Service, sidecar.address);
});

afterAll(async () => {
  client?.close();
  await sidecar?.[Symbol.asyncDispose]();
});

const begin = (jobId: string) =>
  client.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION, framework: 'custom' });

describe("a client's losses", () => {
  it('are stored with the ended job, shown by GetJob and ListJobs, and named in the end line', async () => {
    await begin('lossy');
    const ended = await client.endTraining({
      jobId: 'lossy',
      outcome: TrainingOutcome.COMPLETED,
      losses: {
        droppedPoints: 800n,
        failedWrites: 1n,
        reasons: ['batch queue full (500 rows)', 'epoch_end refused: RESOURCE_EXHAUSTED: too large'],
      },
    });
    expect(ended.job?.status).toBe(JobStatus.COMPLETED);
    expect(ended.job?.clientLosses).toMatchObject({
      droppedPoints: 800n,
      refusedPoints: 0n,
      failedWrites: 1n,
    });
    const { job } = await client.getJob({ jobId: 'lossy' });
    expect(job?.clientLosses?.reasons).toEqual([
      'batch queue full (500 rows)',
      'epoch_end refused: RESOURCE_EXHAUSTED: too large',
    ]);
    const listed = (await client.listJobs({})).jobs.find((j) => j.jobId === 'lossy');
    expect(listed?.clientLosses?.droppedPoints).toBe(800n);
    const line = sidecar.output.find((l) => l.startsWith('[lossy] training completed'));
    expect(line).toContain('LOSSES: 800 batch points dropped, 1 write failed (batch queue full (500 rows)');
    const [row] = await queryDatabase<{ client_losses: string }>(
      sidecar.dbPath,
      'select client_losses from training_job where job_id = ?',
      'lossy',
    );
    expect(JSON.parse(row!.client_losses)).toMatchObject({ droppedPoints: 800, failedWrites: 1 });
  });

  it('are absent for a clean job, whose end line says nothing of losses', async () => {
    await begin('clean');
    const ended = await client.endTraining({
      jobId: 'clean',
      outcome: TrainingOutcome.COMPLETED,
      losses: {},
    });
    expect(ended.job?.clientLosses).toBeUndefined();
    expect(sidecar.output.some((l) => l.startsWith('[clean]'))).toBe(false); // --quiet: no line for a clean end
  });

  it('add up over the runs of a resumed job; a repeated end changes nothing; long reasons are cut', async () => {
    await begin('resumed');
    await client.endTraining({
      jobId: 'resumed',
      outcome: TrainingOutcome.FAILED,
      errorMessage: 'OOM',
      losses: { refusedPoints: 5n, reasons: ['x'.repeat(5000)] },
    });
    await begin('resumed');
    const ended = await client.endTraining({
      jobId: 'resumed',
      outcome: TrainingOutcome.COMPLETED,
      losses: { droppedPoints: 2n, reasons: Array.from({ length: 40 }, (_, i) => `reason ${i}`) },
    });
    const again = await client.endTraining({
      jobId: 'resumed',
      outcome: TrainingOutcome.COMPLETED,
      losses: { droppedPoints: 1000n },
    });
    for (const job of [ended.job, again.job]) {
      expect(job?.clientLosses).toMatchObject({ droppedPoints: 2n, refusedPoints: 5n, failedWrites: 0n });
      expect(job?.clientLosses?.reasons).toHaveLength(16);
      expect(job?.clientLosses?.reasons[0]).toBe('x'.repeat(1000));
    }
  });
});
