// Two services over one database file stand for two sidecars serving the same job (a retry that lands
// on another replica): what one sidecar remembers must not let a report in that the database refuses.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { Status } from '@training-callbacks/grpc-adapter';
import {
  BeginEpochRequestSchema,
  BeginTrainingRequestSchema,
  EndEpochRequestSchema,
  EndTrainingRequestSchema,
  HeartbeatRequestSchema,
  JobStatus,
  MetricFormat,
  MetricTier,
  ReportBatchMetricsRequestSchema,
  TaskType,
  TrainingOutcome,
  UploadArtifactRequestSchema,
} from '@training-callbacks/proto';
import { openStore, type Store } from '@training-callbacks/store';
import { sampleJob } from '@training-callbacks/store/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createArtifactFiles } from '../artifacts.ts';
import { createFailureMapper } from '../failure-status.ts';
import { createTrainingCallbacksService } from '../service.ts';

let dir: string;
let dbPath: string;
const stores: Store[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'shared-database-spec-'));
  dbPath = join(dir, 'training-callbacks.sqlite');
});

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One sidecar's service: its own store connection and caches, the shared file. */
async function sidecar(wrap: (store: Store) => Store = (store) => store) {
  const opened = await openStore({ dbPath });
  stores.push(opened);
  const store = wrap(opened);
  const artifacts = createArtifactFiles({ store: join(dir, 'artifacts'), roots: [dir], database: dbPath });
  const { handlers, verdicts } = createTrainingCallbacksService({
    store,
    artifacts,
    log: () => {},
    bootId: '',
  });
  return { store, handlers, verdicts };
}

const call = { peer: 'test', signal: new AbortController().signal } as never;
const endEpoch = (epoch: number, accuracy: number) =>
  create(EndEpochRequestSchema, { jobId: 'job-s', epoch, metrics: { accuracy }, sessionId: 's1' });

const mapFailure = (error: unknown) => createFailureMapper({ dbPath, artifactStore: dir })(error);

/** The status (and message) a call's failure answers with, as the sidecar's error edge maps it. */
async function refusal(call: Promise<unknown>): Promise<{ code: number; message: string }> {
  const error = await call.then(
    () => expect.fail('the call succeeded'),
    (e: unknown) => e,
  );
  const mapped = (error as { code?: number }).code !== undefined ? (error as never) : mapFailure(error);
  return { code: (mapped as { code: number }).code, message: (mapped as Error).message };
}

const endTraining = (outcome: TrainingOutcome, errorMessage = '') =>
  create(EndTrainingRequestSchema, { jobId: 'job-s', outcome, errorMessage, sessionId: 's1' });

const beginTraining = (startEpoch = 0) =>
  create(BeginTrainingRequestSchema, {
    jobId: 'job-s',
    taskType: TaskType.IMAGE_CLASSIFICATION,
    framework: 'timm',
    modelName: 'resnet50',
    startEpoch,
    trainer: { sessionId: 's1' },
  });

async function* stream<T>(...messages: T[]) {
  yield* messages;
}

const batch = (firstStep: number) =>
  create(ReportBatchMetricsRequestSchema, {
    jobId: 'job-s',
    sessionId: 's1',
    blocks: [
      { epoch: 0, names: ['loss'], steps: [BigInt(firstStep), BigInt(firstStep + 1)], values: [0.5, 0.4] },
    ],
  });

describe('two sidecars on one database', () => {
  it('refuses a batch stream and an artifact sent to one sidecar after the other ended the job', async () => {
    const a = await sidecar();
    const b = await sidecar();
    await a.handlers.beginTraining(beginTraining(), call);
    // A stores a stream and now remembers the job as running.
    await a.handlers.reportBatchMetrics(stream(batch(0)), call);
    await b.handlers.endTraining(endTraining(TrainingOutcome.CANCELLED), call);
    const refused = await refusal(a.handlers.reportBatchMetrics(stream(batch(2)), call));
    expect(refused.code).toBe(Status.FAILED_PRECONDITION);
    expect(refused.message).toMatch(/has ended \(cancelled\); reports after the end are refused/);
    const content = new TextEncoder().encode('weights');
    const { createHash } = await import('node:crypto');
    const upload = a.handlers.uploadArtifact(
      stream(
        create(UploadArtifactRequestSchema, {
          part: {
            case: 'header',
            value: {
              jobId: 'job-s',
              artifactPath: 'model.bin',
              sizeBytes: BigInt(content.length),
              sha256: createHash('sha256').update(content).digest('hex'),
              sessionId: 's1',
            },
          },
        }),
        create(UploadArtifactRequestSchema, { part: { case: 'chunk', value: content } }),
      ),
      call,
    );
    expect((await refusal(upload)).code).toBe(Status.FAILED_PRECONDITION);
    expect((await b.store.listBatchBlocks('job-s')).map((block) => block.steps[0])).toEqual([0n]);
    expect(await b.store.listArtifacts('job-s')).toEqual([]);
  });

  it('ends a job one sidecar remembers as ended after the other resumed it', async () => {
    const a = await sidecar();
    const b = await sidecar();
    await a.handlers.beginTraining(beginTraining(), call);
    await a.handlers.endTraining(endTraining(TrainingOutcome.FAILED, 'OOM'), call);
    // The trainer restarts; its BeginTraining lands on B, which resumes the job.
    expect((await b.handlers.beginTraining(beginTraining(3), call)).resumed).toBe(true);
    // A remembers the job as failed, but the database says it runs: the end is the resumed run's.
    const ended = await a.handlers.endTraining(endTraining(TrainingOutcome.COMPLETED), call);
    expect(ended.job?.status).toBe(JobStatus.COMPLETED);
    expect(await b.store.getJob('job-s')).toMatchObject({ status: 'completed', startEpoch: 3 });
  });

  it('answers an EndTraining repeated on the other sidecar as a repeat, another outcome with FAILED_PRECONDITION', async () => {
    const a = await sidecar();
    const b = await sidecar();
    await a.handlers.beginTraining(beginTraining(), call);
    // B serves a heartbeat and now remembers the job as running.
    await b.handlers.heartbeat(create(HeartbeatRequestSchema, { jobId: 'job-s', sessionId: 's1' }), call);
    await a.handlers.endTraining(endTraining(TrainingOutcome.COMPLETED), call);
    const repeated = await b.handlers.endTraining(endTraining(TrainingOutcome.COMPLETED), call);
    expect(repeated.job?.status).toBe(JobStatus.COMPLETED);
    const other = await refusal(b.handlers.endTraining(endTraining(TrainingOutcome.FAILED, 'late'), call));
    expect(other.code).toBe(Status.FAILED_PRECONDITION);
    expect(other.message).toMatch(/already ended as completed; it cannot end again as failed/);
    expect(await a.store.getJob('job-s')).toMatchObject({ status: 'completed', errorMessage: '' });
    // A resume on either sidecar of the completed job is refused alike.
    expect((await refusal(b.handlers.beginTraining(beginTraining(1), call))).message).toMatch(
      /already completed/,
    );
  });

  it('does not resume a job that completed on the other sidecar between the read and the resume', async () => {
    const b = await sidecar();
    // A's store lets B resume and complete the job between A's read of it and A's resume: A decided
    // on "failed", which no longer holds when its resume reaches the database.
    let raced = false;
    const a = await sidecar(
      (store) =>
        new Proxy(store, {
          get(target, name) {
            if (name === 'reopenJob') {
              return async (...args: Parameters<Store['reopenJob']>) => {
                if (!raced) {
                  raced = true;
                  expect((await b.handlers.beginTraining(beginTraining(2), call)).resumed).toBe(true);
                  await b.handlers.endTraining(endTraining(TrainingOutcome.COMPLETED), call);
                }
                return target.reopenJob(...args);
              };
            }
            const value = Reflect.get(target, name) as unknown;
            return typeof value === 'function' ? value.bind(target) : value;
          },
        }),
    );
    await b.handlers.beginTraining(beginTraining(), call);
    await b.handlers.endTraining(endTraining(TrainingOutcome.FAILED, 'OOM'), call);
    // A decided to resume a failed job; the job completed meanwhile: A answers as for a completed job.
    const refused = await refusal(a.handlers.beginTraining(beginTraining(2), call));
    expect(raced).toBe(true);
    expect(refused.code).toBe(Status.FAILED_PRECONDITION);
    expect(refused.message).toMatch(/already completed/);
    expect(await b.store.getJob('job-s')).toMatchObject({ status: 'completed', startEpoch: 2 });
  });

  it("rebuilds one sidecar's classifier once a read of the job shows the custom metrics the other resumed it with", async () => {
    const a = await sidecar();
    const b = await sidecar();
    await a.handlers.beginTraining(beginTraining(), call);
    const f1 = (epoch: number) =>
      create(EndEpochRequestSchema, { jobId: 'job-s', epoch, metrics: { f1: 1.5 }, sessionId: 's1' });
    const tierOf = async (epoch: number) =>
      (await a.handlers.endEpoch(f1(epoch), call)).verdicts?.find((v) => v.reportedName === 'f1')?.tier;
    // No definition yet: f1 is a plain custom metric, any value.
    expect(await tierOf(0)).toBe(MetricTier.CUSTOM);
    // The trainer restarts and resumes on B, now defining f1 as a percent (a fraction in [0, 1]).
    await b.handlers.beginTraining(
      create(BeginTrainingRequestSchema, {
        jobId: 'job-s',
        taskType: TaskType.IMAGE_CLASSIFICATION,
        startEpoch: 1,
        trainer: { sessionId: 's1' },
        customMetrics: [{ name: 'f1', label: 'F1', format: MetricFormat.PERCENT, higherIsBetter: true }],
      }),
      call,
    );
    // A's next read of the job (here its heartbeat; any lease renewal, at least once per heartbeat
    // interval, does it) shows other custom metrics: A classifies with the new definition.
    await a.handlers.heartbeat(create(HeartbeatRequestSchema, { jobId: 'job-s', sessionId: 's1' }), call);
    expect(await tierOf(1)).toBe(MetricTier.REJECTED);
  });

  it("revives on one sidecar a job the other's sweeper declared lost, when its own session reports", async () => {
    const a = await sidecar();
    const b = await sidecar();
    await a.handlers.beginTraining(beginTraining(), call);
    await a.handlers.reportBatchMetrics(stream(batch(0)), call);
    // B's sweeper, a lease later, finds no sign of life: the job is lost. A still remembers it running.
    const lost = await b.verdicts.sweep(Date.now() + 10 * 60_000);
    expect(lost.map((j) => j.status)).toEqual(['failed']);
    // Another session's report is refused with the verdict named, and stores nothing.
    const other = create(ReportBatchMetricsRequestSchema, { ...batch(2), sessionId: 'someone-else' });
    const refused = await refusal(a.handlers.reportBatchMetrics(stream(other), call));
    expect(refused.code).toBe(Status.FAILED_PRECONDITION);
    expect(refused.message).toMatch(/was ended by the sidecar: lost: no heartbeat/);
    // The trainer's own session reports on A: the verdict was wrong, the job runs again, stored.
    expect((await a.handlers.reportBatchMetrics(stream(batch(4)), call)).acceptedPoints).toBe(2n);
    const revived = await b.store.getJob('job-s');
    expect([revived?.status, revived?.endCause]).toEqual(['running', undefined]);
    expect((await b.store.listBatchBlocks('job-s')).map((block) => block.steps[0])).toEqual([0n, 4n]);
  });

  it("revives through an epoch report (EndEpoch, BeginEpoch) a job the other's sweeper declared lost", async () => {
    const a = await sidecar();
    const b = await sidecar();
    await a.handlers.beginTraining(beginTraining(), call);
    await a.handlers.endEpoch(endEpoch(0, 0.5), call);
    expect((await b.verdicts.sweep(Date.now() + 10 * 60_000)).map((j) => j.status)).toEqual(['failed']);
    // Another session's epoch is refused with the verdict named.
    const other = create(EndEpochRequestSchema, { ...endEpoch(1, 0.9), sessionId: 'someone-else' });
    expect((await refusal(a.handlers.endEpoch(other, call))).message).toMatch(
      /was ended by the sidecar: lost/,
    );
    // The trainer's own session: the job runs again and the epoch is stored, the best moved on.
    const answer = await a.handlers.endEpoch(endEpoch(1, 0.9), call);
    expect([answer.isBest, answer.best?.epoch]).toEqual([true, 1]);
    const revived = await b.store.getJob('job-s');
    expect([revived?.status, revived?.bestEpoch, revived?.epochsReported]).toEqual(['running', 1, 2]);
    // The same for a begin: lost again, then its session's BeginEpoch revives it.
    await b.verdicts.sweep(Date.now() + 20 * 60_000);
    await a.handlers.beginEpoch(
      create(BeginEpochRequestSchema, { jobId: 'job-s', epoch: 2, sessionId: 's1' }),
      call,
    );
    expect((await b.store.getJob('job-s'))?.status).toBe('running');
  });

  it('refuses an epoch reported to one sidecar after the other ended the job', async () => {
    const a = await sidecar();
    const b = await sidecar();
    await a.store.createOrGetJob(sampleJob('job-s'));
    // A serves epoch 0 and now remembers the job as running.
    await a.handlers.endEpoch(endEpoch(0, 0.5), call);
    await b.handlers.endTraining(
      create(EndTrainingRequestSchema, { jobId: 'job-s', outcome: TrainingOutcome.COMPLETED }),
      call,
    );
    const refused = await a.handlers.endEpoch(endEpoch(1, 0.9), call).catch((error: unknown) => error);
    const mapped = createFailureMapper({ dbPath, artifactStore: dir })(refused);
    expect(mapped?.code).toBe(Status.FAILED_PRECONDITION);
    expect(mapped?.message).toMatch(/has ended \(completed\); reports after the end are refused/);
    expect((await b.store.listEpochs('job-s')).map((e) => e.epoch)).toEqual([0]);
    expect(await b.store.getJob('job-s')).toMatchObject({ status: 'completed', bestEpoch: 0 });
  });
});
