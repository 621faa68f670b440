// The hand-assembled events that carry a job are byte for byte what protobuf-es writes for the same
// messages (a gRPC watcher decodes exactly the event it would have been sent), over a bare and a
// full job, a seq of 0 and past 2^32; and the message objects read by other transports are the same.
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { createMethodDefinition } from '@training-callbacks/grpc-adapter';
import {
  EpochRecordSchema,
  JobSchema,
  TrainingCallbacks,
  WatchJobResponseSchema,
  WatchJobsResponseSchema,
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
      const expected = create(WatchJobsResponseSchema, {
        seq: BigInt(seq),
        event: { case: 'job', value: job },
      });
      const serialize = createMethodDefinition(TrainingCallbacks.method.watchJobs).responseSerialize;
      expect(Buffer.from(serialize(jobsJobEvent(seq, job)))).toEqual(
        Buffer.from(toBinary(WatchJobsResponseSchema, expected)),
      );
    });

    it.each(seqs)('WatchJob job and epoch events at seq %d: the bytes protobuf-es writes', (seq) => {
      const serialize = createMethodDefinition(TrainingCallbacks.method.watchJob).responseSerialize;
      const jobEvent = create(WatchJobResponseSchema, {
        seq: BigInt(seq),
        event: { case: 'job', value: job },
      });
      expect(Buffer.from(serialize(jobJobEvent(seq, job)))).toEqual(
        Buffer.from(toBinary(WatchJobResponseSchema, jobEvent)),
      );
      const withEpoch = create(WatchJobResponseSchema, {
        seq: BigInt(seq),
        event: { case: 'epoch', value: epoch },
        epochJob: job,
      });
      expect(Buffer.from(serialize(epochEvent(seq, epoch, job)))).toEqual(
        Buffer.from(toBinary(WatchJobResponseSchema, withEpoch)),
      );
    });
  });

  it('reads as the same events for a transport that encodes the objects (Connect)', () => {
    const list = jobsJobEvent(9, fullJob);
    expect(list.seq).toBe(9n);
    expect(list.event.case === 'job' && list.event.value.jobId).toBe('job-ü-1');
    const withEpoch = epochEvent(9, epoch, fullJob);
    expect(withEpoch.event.case === 'epoch' && withEpoch.event.value.epoch).toBe(7);
    expect(withEpoch.epochJob?.bestEpoch).toBe(7);
  });

  it('writes an empty message field as present (tag and length 0), as protobuf does', () => {
    expect([...encodeEnvelope(0, [[2, new Uint8Array()]])]).toEqual([0x12, 0]);
  });
});
