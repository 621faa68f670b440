// Every bad input gets the right gRPC status, a message that says what to fix, and writes nothing:
// the database (the SQLite file, or PostgreSQL in the PostgreSQL run) is compared, row by row, before
// and after each refused call. Also request bytes that do not decode at all.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, credentials } from '@grpc/grpc-js';
import {
  createClient,
  RpcError,
  type ServiceClient,
  Status,
  type StatusCode,
} from '@training-callbacks/grpc-adapter';
import { TaskType, TrainingCallbacks, TrainingOutcome } from '@training-callbacks/proto';
import { type SidecarProcess, startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snapshotDatabase } from './database.ts';

type Methods = typeof TrainingCallbacks extends { method: infer M } ? M : never;

let sidecar: SidecarProcess;
let client: ServiceClient<Methods>;
let artifactRoot: string;
let outside: string;

beforeAll(async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tc-bad-input-'));
  artifactRoot = path.join(dir, 'shared');
  outside = path.join(dir, 'elsewhere');
  await mkdir(artifactRoot, { recursive: true });
  await mkdir(outside, { recursive: true });
  await writeFile(path.join(outside, 'secret.txt'), 'not for the sidecar');
  sidecar = await startSidecarProcess({
    args: ['--artifact-root', artifactRoot, '--max-message-bytes', '1048576'],
  });
  client = createClient(TrainingCallbacks, sidecar.address);
  // One running job and one ended job to report against.
  await client.beginTraining({ jobId: 'running', taskType: TaskType.IMAGE_CLASSIFICATION });
  await client.endEpoch({ jobId: 'running', epoch: 0, metrics: { accuracy: 0.5 } });
  await client.beginTraining({ jobId: 'ended', taskType: TaskType.OBJECT_DETECTION });
  await client.endTraining({ jobId: 'ended', outcome: TrainingOutcome.COMPLETED });
});

afterAll(async () => {
  client?.close();
  await sidecar?.[Symbol.asyncDispose]();
});

/** Runs a call that must be refused; checks its status, its message, and that the database is unchanged. */
async function refused(call: () => Promise<unknown>, code: StatusCode, message: RegExp): Promise<void> {
  const before = await snapshotDatabase(sidecar.dbPath);
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the call should have been refused').toBeInstanceOf(RpcError);
  expect(Status[(error as RpcError).code]).toBe(Status[code]);
  expect((error as RpcError).message).toMatch(message);
  expect(await snapshotDatabase(sidecar.dbPath)).toBe(before);
}

describe('BeginTraining refuses', () => {
  it('an unspecified task type', () =>
    refused(
      () => client.beginTraining({ jobId: 'j1' }),
      Status.INVALID_ARGUMENT,
      /task_type .*TASK_TYPE_IMAGE_CLASSIFICATION/,
    ));
  it('an unknown task type number', () =>
    refused(
      () => client.beginTraining({ jobId: 'j1', taskType: 42 as TaskType }),
      Status.INVALID_ARGUMENT,
      /task_type 42/,
    ));
  it('an empty job id', () =>
    refused(
      () => client.beginTraining({ jobId: '', taskType: TaskType.IMAGE_CLASSIFICATION }),
      Status.INVALID_ARGUMENT,
      /job_id is empty/,
    ));
  it('an oversized job id', () =>
    refused(
      () => client.beginTraining({ jobId: 'x'.repeat(129), taskType: TaskType.IMAGE_CLASSIFICATION }),
      Status.INVALID_ARGUMENT,
      /129 characters.*limit is 128/,
    ));
  it('a job id with control characters', () =>
    refused(
      () => client.beginTraining({ jobId: 'job\u0000x', taskType: TaskType.IMAGE_CLASSIFICATION }),
      Status.INVALID_ARGUMENT,
      /control characters/,
    ));
  it('a negative start epoch', () =>
    refused(
      () => client.beginTraining({ jobId: 'j1', taskType: TaskType.IMAGE_CLASSIFICATION, startEpoch: -1 }),
      Status.INVALID_ARGUMENT,
      /start_epoch is -1/,
    ));
  it('a custom metric that redefines a standard one', () =>
    refused(
      () =>
        client.beginTraining({
          jobId: 'j1',
          taskType: TaskType.IMAGE_CLASSIFICATION,
          customMetrics: [{ name: 'accuracy', label: 'Mine' }],
        }),
      Status.INVALID_ARGUMENT,
      /custom_metrics/,
    ));
  it('the same job id with another task type', () =>
    refused(
      () => client.beginTraining({ jobId: 'running', taskType: TaskType.POSE_ESTIMATION }),
      Status.FAILED_PRECONDITION,
      /task type image_classification/,
    ));
  it('resuming a completed job', () =>
    refused(
      () => client.beginTraining({ jobId: 'ended', taskType: TaskType.OBJECT_DETECTION }),
      Status.FAILED_PRECONDITION,
      /already completed/,
    ));
  it('an oversized param value', () =>
    refused(
      () =>
        client.beginTraining({
          jobId: 'j1',
          taskType: TaskType.IMAGE_CLASSIFICATION,
          params: { lr: 'x'.repeat(6001) },
        }),
      Status.INVALID_ARGUMENT,
      /params\["lr"\].*6000/,
    ));
  it('a run tag with a reserved prefix, on a new job and on a resume', async () => {
    for (const jobId of ['j1', 'running'])
      for (const key of ['mlflow.runName', 'training_callbacks.job_id'])
        await refused(
          () =>
            client.beginTraining({
              jobId,
              taskType: TaskType.IMAGE_CLASSIFICATION,
              tags: { team: 'vision', [key]: 'x' },
            }),
          Status.INVALID_ARGUMENT,
          new RegExp(`tags key "${key.replace('.', '\\.')}" starts with the reserved prefix`),
        );
  });
  it('a run tag key MLflow would refuse', () =>
    refused(
      () =>
        client.beginTraining({
          jobId: 'j1',
          taskType: TaskType.IMAGE_CLASSIFICATION,
          tags: { 'mAP(B)': 'x' },
        }),
      Status.INVALID_ARGUMENT,
      /tags key "mAP\(B\)" may only contain/,
    ));
  it('an oversized run tag key and value (in code points)', async () => {
    await refused(
      () =>
        client.beginTraining({
          jobId: 'j1',
          taskType: TaskType.IMAGE_CLASSIFICATION,
          tags: { ['é'.repeat(251)]: 'x' },
        }),
      Status.INVALID_ARGUMENT,
      /is 251 characters long; the limit is 250/,
    );
    await refused(
      () =>
        client.beginTraining({
          jobId: 'j1',
          taskType: TaskType.IMAGE_CLASSIFICATION,
          tags: { note: '😀'.repeat(5001) },
        }),
      Status.INVALID_ARGUMENT,
      /tags\["note"\] is 5001 characters long; the limit is 5000/,
    );
  });
  it('an oversized or control-character run name', async () => {
    await refused(
      () =>
        client.beginTraining({
          jobId: 'running',
          taskType: TaskType.IMAGE_CLASSIFICATION,
          runName: 'r'.repeat(251),
        }),
      Status.INVALID_ARGUMENT,
      /run_name is 251 characters long; the limit is 250/,
    );
    await refused(
      () => client.beginTraining({ jobId: 'j1', taskType: TaskType.IMAGE_CLASSIFICATION, runName: 'a\nb' }),
      Status.INVALID_ARGUMENT,
      /run_name .* contains control characters/,
    );
  });
});

describe('epoch reports refuse', () => {
  it('a negative epoch (EndEpoch)', () =>
    refused(
      () => client.endEpoch({ jobId: 'running', epoch: -1, metrics: { accuracy: 0.6 } }),
      Status.INVALID_ARGUMENT,
      /epoch is -1/,
    ));
  it('a negative epoch (BeginEpoch)', () =>
    refused(
      () => client.beginEpoch({ jobId: 'running', epoch: -3 }),
      Status.INVALID_ARGUMENT,
      /epoch is -3/,
    ));
  it('an epoch for an unknown job', () =>
    refused(
      () => client.endEpoch({ jobId: 'nobody', epoch: 0, metrics: { accuracy: 0.6 } }),
      Status.NOT_FOUND,
      /BeginTraining/,
    ));
  it('BeginEpoch for an unknown job', () =>
    refused(() => client.beginEpoch({ jobId: 'nobody', epoch: 0 }), Status.NOT_FOUND, /not found/));
  it('an epoch after the job ended', () =>
    refused(
      () => client.endEpoch({ jobId: 'ended', epoch: 1, metrics: { mAP50: 0.6 } }),
      Status.FAILED_PRECONDITION,
      /has ended/,
    ));
  it('BeginEpoch after the job ended', () =>
    refused(() => client.beginEpoch({ jobId: 'ended', epoch: 1 }), Status.FAILED_PRECONDITION, /has ended/));
  it('an empty metric name', () =>
    refused(
      () => client.endEpoch({ jobId: 'running', epoch: 1, metrics: { '': 1, accuracy: 0.7 } }),
      Status.INVALID_ARGUMENT,
      /metric name ""/,
    ));
  it('an oversized metric name', () =>
    refused(
      () => client.endEpoch({ jobId: 'running', epoch: 1, metrics: { ['m'.repeat(251)]: 1 } }),
      Status.INVALID_ARGUMENT,
      /metric name .*250/,
    ));
  it('a metric name with control characters', () =>
    refused(
      () => client.endEpoch({ jobId: 'running', epoch: 1, metrics: { 'acc\nuracy': 0.7 } }),
      Status.INVALID_ARGUMENT,
      /control/,
    ));
  it('too many metrics in one call', () =>
    refused(
      () =>
        client.endEpoch({
          jobId: 'running',
          epoch: 1,
          metrics: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`m${i}`, i])),
        }),
      Status.INVALID_ARGUMENT,
      /1001 metrics; at most 1000/,
    ));
  it('an oversized message', () =>
    refused(
      () => client.endEpoch({ jobId: 'r'.repeat(2_000_000), epoch: 1, metrics: { custom: 1 } }),
      Status.RESOURCE_EXHAUSTED,
      /message/i,
    ));
  it('batch metrics after the job ended', () =>
    refused(
      () =>
        client.reportBatchMetrics([
          { jobId: 'ended', blocks: [{ epoch: 0, names: ['loss'], steps: [1n], values: [0.5] }] },
        ]),
      Status.FAILED_PRECONDITION,
      /has ended/,
    ));
  it('batch metrics for an unknown job', () =>
    refused(
      () =>
        client.reportBatchMetrics([
          { jobId: 'nobody', blocks: [{ epoch: 0, names: ['loss'], steps: [1n], values: [0.5] }] },
        ]),
      Status.NOT_FOUND,
      /not found/,
    ));
  it('a batch stream that switches jobs', () =>
    refused(
      () =>
        client.reportBatchMetrics([
          { jobId: 'running', blocks: [] },
          { jobId: 'ended', blocks: [{ epoch: 0, names: ['loss'], steps: [1n], values: [0.5] }] },
        ]),
      Status.INVALID_ARGUMENT,
      /same job/,
    ));
});

describe('EndTraining refuses', () => {
  it('an unset outcome', () =>
    refused(() => client.endTraining({ jobId: 'running' }), Status.INVALID_ARGUMENT, /outcome must be set/));
  it('an unknown job', () =>
    refused(
      () => client.endTraining({ jobId: 'nobody', outcome: TrainingOutcome.COMPLETED }),
      Status.NOT_FOUND,
      /not found/,
    ));
  it('ending an ended job with another outcome', () =>
    refused(
      () => client.endTraining({ jobId: 'ended', outcome: TrainingOutcome.FAILED, errorMessage: 'x' }),
      Status.FAILED_PRECONDITION,
      /already ended as completed/,
    ));
});

describe('artifacts refuse', () => {
  it('a path outside the artifact roots', () =>
    refused(
      () =>
        client.logArtifact({ jobId: 'running', path: path.join(outside, 'secret.txt'), artifactPath: 'x' }),
      Status.PERMISSION_DENIED,
      /outside the sidecar's artifact roots/,
    ));
  it('a path escaping a root through ".."', () =>
    refused(
      () =>
        client.logArtifact({
          jobId: 'running',
          path: `${artifactRoot}/../elsewhere/secret.txt`,
          artifactPath: 'x',
        }),
      Status.PERMISSION_DENIED,
      /outside/,
    ));
  it('a file the sidecar cannot see (the volume is not shared): the client should upload instead', () =>
    refused(
      () =>
        client.logArtifact({ jobId: 'running', path: path.join(artifactRoot, 'nope.pt'), artifactPath: 'x' }),
      Status.FAILED_PRECONDITION,
      /does not exist on the sidecar's side.*UploadArtifact/,
    ));
  it('an artifact path with ".."', () =>
    refused(
      () =>
        client.logArtifact({
          jobId: 'running',
          path: path.join(artifactRoot, 'nope.pt'),
          artifactPath: '../up',
        }),
      Status.INVALID_ARGUMENT,
      /must not contain/,
    ));
  it('an upload whose checksum does not match', () =>
    refused(
      () =>
        client.uploadArtifact([
          {
            part: {
              case: 'header',
              value: { jobId: 'running', artifactPath: 'a/b.bin', sizeBytes: 3n, sha256: '0'.repeat(64) },
            },
          },
          { part: { case: 'chunk', value: new Uint8Array([1, 2, 3]) } },
        ]),
      Status.INVALID_ARGUMENT,
      /sha256 .* but its header announced/,
    ));
  it('an upload that starts without a header', () =>
    refused(
      () => client.uploadArtifact([{ part: { case: 'chunk', value: new Uint8Array([1]) } }]),
      Status.INVALID_ARGUMENT,
      /first message of UploadArtifact must be the header/,
    ));
  it('an upload longer than announced', () =>
    refused(
      () =>
        client.uploadArtifact([
          {
            part: {
              case: 'header',
              value: { jobId: 'running', artifactPath: 'c.bin', sizeBytes: 1n, sha256: 'a'.repeat(64) },
            },
          },
          { part: { case: 'chunk', value: new Uint8Array([1, 2]) } },
        ]),
      Status.INVALID_ARGUMENT,
      /more than the 1 bytes/,
    ));
});

describe('read side refuses', () => {
  it('an unknown job', () =>
    refused(() => client.getJob({ jobId: 'nobody' }), Status.NOT_FOUND, /not found/));
  it('a page size over the limit', () =>
    refused(() => client.listJobs({ pageSize: 5000 }), Status.INVALID_ARGUMENT, /page_size/));
  it('a forged page token', () =>
    refused(() => client.listJobs({ pageToken: 'garbage!' }), Status.INVALID_ARGUMENT, /page_token/));
});

describe('RetryMlflowSync refuses', () => {
  it('an empty job id', () =>
    refused(() => client.retryMlflowSync({ jobId: '' }), Status.INVALID_ARGUMENT, /job_id/));
  it('a sidecar without MLflow', () =>
    refused(
      () => client.retryMlflowSync({ jobId: 'running' }),
      Status.FAILED_PRECONDITION,
      /MLflow is not configured on this sidecar: set MLFLOW_TRACKING_URI/,
    ));
});

describe('RemirrorMlflowRun refuses', () => {
  it('an empty job id', () =>
    refused(() => client.remirrorMlflowRun({ jobId: '' }), Status.INVALID_ARGUMENT, /job_id/));
  it('a sidecar without MLflow', () =>
    refused(
      () => client.remirrorMlflowRun({ jobId: 'running' }),
      Status.FAILED_PRECONDITION,
      /MLflow is not configured on this sidecar: set MLFLOW_TRACKING_URI/,
    ));
});

it('still serves valid calls after all the refusals', async () => {
  const response = await client.endEpoch({ jobId: 'running', epoch: 1, metrics: { accuracy: 0.75 } });
  expect(response.isBest).toBe(true);
  expect(response.best?.epoch).toBe(1);
  await expect(client.getJob({ jobId: 'j1' })).rejects.toMatchObject({ code: Status.NOT_FOUND });
});

describe('undecodable request bytes', () => {
  it('answer INVALID_ARGUMENT naming the message type and change nothing', async () => {
    await using sidecar = await startSidecarProcess({ args: ['--quiet'] });
    const client = createClient(TrainingCallbacks, sidecar.address);
    await client.beginTraining({ jobId: 'bytes', taskType: TaskType.IMAGE_CLASSIFICATION });
    const before = await snapshotDatabase(sidecar.dbPath);
    const raw = new Client(sidecar.address, credentials.createInsecure());
    const identity = (b: Buffer) => b;
    // Field 1 (job_id) says 100 bytes follow; one does.
    const answer = await new Promise<{ code: number; details: string }>((resolve) =>
      raw.makeUnaryRequest(
        '/trainingcallbacks.v1.TrainingCallbacks/EndEpoch',
        identity,
        identity,
        Buffer.from([0x0a, 0x64, 0x41]),
        (error) => resolve({ code: error?.code ?? Status.OK, details: error?.details ?? '' }),
      ),
    );
    raw.close();
    expect(Status[answer.code]).toBe('INVALID_ARGUMENT');
    expect(answer.details).toContain('trainingcallbacks.v1.EndEpochRequest');
    expect(await snapshotDatabase(sidecar.dbPath)).toBe(before);
    client.close();
  });
});
