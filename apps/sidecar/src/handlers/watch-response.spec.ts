// A response packed from encoded events is byte for byte what protobuf-es writes for the response
// holding those events (as gRPC serialises it), at its last event's seq; one run handed to several
// subscribers is packed once; a run longer than MAX_RESPONSE_BYTES comes in several responses.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { createMethodDefinition } from '@training-callbacks/grpc-adapter';
import {
  EpochRecordSchema,
  JobSchema,
  TrainingCallbacks,
  WatchJobResponseSchema,
  WatchJobsResponseSchema,
} from '@training-callbacks/proto';
import type { BatchBlock } from '@training-callbacks/store';
import { describe, expect, it } from 'vitest';
import { batchEventMessage } from './batch-event.ts';
import { epochEvent, jobJobEvent, jobsJobEvent } from './job-event.ts';
import { MAX_RESPONSE_BYTES, responsePacker, runsBySize } from './watch-response.ts';

const job = (id: string) =>
  create(JobSchema, {
    jobId: id,
    modelName: 'resnet50',
    epochsReported: 3,
    createdAt: timestampFromDate(new Date('2026-12-03T05:00:00Z')),
  });
const block: BatchBlock = {
  epoch: 2,
  names: ['loss', 'lr'],
  steps: BigInt64Array.from([10n, 11n]),
  values: Float64Array.from([0.5, 0.1, 0.25, 0.1]),
};
const epoch = create(EpochRecordSchema, { epoch: 2, metrics: { accuracy: 0.9 } });

describe('responsePacker', () => {
  it('packs the job list events into the bytes protobuf-es writes, at the last seq', () => {
    const pack = responsePacker(() => create(WatchJobsResponseSchema), 4);
    const events = [5, 9, 2 ** 33].map((seq, i) => ({ seq, message: jobsJobEvent(seq, job(`j${i}`)) }));
    const [response, more] = pack(events);
    expect(more).toBeUndefined();
    const expected = create(WatchJobsResponseSchema, {
      seq: BigInt(2 ** 33),
      events: events.map((e) => e.message.message),
    });
    const serialize = createMethodDefinition(TrainingCallbacks.method.watchJobs).responseSerialize;
    expect(Buffer.from(serialize(response!))).toEqual(
      Buffer.from(toBinary(WatchJobsResponseSchema, expected)),
    );
    // The object other transports encode is the same response.
    expect(toBinary(WatchJobsResponseSchema, response!)).toEqual(toBinary(WatchJobsResponseSchema, expected));
  });

  it('packs a job stream of every kind of event, each event keeping its own seq', () => {
    const pack = responsePacker(() => create(WatchJobResponseSchema), 8);
    const events = [
      { seq: 3, message: jobJobEvent(3, job('a')) },
      { seq: 4, message: batchEventMessage(4, block) },
      { seq: 7, message: epochEvent(7, epoch, job('a')) },
    ];
    const serialize = createMethodDefinition(TrainingCallbacks.method.watchJob).responseSerialize;
    const decoded = fromBinary(WatchJobResponseSchema, serialize(pack(events)[0]!));
    expect(decoded.seq).toBe(7n);
    expect(decoded.heartbeat).toBeUndefined();
    expect(decoded.events.map((e) => [e.seq, e.event.case])).toEqual([
      [3n, 'job'],
      [4n, 'batch'],
      [7n, 'epoch'],
    ]);
    expect(decoded.events[1]!.event.value).toMatchObject({ names: ['loss', 'lr'], steps: [10n, 11n] });
    expect(decoded.events[2]!.epochJob?.jobId).toBe('a');
  });

  it('packs one run once for every subscriber it goes to', () => {
    const pack = responsePacker(() => create(WatchJobsResponseSchema), 4);
    const events = [{ seq: 1, message: jobsJobEvent(1, job('a')) }];
    expect(pack(events)[0]).toBe(pack(events)[0]);
    expect(pack([...events])[0]).not.toBe(pack(events)[0]);
  });

  it('cuts a long run into responses of at most MAX_RESPONSE_BYTES, each at its last seq', () => {
    const big = { ...block, values: new Float64Array(2 * 20_000), steps: new BigInt64Array(20_000) };
    const events = Array.from({ length: 8 }, (_, i) => ({
      seq: i + 1,
      message: batchEventMessage(i + 1, big),
    }));
    const size = events[0]!.message.bytes.length;
    const pack = responsePacker(() => create(WatchJobResponseSchema), 8);
    const responses = pack(events);
    const perResponse = Math.floor(MAX_RESPONSE_BYTES / size);
    expect(responses.length).toBe(Math.ceil(8 / perResponse));
    expect(responses.flatMap((r) => r.events.map((e) => e.seq))).toEqual(events.map((e) => BigInt(e.seq)));
    for (const r of responses) expect(r.seq).toBe(r.events.at(-1)!.seq);
    const serialize = createMethodDefinition(TrainingCallbacks.method.watchJob).responseSerialize;
    for (const r of responses) expect(serialize(r).length).toBeLessThan(MAX_RESPONSE_BYTES + 64);
  });

  it('sends an event larger than the limit alone', () => {
    const events = [1, 2].map((seq) => ({ seq, message: jobsJobEvent(seq, job('x'.repeat(40))) }));
    expect(runsBySize(events, 10).map((run) => run.map((e) => e.seq))).toEqual([[1], [2]]);
  });
});
