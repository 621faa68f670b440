import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ReportBatchMetricsRequestSchema } from '@training-callbacks/proto';
import { describe, expect, it } from 'vitest';
import { BatchBuffer, type SealedBlock } from './batch-buffer.ts';
import { encodeBatchRequest, toBatchRequests } from './batch-encoding.ts';

/** What protobuf-es's toBinary writes for the same request: the wire format the encoder must keep. */
function protobufEs(jobId: string, sessionId: string, blocks: readonly SealedBlock[]): Uint8Array {
  return toBinary(
    ReportBatchMetricsRequestSchema,
    create(ReportBatchMetricsRequestSchema, {
      jobId,
      sessionId,
      blocks: blocks.map((b) => ({
        epoch: b.epoch,
        names: [...b.names],
        steps: Array.from(b.steps, BigInt),
        values: Array.from(b.values),
      })),
    }),
  );
}

const block = (epoch: number, names: string[], steps: number[], values: number[]): SealedBlock => ({
  seq: 1,
  epoch,
  names,
  steps: Float64Array.from(steps),
  values: Float64Array.from(values),
});

describe('batch encoding', () => {
  it('round-trips blocks through protobuf-es binary', () => {
    const buffer = new BatchBuffer({ maxBlockPoints: 1000, capacityPoints: 1000 });
    buffer.append(3, 7, { loss: 0.5, lr: 1e-3 });
    buffer.append(3, 8, { loss: 0.25, lr: 1e-3 });
    buffer.append(3, 9, { top1: 91 });
    buffer.seal();
    const [request, ...rest] = toBatchRequests({ jobId: 'job-1', sessionId: 's-1' }, buffer.take(1000));
    expect(rest).toHaveLength(0);
    const decoded = fromBinary(ReportBatchMetricsRequestSchema, request!);
    expect(decoded.jobId).toBe('job-1');
    expect(decoded.sessionId).toBe('s-1');
    expect(
      decoded.blocks.map((b) => ({ epoch: b.epoch, names: b.names, steps: b.steps, values: b.values })),
    ).toEqual([
      { epoch: 3, names: ['loss', 'lr'], steps: [7n, 8n], values: [0.5, 1e-3, 0.25, 1e-3] },
      { epoch: 3, names: ['top1'], steps: [9n], values: [91] },
    ]);
  });

  it('writes the bytes protobuf-es writes', () => {
    const cases: [string, string, SealedBlock[]][] = [
      ['job-1', 's-1', [block(3, ['loss', 'lr'], [7, 8], [0.5, 1e-3, 0.25, 1e-3])]],
      // Defaults protobuf-es leaves out: epoch 0, empty session (and job) ids.
      ['j', '', [block(0, ['a'], [0], [0])]],
      ['', '', [block(0, ['a'], [1], [1])]],
      // Varints of every length up to a safe integer's 8 bytes; the epoch's int32 maximum.
      [
        'job',
        'session',
        [
          block(
            2 ** 31 - 1,
            ['x'],
            [127, 128, 16_383, 16_384, 2 ** 32, 2 ** 35 + 3, 2 ** 49 + 1, Number.MAX_SAFE_INTEGER],
            [1, 2, 3, 4, 5, 6, 7, 8],
          ),
        ],
      ],
      // Doubles bit for bit: signed zero, infinities, NaN, subnormals.
      ['j', 's', [block(1, ['a', 'b', 'c'], [5, 6], [-0, Infinity, -Infinity, Number.NaN, 5e-324, -1.5])]],
      // Names of more than one UTF-8 byte per character, an empty name, a name longer than 127 bytes.
      ['jöb-ü', 'sé', [block(2, ['λ', '', '指标', 'n'.repeat(300)], [9], [1, 2, 3, 4])]],
      // Several blocks in one message; a block bigger than 127 bytes (two-byte lengths).
      [
        'j',
        's',
        [
          block(1, ['a'], [1, 2], [1, 2]),
          block(
            2,
            ['a', 'b'],
            Array.from({ length: 100 }, (_, i) => 1000 + i),
            Array.from({ length: 200 }, (_, i) => i / 7),
          ),
        ],
      ],
    ];
    for (const [jobId, sessionId, blocks] of cases) {
      expect(new Uint8Array(encodeBatchRequest(jobId, sessionId, blocks))).toEqual(
        protobufEs(jobId, sessionId, blocks),
      );
    }
  });

  it('packs blocks into messages of bounded size, each naming the job', () => {
    const buffer = new BatchBuffer({ maxBlockPoints: 100, capacityPoints: 100_000 });
    for (let step = 0; step < 1000; step++) buffer.append(0, step, { a: step });
    buffer.seal();
    const requests = toBatchRequests({ jobId: 'j' }, buffer.take(100_000), 250).map((bytes) =>
      fromBinary(ReportBatchMetricsRequestSchema, bytes),
    );
    expect(requests.map((r) => r.blocks.length)).toEqual([2, 2, 2, 2, 2]);
    expect(requests.every((r) => r.jobId === 'j')).toBe(true);
    expect(requests.flatMap((r) => r.blocks.flatMap((b) => b.steps.map(Number)))).toEqual(
      Array.from({ length: 1000 }, (_, step) => step),
    );
  });
});
