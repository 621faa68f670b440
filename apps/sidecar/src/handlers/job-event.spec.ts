// The hand-assembled events that carry a job are byte for byte what protobuf-es writes for the same
// messages (a gRPC watcher decodes exactly the event it would have been sent), over a bare and a
// full job, a seq of 0 and past 2^32; and the message objects read by other transports are the same.
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  EpochRecordSchema,
  JobSchema,
  WatchJobEventSchema,
  WatchJobsEventSchema,
} from '@training-callbacks/proto';
import { describe, expect, it } from 'vitest';
import { encodeEnvelope, epochEvent, jobJobEvent, jobsJobEvent } from './job-event.ts';

const bareJob = create(JobSchema, { jobId: 'j' });
const fullJob = create(JobSchema, {
  jobId: 'job-ü-1',
  framework: 'pytorch',
  modelName: 'resnet50',
  status: 2,
  params: { lr: '0.01', batch: '64' },
  tags: { team: 'vision' },
  modelConfig: { layers: 50, pretrained: true, name: 'r' },
  epochsReported: 12,
  bestEpoch: 7,
  bestValue: 0.93,
  createdAt: timestampFromDate(new Date('2026-12-02T10:00:00Z')),
  updatedAt: timestampFromDate(new Date('2026-12-02T10:05:00.123Z')),
  errorMessage: 'x'.repeat(300),
});
const epoch = create(EpochRecordSchema, {
  epoch: 7,
  metrics: { accuracy: 0.93, train_loss: 0.2 },
  timestamp: timestampFromDate(new Date('2026-12-02T10:05:00Z')),
});
const seqs = [0, 1, 127, 128, 2 ** 32 + 3, Number.MAX_SAFE_INTEGER];
const jobCases = [
  ['a bare job', bareJob],
  ['a full job', fullJob],
] as const;

describe('job events', () => {
  describe.each(jobCases)('%s', (_, job) => {
    it.each(seqs)('WatchJobs job event at seq %d: the bytes protobuf-es writes', (seq) => {
      const expected = create(WatchJobsEventSchema, { seq: BigInt(seq), job });
      expect(Buffer.from(jobsJobEvent(seq, job).bytes)).toEqual(
        Buffer.from(toBinary(WatchJobsEventSchema, expected)),
      );
    });

    it.each(seqs)('WatchJob job and epoch events at seq %d: the bytes protobuf-es writes', (seq) => {
      const jobEvent = create(WatchJobEventSchema, {
        seq: BigInt(seq),
        event: { case: 'job', value: job },
      });
      expect(Buffer.from(jobJobEvent(seq, job).bytes)).toEqual(
        Buffer.from(toBinary(WatchJobEventSchema, jobEvent)),
      );
      const withEpoch = create(WatchJobEventSchema, {
        seq: BigInt(seq),
        event: { case: 'epoch', value: epoch },
        epochJob: job,
      });
      expect(Buffer.from(epochEvent(seq, epoch, job).bytes)).toEqual(
        Buffer.from(toBinary(WatchJobEventSchema, withEpoch)),
      );
    });
  });

  it('reads as the same events for a transport that encodes the objects (Connect)', () => {
    const list = jobsJobEvent(9, fullJob);
    expect(Buffer.from(toBinary(WatchJobsEventSchema, list.message))).toEqual(Buffer.from(list.bytes));
    const withEpoch = epochEvent(9, epoch, fullJob);
    expect(withEpoch.message.event.case === 'epoch' && withEpoch.message.event.value.epoch).toBe(7);
    expect(withEpoch.message.epochJob?.bestEpoch).toBe(7);
    expect(Buffer.from(toBinary(WatchJobEventSchema, withEpoch.message))).toEqual(
      Buffer.from(withEpoch.bytes),
    );
  });

  it('writes an empty message field as present (tag and length 0), as protobuf does', () => {
    expect([...encodeEnvelope(0, [[2, new Uint8Array()]])]).toEqual([0x12, 0]);
  });
});
