// Every exit path of a TypeScript trainer ends its job right: real trainer processes
// (src/testing/exit-trainer.ts, using this SDK) against the real sidecar process. Each never calls
// onTrainEnd; the job's final status and message are read back with GetJob, and the process must
// end as it would have without the SDK (exit code, signal, the crash printed).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createClient } from '@training-callbacks/grpc-adapter';
import { EndCause, JobStatus, TrainingCallbacks as Service } from '@training-callbacks/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SidecarProcess, startSidecarProcess } from './testing/sidecar.ts';
import type { TrainingCallbacksClient } from './training-callbacks.ts';

const TRAINER = fileURLToPath(new URL('./testing/exit-trainer.ts', import.meta.url));

let sidecar: SidecarProcess;
let reader: TrainingCallbacksClient;
let jobs = 0;

beforeAll(async () => {
  sidecar = await startSidecarProcess({ args: ['--quiet'] });
  reader = createClient(Service, sidecar.address);
}, 60_000);

afterAll(async () => {
  reader?.close();
  await sidecar?.[Symbol.asyncDispose]();
});

interface Trainer {
  readonly jobId: string;
  /** Resolves once the trainer printed "training". */
  readonly ready: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>;
  kill(signal: NodeJS.Signals): void;
}

function startTrainer(mode: string, env: NodeJS.ProcessEnv = {}): Trainer {
  const jobId = `exit-${mode}-${process.pid}-${++jobs}`;
  const child = spawn(process.execPath, ['--conditions=@training-callbacks/source', TRAINER, mode], {
    env: { ...process.env, ...env, TRAINING_CALLBACKS_ADDRESS: sidecar.address, JOB_ID: jobId },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  const collect = (chunk: Buffer) => {
    output += chunk;
    if (output.includes('training\n')) markReady();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>(
    (resolve) => child.on('exit', (code, signal) => resolve({ code, signal, output })),
  );
  return { jobId, ready, exited, kill: (signal) => child.kill(signal) };
}

async function jobOf(jobId: string) {
  const { job } = await reader.getJob({ jobId });
  return job;
}

// Each test starts a Node process (and the exit path another): generous on a loaded machine.
describe('a trainer process that ends without onTrainEnd', { timeout: 60_000 }, () => {
  it('process.exit(3): FAILED with the exit code; the queued epoch reports are still delivered, the batch points counted', async () => {
    const trainer = startTrainer('exit');
    const { code } = await trainer.exited;
    expect(code).toBe(3);
    const job = await jobOf(trainer.jobId);
    expect(job).toMatchObject({
      status: JobStatus.FAILED,
      endCause: EndCause.REPORTED,
      errorMessage: 'the process exited with code 3 before onTrainEnd',
      epochsReported: 1,
    });
    expect(job?.clientLosses).toMatchObject({ failedWrites: 0n, droppedPoints: 100n });
    expect(job?.clientLosses?.reasons).toEqual(['batch points not delivered before the process exited']);
  });

  it('process.exit(3) with a queued report the sidecar refuses: the refusal is counted in the end it sends', async () => {
    const trainer = startTrainer('exit-refused');
    expect((await trainer.exited).code).toBe(3);
    const job = await jobOf(trainer.jobId);
    expect(job).toMatchObject({ status: JobStatus.FAILED, endCause: EndCause.REPORTED, epochsReported: 1 });
    expect(job?.clientLosses?.failedWrites).toBe(1n);
    expect(job?.clientLosses?.reasons).toContain(
      '1 of 3 reports sent as the process exited not acknowledged',
    );
  });

  it('the event loop drains (exit code 0): COMPLETED, with the queued reports delivered first', async () => {
    const trainer = startTrainer('drain');
    expect((await trainer.exited).code).toBe(0);
    const job = await jobOf(trainer.jobId);
    expect(job).toMatchObject({
      status: JobStatus.COMPLETED,
      endCause: EndCause.REPORTED,
      errorMessage: '',
      epochsReported: 1,
    });
    expect(job?.clientLosses).toBeUndefined();
    const { blocks } = await reader.listBatchMetrics({ jobId: trainer.jobId });
    expect(blocks.reduce((n, b) => n + b.steps.length, 0)).toBe(100);
  });

  it('the event loop drains with process.exitCode 2: FAILED with the exit code', async () => {
    const trainer = startTrainer('drain-failed');
    expect((await trainer.exited).code).toBe(2);
    expect(await jobOf(trainer.jobId)).toMatchObject({
      status: JobStatus.FAILED,
      endCause: EndCause.REPORTED,
      errorMessage: 'the process exited with code 2 before onTrainEnd',
      epochsReported: 1,
    });
  });

  it('an uncaught exception: FAILED with its message; the crash is printed and the exit code stays 1', async () => {
    const trainer = startTrainer('uncaught');
    const { code, output } = await trainer.exited;
    expect(code).toBe(1);
    expect(output).toMatch(/Error: CUDA out of memory\n\s+at /);
    expect(await jobOf(trainer.jobId)).toMatchObject({
      status: JobStatus.FAILED,
      endCause: EndCause.REPORTED,
      errorMessage: 'uncaught exception: Error: CUDA out of memory',
      epochsReported: 1,
    });
  });

  it('an unhandled rejection: FAILED with its message; the exit code stays 1', async () => {
    const trainer = startTrainer('rejection');
    const { code, output } = await trainer.exited;
    expect(code).toBe(1);
    expect(output).toContain('data loader died');
    expect(await jobOf(trainer.jobId)).toMatchObject({
      status: JobStatus.FAILED,
      endCause: EndCause.REPORTED,
      errorMessage: 'unhandled rejection: Error: data loader died',
      epochsReported: 1,
    });
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal}: CANCELLED, the queue flushed, and the process still ends by the signal`, async () => {
      const trainer = startTrainer('wait');
      await trainer.ready;
      trainer.kill(signal);
      const { code, signal: by } = await trainer.exited;
      expect({ code, by }).toEqual({ code: null, by: signal });
      expect(await jobOf(trainer.jobId)).toMatchObject({
        status: JobStatus.CANCELLED,
        endCause: EndCause.REPORTED,
        errorMessage: `terminated by ${signal}`,
        epochsReported: 1,
      });
    });
  }

  it("SIGTERM with the application's own handler: that handler decides; its exit ends the job CANCELLED", async () => {
    const trainer = startTrainer('own-handler');
    await trainer.ready;
    trainer.kill('SIGTERM');
    const { code, output } = await trainer.exited;
    expect(output).toContain('own handler ran');
    expect(code).toBe(143);
    expect(await jobOf(trainer.jobId)).toMatchObject({
      status: JobStatus.CANCELLED,
      endCause: EndCause.REPORTED,
      errorMessage: 'the process exited after SIGTERM without onTrainEnd',
    });
  });

  it("exitHooks: false installs nothing: the client does not end the job; the sidecar's verdict does, from the process evidence it sent", async () => {
    const trainer = startTrainer('exit', { EXIT_HOOKS: '0' });
    expect((await trainer.exited).code).toBe(3);
    // The sidecar watches the trainer's pid (same boot id): it gives its verdict once the process is gone.
    let job = await jobOf(trainer.jobId);
    for (const started = Date.now(); job?.status === JobStatus.RUNNING && Date.now() - started < 45_000; ) {
      await new Promise((r) => setTimeout(r, 100));
      job = await jobOf(trainer.jobId);
    }
    expect(job).toMatchObject({ status: JobStatus.FAILED, endCause: EndCause.PROCESS_EXITED });
    expect(job?.endReason).toMatch(/^lost: trainer process \d+ on host .* exited/);
  });
});
