// A trainer that dies never leaves its job RUNNING (docs/verdicts.md): real trainer processes
// (verdict-trainer.ts, a raw gRPC client) against the real sidecar on a real SQLite file, with a 3 s
// lease. SIGKILL with process evidence → FAILED within 5 s; without it (another boot id) → within
// lease + 5 s; an idle trainer that only heartbeats is never lost; a lost job's own session revives
// it, another session is refused. The MLflow side and the partition: mlflow-verdicts.spec.ts.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { createClient } from '@training-callbacks/grpc-adapter';
import { EndCause, type Job, JobStatus, TaskType, TrainingCallbacks } from '@training-callbacks/proto';
import { type SidecarProcess, startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryDatabase } from './database.ts';
import { until } from './mlflow-helpers.ts';
import { parsePrometheusText, sample } from './prometheus-text.ts';
import { startTrainer } from './trainer-processes.ts';

const LEASE_S = 3;

let sidecar: SidecarProcess;
let rpc: ReturnType<typeof createClient<typeof TrainingCallbacks.method>>;

beforeAll(async () => {
  sidecar = await startSidecarProcess({ args: ['--trainer-lease', String(LEASE_S)] });
  rpc = createClient(TrainingCallbacks, sidecar.address);
});

afterAll(async () => {
  rpc?.close();
  await sidecar?.[Symbol.asyncDispose]();
});

async function job(jobId: string): Promise<Job> {
  return (await rpc.getJob({ jobId })).job!;
}

/** Polls GetJob until `done(job)`; returns the job and when it was first seen so. */
async function waitForJob(jobId: string, done: (job: Job) => boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const j = await job(jobId);
    if (done(j)) return { job: j, at: Date.now() };
    if (Date.now() > deadline)
      throw new Error(`job ${jobId} still in status ${j.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function metricsSamples() {
  const response = await fetch(`http://${sidecar.httpAddress}/metrics`);
  return parsePrometheusText(await response.text());
}

describe('verdicts on lost trainers', () => {
  it('tells clients the heartbeat interval and the lease, and reads the trainer back', async () => {
    const jobId = 'told';
    const { trainer, begun, send } = await startTrainer(sidecar.address, jobId);
    await using _ = trainer;
    expect(begun).toMatchObject({
      leaseSeconds: LEASE_S,
      heartbeatIntervalSeconds: LEASE_S / 6,
      processWatched: true,
    });
    const stored = await job(jobId);
    expect(stored.trainer).toMatchObject({ pid: begun.pid, sessionId: begun.sessionId });
    expect(stored.trainer!.startTimeTicks).toBeGreaterThan(0n);
    expect(stored.endCause).toBe(EndCause.UNSPECIFIED);
    expect(timestampDate(stored.leaseExpiresAt!).getTime()).toBeGreaterThan(Date.now());
    send('end');
    expect((await trainer.waitFor(/^ended (.*)$/))[1]).toContain('COMPLETED');
    const ended = await job(jobId);
    expect(ended.endCause).toBe(EndCause.REPORTED);
    expect(ended.leaseExpiresAt).toBeUndefined();
  });

  it('SIGKILL of a trainer it can see: FAILED within 5 s, with the process named as evidence', async () => {
    const jobId = 'killed-seen';
    const before = sample(await metricsSamples(), 'training_callbacks_trainer_process_exits_total');
    const { trainer, begun, send } = await startTrainer(sidecar.address, jobId);
    await using _ = trainer;
    expect(begun.processWatched).toBe(true);
    send('epoch 0');
    await trainer.waitFor(/^reported /);
    // A viewer following the job sees the verdict as a job event.
    const controller = new AbortController();
    // From the head, the stream's first message is a heartbeat: the kill waits for it, or a verdict
    // committed before the subscription (a busy machine) would never reach the stream.
    const { promise: subscribed, resolve: established } = Promise.withResolvers<void>();
    const watched = (async () => {
      try {
        for await (const response of rpc.watchJob({ jobId, fromHead: true }, { signal: controller.signal })) {
          if (response.heartbeat) established();
          for (const event of response.events)
            if (event.event.case === 'job' && event.event.value.endCause === EndCause.PROCESS_EXITED)
              return event.event.value;
        }
      } catch {
        // cancelled below when no such event came
      }
      established();
      return undefined;
    })();
    await subscribed;
    const killedAt = Date.now();
    trainer.child.kill('SIGKILL');
    await trainer.exited;
    const { job: lost, at } = await waitForJob(jobId, (j) => j.status !== JobStatus.RUNNING, 15_000);
    const timer = setTimeout(() => controller.abort(), 10_000);
    expect((await watched)?.endReason).toBe(lost.endReason);
    clearTimeout(timer);
    controller.abort();
    expect(at - killedAt).toBeLessThan(5000);
    expect(lost.status).toBe(JobStatus.FAILED);
    expect(lost.endCause).toBe(EndCause.PROCESS_EXITED);
    expect(lost.endReason).toMatch(
      new RegExp(
        `^lost: trainer process ${begun.pid} on host .+ exited \\(seen at \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\)$`,
      ),
    );
    expect(lost.errorMessage).toBe('');
    // Committed in the database, with the same verdict.
    expect(
      await queryDatabase(
        sidecar.dbPath,
        'select status, end_cause, end_reason from training_job where job_id = ?',
        jobId,
      ),
    ).toEqual([{ status: 'failed', end_cause: 'process_exited', end_reason: lost.endReason }]);
    expect(sample(await metricsSamples(), 'training_callbacks_trainer_process_exits_total')).toBe(before + 1);
    expect(sidecar.output.join('\n')).toContain(`[${jobId}] training failed │ ${lost.endReason}`);
  });

  it('SIGKILL without process evidence (another boot id): FAILED when the lease runs out, within lease + 5 s', async () => {
    const jobId = 'killed-unseen';
    const before = sample(await metricsSamples(), 'training_callbacks_leases_expired_total');
    const { trainer, begun } = await startTrainer(sidecar.address, jobId, [
      '--boot-id',
      '00000000-0000-4000-8000-000000000000',
    ]);
    await using _ = trainer;
    expect(begun.processWatched).toBe(false);
    await trainer.waitFor(/^heartbeat .*RUNNING/);
    const killedAt = Date.now();
    trainer.child.kill('SIGKILL');
    await trainer.exited;
    const { job: lost, at } = await waitForJob(jobId, (j) => j.status !== JobStatus.RUNNING, 20_000);
    expect(at - killedAt).toBeLessThan((LEASE_S + 5) * 1000);
    expect(lost).toMatchObject({
      status: JobStatus.FAILED,
      endCause: EndCause.LEASE_EXPIRED,
      errorMessage: '',
    });
    expect(lost.endReason).toMatch(
      /^lost: no heartbeat from the trainer for [3-9] s; last sign of life at \d{4}-\d\d-\d\dT[\d:.]+Z$/,
    );
    // The job ended at its last sign of life: the last heartbeat, before the kill.
    const lastSeen = timestampDate(lost.lastSeenAt!).getTime();
    expect(lastSeen).toBeLessThanOrEqual(killedAt);
    expect(timestampDate(lost.endedAt!).getTime()).toBe(lastSeen);
    expect(lost.endReason).toContain(new Date(lastSeen).toISOString());
    expect(sample(await metricsSamples(), 'training_callbacks_leases_expired_total')).toBe(before + 1);
    // The verdict shows in ListJobs too.
    const listed = (await rpc.listJobs({ status: JobStatus.FAILED })).jobs.find((j) => j.jobId === jobId);
    expect(listed?.endCause).toBe(EndCause.LEASE_EXPIRED);
  });

  it('a trainer that only heartbeats, for three leases without a report, is not lost', async () => {
    const jobId = 'long-epoch';
    const { trainer, send } = await startTrainer(sidecar.address, jobId, [
      '--boot-id',
      '00000000-0000-4000-8000-000000000001',
    ]);
    await using _ = trainer;
    send('epoch 0');
    await trainer.waitFor(/^reported /);
    await new Promise((r) => setTimeout(r, 3 * LEASE_S * 1000 + 500));
    const idle = await job(jobId);
    expect(idle.status).toBe(JobStatus.RUNNING);
    expect(timestampDate(idle.leaseExpiresAt!).getTime()).toBeGreaterThan(Date.now());
    send('epoch 1');
    await trainer.waitFor(/^reported \{"epoch":1\}/);
    send('end');
    expect((await trainer.waitFor(/^ended (.*)$/))[1]).toContain('COMPLETED');
  });

  it("revives a lost job on its own session's report; another session's report is refused", async () => {
    const jobId = 'silent-then-back';
    const { trainer, begun, send } = await startTrainer(sidecar.address, jobId, [
      '--boot-id',
      '00000000-0000-4000-8000-000000000002',
    ]);
    await using _ = trainer;
    await trainer.waitFor(/^heartbeat .*RUNNING/);
    send('silent');
    await waitForJob(jobId, (j) => j.endCause === EndCause.LEASE_EXPIRED, 20_000);
    // Another session (or none) cannot report into the lost job: it must resume it.
    for (const sessionId of ['', 'someone-else']) {
      await expect(
        rpc.endEpoch({ jobId, epoch: 5, metrics: { accuracy: 0.9 }, sessionId }),
      ).rejects.toMatchObject({
        code: 9,
        message: expect.stringMatching(
          /was ended by the sidecar: lost: no heartbeat.*call BeginTraining again to resume/,
        ),
      });
      const beat = await rpc.heartbeat({ jobId, sessionId });
      expect(beat).toMatchObject({
        status: JobStatus.FAILED,
        endCause: EndCause.LEASE_EXPIRED,
        revived: false,
      });
    }
    expect((await rpc.listEpochs({ jobId })).epochs).toEqual([]);
    // The trainer's own session: its next report revives the job, then it ends it as reported.
    send('epoch 0');
    await trainer.waitFor(/^reported /);
    const revived = await job(jobId);
    expect(revived).toMatchObject({
      status: JobStatus.RUNNING,
      endCause: EndCause.UNSPECIFIED,
      endReason: '',
    });
    expect(revived.endedAt).toBeUndefined();
    expect(sidecar.output.join('\n')).toContain(
      `[${jobId}] revived: its trainer (session ${begun.sessionId}) is back`,
    );
    send('end');
    expect((await trainer.waitFor(/^ended (.*)$/))[1]).toContain('COMPLETED');
    expect((await job(jobId)).endCause).toBe(EndCause.REPORTED);
  });

  it('after a sidecar restart, watches the running trainers again (the verdict needs no new BeginTraining)', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'tc-verdict-restart-'));
    try {
      const first = await startSidecarProcess({ dataDir, args: ['--trainer-lease', String(LEASE_S)] });
      const jobId = 'survives-restart';
      const { trainer, begun } = await startTrainer(first.address, jobId);
      await using _ = trainer;
      expect(begun.processWatched).toBe(true);
      await first.stop('SIGKILL');
      await using second = await startSidecarProcess({
        dataDir,
        listen: first.address,
        args: ['--trainer-lease', String(LEASE_S)],
      });
      // The trainer's heartbeats reach the new sidecar (its channel reconnects to the same address).
      const beats = trainer.output.length;
      await until(() => trainer.output.slice(beats).some((l) => l.includes('"status":"RUNNING"')), 30_000);
      const reader = createClient(TrainingCallbacks, second.address);
      try {
        const killedAt = Date.now();
        trainer.child.kill('SIGKILL');
        await trainer.exited;
        for (;;) {
          const j = (await reader.getJob({ jobId })).job!;
          if (j.status !== JobStatus.RUNNING) {
            expect(j.endCause).toBe(EndCause.PROCESS_EXITED);
            break;
          }
          expect(Date.now() - killedAt).toBeLessThan(5000);
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        reader.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('refuses a bad trainer or session id with INVALID_ARGUMENT and writes nothing', async () => {
    await expect(
      rpc.beginTraining({
        jobId: 'bad-trainer',
        taskType: TaskType.IMAGE_CLASSIFICATION,
        trainer: { hostname: 'h'.repeat(256) },
      }),
    ).rejects.toMatchObject({
      code: 3,
      message: expect.stringMatching(/trainer.hostname is 256 characters long; the limit is 255/),
    });
    await expect(rpc.getJob({ jobId: 'bad-trainer' })).rejects.toMatchObject({ code: 5 });
    await expect(rpc.heartbeat({ jobId: 'told', sessionId: 'a\u0000b' })).rejects.toMatchObject({
      code: 3,
      message: expect.stringMatching(/session_id "a\\u0000b" contains control characters/),
    });
    await expect(rpc.heartbeat({ jobId: 'nobody', sessionId: '' })).rejects.toMatchObject({ code: 5 });
  });
});
