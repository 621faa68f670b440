import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { ReportBatchMetricsRequestSchema } from '@training-callbacks/proto';
import { describe, expect, it } from 'vitest';
import { BatchBuffer } from './batch-buffer.ts';
import { toBatchRequests } from './batch-encoding.ts';

describe('batch encoding', () => {
  it('round-trips blocks through protobuf-es binary', () => {
    const buffer = new BatchBuffer({ maxBlockPoints: 1000, capacityPoints: 1000 });
    buffer.append(3, 7, { loss: 0.5, lr: 1e-3 });
    buffer.append(3, 8, { loss: 0.25, lr: 1e-3 });
    buffer.append(3, 9, { top1: 91 });
    buffer.seal();
    const [request, ...rest] = toBatchRequests({ jobId: 'job-1', sessionId: 's-1' }, buffer.take(1000));
    expect(rest).toHaveLength(0);
    const decoded = fromBinary(
      ReportBatchMetricsRequestSchema,
      toBinary(ReportBatchMetricsRequestSchema, request!),
    );
    expect(decoded.jobId).toBe('job-1');
    expect(decoded.sessionId).toBe('s-1');
    expect(
      decoded.blocks.map((b) => ({ epoch: b.epoch, names: b.names, steps: b.steps, values: b.values })),
    ).toEqual([
      { epoch: 3, names: ['loss', 'lr'], steps: [7n, 8n], values: [0.5, 1e-3, 0.25, 1e-3] },
      { epoch: 3, names: ['top1'], steps: [9n], values: [91] },
    ]);
  });

  it('packs blocks into messages of bounded size, each naming the job', () => {
    const buffer = new BatchBuffer({ maxBlockPoints: 100, capacityPoints: 100_000 });
    for (let step = 0; step < 1000; step++) buffer.append(0, step, { a: step });
    buffer.seal();
    const requests = toBatchRequests({ jobId: 'j' }, buffer.take(100_000), 250);
    expect(requests.map((r) => r.blocks.length)).toEqual([2, 2, 2, 2, 2]);
    expect(requests.every((r) => r.jobId === 'j')).toBe(true);
  });
});
