// The hand-written batch event encoding is byte for byte what protobuf-es writes for the same event
// (so a gRPC watcher decodes exactly the event it would have been sent), over the varint edges of the
// seq, the steps and the epoch; and the message object read by other transports is the same event.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { WatchJobEventSchema } from '@training-callbacks/proto';
import type { BatchBlock } from '@training-callbacks/store';
import { describe, expect, it } from 'vitest';
import { blockToProto } from '../convert.ts';
import { batchEventMessage, encodeBatchEvent } from './batch-event.ts';

function block(epoch: number, names: string[], steps: bigint[], values: number[]): BatchBlock {
  return { epoch, names, steps: BigInt64Array.from(steps), values: Float64Array.from(values) };
}

const protobufEs = (seq: number, b: BatchBlock) =>
  toBinary(
    WatchJobEventSchema,
    create(WatchJobEventSchema, { seq: BigInt(seq), event: { case: 'batch', value: blockToProto(b) } }),
  );

const cases: Array<[string, number, BatchBlock]> = [
  ['a typical block', 1234, block(3, ['loss', 'm1'], [0n, 1n, 2n], [0.5, 1.5, 0.25, 1.25, -0, 1e300])],
  [
    'varint edges of steps',
    127,
    block(
      0,
      ['loss'],
      [
        127n,
        128n,
        16_383n,
        16_384n,
        2n ** 31n,
        2n ** 32n - 1n,
        2n ** 32n,
        2n ** 53n + 1n,
        2n ** 63n - 1n,
        -1n,
        -(2n ** 63n),
      ],
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    ),
  ],
  [
    'a seq past 2^32, a negative epoch',
    2 ** 40 + 5,
    block(-2, ['ü-metric', ''], [5n], [Infinity, -Infinity]),
  ],
  ['a large epoch, an empty block', Number.MAX_SAFE_INTEGER, block(2 ** 31 - 1, [], [], [])],
  [
    'a block of 2000 rows',
    99,
    block(
      1,
      ['a', 'b'],
      Array.from({ length: 2000 }, (_, i) => BigInt(i * 977)),
      Array.from({ length: 4000 }, (_, i) => i / 7),
    ),
  ],
];

describe('encodeBatchEvent', () => {
  it.each(cases)('writes the bytes protobuf-es writes: %s', (_, seq, b) => {
    expect(Buffer.from(encodeBatchEvent(seq, b)!)).toEqual(Buffer.from(protobufEs(seq, b)));
  });

  it('encodes views into a larger buffer (as the store may hand them) from their own bytes only', () => {
    const steps = new BigInt64Array([9n, 10n, 11n, 12n]).subarray(1, 3);
    const values = new Float64Array([0, 1, 2, 3]).subarray(2, 4);
    const b: BatchBlock = { epoch: 1, names: ['x'], steps, values };
    const decoded = fromBinary(WatchJobEventSchema, encodeBatchEvent(7, b)!);
    expect(decoded.event.case === 'batch' && decoded.event.value.steps).toEqual([10n, 11n]);
    expect(decoded.event.case === 'batch' && decoded.event.value.values).toEqual([2, 3]);
  });

  it('keeps NaN a NaN', () => {
    const decoded = fromBinary(
      WatchJobEventSchema,
      encodeBatchEvent(1, block(0, ['x'], [1n], [Number.NaN]))!,
    );
    expect(decoded.event.case === 'batch' && Number.isNaN(decoded.event.value.values[0])).toBe(true);
  });
});

describe('batchEventMessage', () => {
  const b = cases[0]![2];

  it('carries the precomputed bytes', () => {
    expect(Buffer.from(batchEventMessage(1234, b).bytes)).toEqual(Buffer.from(protobufEs(1234, b)));
  });

  it('reads as the same event for a transport that encodes the object (Connect)', () => {
    const { message } = batchEventMessage(1234, b);
    expect(message.seq).toBe(1234n);
    expect(message.event.case).toBe('batch');
    expect(toBinary(WatchJobEventSchema, message)).toEqual(protobufEs(1234, b));
  });
});
