// ReportBatchMetrics keeps the contract: a stream is stored whole or not at all, and a point
// (job, name, step) is stored once however often, and however cut, it is sent. Against the real
// sidecar process and its database (SQLite, or PostgreSQL in the PostgreSQL run).
import type { MessageInitShape } from '@bufbuild/protobuf';
import { createClient, RpcError, type ServiceClient, Status } from '@training-callbacks/grpc-adapter';
import { type ReportBatchMetricsRequestSchema, TaskType, TrainingCallbacks } from '@training-callbacks/proto';
import { type SidecarProcess, startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryDatabase, snapshotDatabase } from './database.ts';

type Methods = typeof TrainingCallbacks extends { method: infer M } ? M : never;
type Message = MessageInitShape<typeof ReportBatchMetricsRequestSchema>;

let sidecar: SidecarProcess;
let client: ServiceClient<Methods>;

beforeAll(async () => {
  sidecar = await startSidecarProcess({ args: ['--quiet', '--max-message-bytes', '1048576'] });
  client = createClient(TrainingCallbacks, sidecar.address);
});

afterAll(async () => {
  client?.close();
  await sidecar?.[Symbol.asyncDispose]();
});

/** One block of `rows` steps from `first`: loss and lr (stored as train_loss, learning_rate), value = seed + step (+0.5 for lr). */
function block(first: number, rows: number, seed = 0, epoch = 0) {
  const steps = Array.from({ length: rows }, (_, r) => BigInt(first + r));
  const values = steps.flatMap((s) => [seed + Number(s), seed + Number(s) + 0.5]);
  return { epoch, names: ['loss', 'lr'], steps, values };
}

/** Messages of `rows` steps each (loss and lr), 250 000 points in all by default. */
function* messages(jobId: string, from: number, count = 25, rows = 5000): Generator<Message> {
  for (let m = 0; m < count; m++) yield { jobId, blocks: [block(from + m * rows, rows)] };
}

async function begin(jobId: string): Promise<void> {
  await client.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
}

/** Every stored point of a job, read from the database: "step/name" → value. */
async function storedPoints(jobId: string): Promise<Map<string, number>> {
  const rows = await queryDatabase<{ names: string; steps: Buffer; values: Buffer }>(
    sidecar.dbPath,
    'select names, steps, "values" from batch_metric_block where job_id = ?',
    jobId,
  );
  const points = new Map<string, number>();
  let count = 0;
  for (const row of rows) {
    const names = JSON.parse(row.names) as string[];
    for (let r = 0; r < row.steps.length / 8; r++) {
      names.forEach((name, c) => {
        points.set(
          `${row.steps.readBigInt64LE(r * 8)}/${name}`,
          row.values.readDoubleLE((r * names.length + c) * 8),
        );
        count++;
      });
    }
  }
  expect(count, 'a point is stored more than once').toBe(points.size);
  return points;
}

async function refusedWithNothingStored(call: () => Promise<unknown>, code: number, message: RegExp) {
  const before = await snapshotDatabase(sidecar.dbPath);
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RpcError);
  expect(Status[(error as RpcError).code]).toBe(Status[code]);
  expect((error as RpcError).message).toMatch(message);
  // Give the sidecar time to finish with the stream before looking at the database.
  await client.getJob({ jobId: 'refused' });
  expect(await snapshotDatabase(sidecar.dbPath)).toBe(before);
}

describe('a refused ReportBatchMetrics stream stores nothing', () => {
  beforeAll(() => begin('refused'));

  it('when a message after 250 000 good points names another job', () =>
    refusedWithNothingStored(
      () => client.reportBatchMetrics([...messages('refused', 0), { jobId: 'someone-else', blocks: [] }]),
      Status.INVALID_ARGUMENT,
      /same job/,
    ));

  it('when a message after 250 000 good points is over the size limit', () =>
    refusedWithNothingStored(
      () =>
        client.reportBatchMetrics([...messages('refused', 0), ...messages('refused', 125_000, 1, 60_000)]),
      Status.RESOURCE_EXHAUSTED,
      /message larger than max/i,
    ));

  it('when the client breaks the stream off after 250 000 points', () =>
    refusedWithNothingStored(
      () =>
        client.reportBatchMetrics(
          (async function* () {
            yield* messages('refused', 0);
            throw new Error('trainer crashed mid-stream');
          })(),
        ),
      Status.CANCELLED,
      /crashed/,
    ));

  it('and then the same points, resent, are stored once', async () => {
    const response = await client.reportBatchMetrics(messages('refused', 0));
    expect(response.acceptedPoints).toBe(250_000n);
    expect((await storedPoints('refused')).size).toBe(250_000);
  });
});

describe('a point is (job, name, step)', () => {
  it('is stored once when resent in blocks cut differently', async () => {
    await begin('recut');
    await client.reportBatchMetrics([{ jobId: 'recut', blocks: [block(0, 1000)] }]);
    // The same 1000 steps cut in 300s, the last block running 200 steps further.
    const again = await client.reportBatchMetrics([
      { jobId: 'recut', blocks: [block(0, 300), block(300, 300)] },
      { jobId: 'recut', blocks: [block(600, 300), block(900, 300)] },
    ]);
    expect(again).toMatchObject({ acceptedPoints: 2400n, rejectedPoints: 0n, replacedPoints: 0n });
    const points = await storedPoints('recut');
    expect(points.size).toBe(1200 * 2);
    expect(points.get('1199/learning_rate')).toBe(1199.5);
    const { blocks } = await client.listBatchMetrics({ jobId: 'recut' });
    expect(blocks.reduce((n, b) => n + b.values.length, 0)).toBe(2400);
  });

  it('keeps the last value received when a point is sent again with another value', async () => {
    await begin('lww');
    await client.reportBatchMetrics([{ jobId: 'lww', blocks: [block(0, 100)] }]);
    const response = await client.reportBatchMetrics([
      { jobId: 'lww', blocks: [{ epoch: 0, names: ['loss'], steps: [40n, 41n], values: [-1, -2] }] },
    ]);
    expect(response).toMatchObject({ acceptedPoints: 2n, replacedPoints: 2n });
    const points = await storedPoints('lww');
    expect(points.size).toBe(200);
    expect(points.get('40/train_loss')).toBe(-1);
    expect(points.get('41/train_loss')).toBe(-2);
    expect(points.get('40/learning_rate')).toBe(40.5);
    expect(points.get('42/train_loss')).toBe(42);
  });
});
