// The typed-array decoder of ReportBatchMetricsRequest against protobuf-es, the reference: the same
// content for the messages encoders write, for the forms only other encoders write (unpacked, split,
// reordered, unknown fields), and the same refusals for damaged bytes.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { describe, expect, it } from 'vitest';
import { type DecodedBatchRequest, decodeBatchRequest, readPackedBatchRequest } from './batch-wire.ts';
import { ReportBatchMetricsRequestSchema } from './gen/trainingcallbacks/v1/training_callbacks_pb.ts';

/** A decoded request in a comparable form: steps as decimal text, values as their exact bytes (NaN, −0). */
function comparable(request: DecodedBatchRequest) {
  return {
    jobId: request.jobId,
    sessionId: request.sessionId,
    blocks: request.blocks.map((block) => ({
      epoch: block.epoch,
      names: [...block.names],
      steps: Array.from(block.steps, String),
      values: Buffer.from(block.values.buffer, block.values.byteOffset, block.values.byteLength).toString(
        'hex',
      ),
      stepsType: block.steps.constructor.name,
      valuesType: block.values.constructor.name,
    })),
  };
}

/** What protobuf-es decodes, in the same form. */
function reference(bytes: Uint8Array) {
  const message = fromBinary(ReportBatchMetricsRequestSchema, bytes);
  return comparable({
    jobId: message.jobId,
    sessionId: message.sessionId,
    blocks: message.blocks.map((b) => ({
      epoch: b.epoch,
      names: b.names,
      steps: BigInt64Array.from(b.steps),
      values: Float64Array.from(b.values),
    })),
  });
}

/** A small seeded generator (mulberry32), so that a failure repeats. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const EDGE_STEPS = [
  0n,
  1n,
  127n,
  128n,
  16_383n,
  16_384n,
  2n ** 31n,
  2n ** 32n - 1n,
  2n ** 53n - 1n,
  -1n,
  -(2n ** 63n),
  2n ** 63n - 1n,
];
const EDGE_VALUES = [0, -0, Number.NaN, Infinity, -Infinity, 5e-324, Number.MAX_VALUE, 0.1, -1e300];
const NAMES = ['loss', 'train/loss', 'mAP50-95', 'Genauigkeit (Top‑5)', '精度', '🙂', ''];

function randomRequest(rand: () => number) {
  const pick = <T>(items: readonly T[]) => items[Math.floor(rand() * items.length)]!;
  const blocks = Array.from({ length: Math.floor(rand() * 4) }, () => {
    const rows = Math.floor(rand() * 40);
    const columns = Math.floor(rand() * 4);
    return {
      epoch: rand() < 0.2 ? -Math.floor(rand() * 2 ** 31) : Math.floor(rand() * 1e6),
      names: Array.from({ length: columns }, () => pick(NAMES)),
      steps: Array.from({ length: rows }, () =>
        rand() < 0.3
          ? pick(EDGE_STEPS)
          : BigInt.asIntN(64, BigInt(Math.floor(rand() * 2 ** 32)) << BigInt(Math.floor(rand() * 33))),
      ),
      values: Array.from({ length: rows * Math.max(columns, 1) }, () =>
        rand() < 0.3 ? pick(EDGE_VALUES) : (rand() - 0.5) * 10 ** Math.floor(rand() * 40 - 20),
      ),
    };
  });
  return create(ReportBatchMetricsRequestSchema, {
    jobId: rand() < 0.9 ? `job-${pick(NAMES)}-${Math.floor(rand() * 1000)}` : '',
    sessionId: rand() < 0.5 ? 'session-ü' : '',
    blocks,
  });
}

describe('decodeBatchRequest', () => {
  it('reads what protobuf-es writes as protobuf-es reads it, into typed arrays, without falling back', () => {
    const rand = random(9);
    for (let i = 0; i < 400; i++) {
      const bytes = toBinary(ReportBatchMetricsRequestSchema, randomRequest(rand));
      expect(readPackedBatchRequest(bytes)).toBeDefined();
      const decoded = comparable(decodeBatchRequest(bytes));
      expect(decoded).toEqual(reference(bytes));
      for (const block of decoded.blocks)
        expect([block.stepsType, block.valuesType]).toEqual(['BigInt64Array', 'Float64Array']);
    }
  });

  it('reads the forms only other encoders write (unpacked, split runs, reordered, unknown fields) as protobuf-es does', () => {
    const block = (write: (w: BinaryWriter) => void) => {
      const w = new BinaryWriter();
      write(w);
      return w.finish();
    };
    const request = (blocks: Uint8Array[], extra: (w: BinaryWriter) => void = () => {}) => {
      const w = new BinaryWriter();
      extra(w);
      for (const b of blocks) w.tag(2, WireType.LengthDelimited).bytes(b);
      w.tag(1, WireType.LengthDelimited).string('j');
      return w.finish();
    };
    const forms: Record<string, Uint8Array> = {
      'unpacked steps and values': request([
        block((w) => {
          w.tag(2, WireType.LengthDelimited).string('loss');
          for (const s of [5n, 6n]) w.tag(3, WireType.Varint).int64(s);
          for (const v of [0.5, Number.NaN]) w.tag(4, WireType.Bit64).double(v);
        }),
      ]),
      'steps and values in two runs each': request([
        block((w) => {
          w.tag(2, WireType.LengthDelimited).string('loss');
          w.tag(3, WireType.LengthDelimited).fork().int64(1n).join();
          w.tag(4, WireType.LengthDelimited).fork().double(1.5).join();
          w.tag(3, WireType.LengthDelimited).fork().int64(2n).join();
          w.tag(4, WireType.LengthDelimited).fork().double(-0).join();
        }),
      ]),
      'fields in reverse order, the epoch twice': request([
        block((w) => {
          w.tag(4, WireType.LengthDelimited).fork().double(1).double(2).join();
          w.tag(3, WireType.LengthDelimited).fork().int64(9n).join();
          w.tag(2, WireType.LengthDelimited).string('a');
          w.tag(2, WireType.LengthDelimited).string('b');
          w.tag(1, WireType.Varint).int32(4);
          w.tag(1, WireType.Varint).int32(-7);
        }),
      ]),
      'unknown fields of every wire type at both levels, the job id twice': request(
        [
          block((w) => {
            w.tag(9, WireType.Varint).uint64(2n ** 60n);
            w.tag(10, WireType.Bit32).fixed32(7);
            w.tag(11, WireType.Bit64).fixed64(8n);
            w.tag(12, WireType.LengthDelimited).bytes(new Uint8Array([1, 2, 3]));
            w.tag(2, WireType.LengthDelimited).string('loss');
            w.tag(3, WireType.LengthDelimited).fork().int64(3n).join();
            w.tag(4, WireType.LengthDelimited).fork().double(0.25).join();
          }),
        ],
        (w) => {
          w.tag(1, WireType.LengthDelimited).string('first');
          w.tag(7, WireType.Varint).int32(1);
          w.tag(8, WireType.StartGroup).tag(1, WireType.Varint).int32(5).tag(8, WireType.EndGroup);
        },
      ),
    };
    for (const [form, bytes] of Object.entries(forms)) {
      expect(comparable(decodeBatchRequest(bytes)), form).toEqual(reference(bytes));
    }
    // The one form the fast path reads among them: unknown fields outside groups are skipped there too.
    expect(readPackedBatchRequest(forms['fields in reverse order, the epoch twice']!)).toBeDefined();
    expect(readPackedBatchRequest(forms['unpacked steps and values']!)).toBeUndefined();
    expect(readPackedBatchRequest(forms['steps and values in two runs each']!)).toBeUndefined();
  });

  it('refuses damaged bytes as protobuf-es does, and reads the rest alike', () => {
    const rand = random(17);
    let refused = 0;
    for (let i = 0; i < 60; i++) {
      const bytes = toBinary(ReportBatchMetricsRequestSchema, randomRequest(rand));
      const damaged: Uint8Array[] = [];
      for (let cut = 0; cut < bytes.length; cut += 1 + Math.floor(rand() * 7))
        damaged.push(bytes.slice(0, cut));
      for (let k = 0; k < 10 && bytes.length > 0; k++) {
        const flipped = bytes.slice();
        flipped[Math.floor(rand() * bytes.length)]! ^= 1 << Math.floor(rand() * 8);
        damaged.push(flipped);
      }
      for (const bad of damaged) {
        let expected: ReturnType<typeof reference> | Error;
        try {
          expected = reference(bad);
        } catch (error) {
          expected = error as Error;
        }
        if (expected instanceof Error) {
          refused++;
          expect(() => decodeBatchRequest(bad)).toThrow(expected.message);
        } else {
          expect(comparable(decodeBatchRequest(bad))).toEqual(expected);
        }
      }
    }
    // Not vacuous: many of the damaged messages are refused.
    expect(refused).toBeGreaterThan(100);
  });

  it('refuses a name that is not UTF-8, as protobuf-es does', () => {
    const w = new BinaryWriter();
    w.tag(1, WireType.LengthDelimited).string('j');
    const inner = new BinaryWriter();
    inner.tag(2, WireType.LengthDelimited).bytes(new Uint8Array([0x6c, 0xff, 0x73]));
    w.tag(2, WireType.LengthDelimited).bytes(inner.finish());
    const bytes = w.finish();
    expect(() => fromBinary(ReportBatchMetricsRequestSchema, bytes)).toThrow();
    expect(() => decodeBatchRequest(bytes)).toThrow();
  });
});
