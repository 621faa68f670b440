import { describe, expect, it } from 'vitest';
import {
  decodeMetricMap,
  decodeNumber,
  encodeMetricMap,
  encodeNumber,
  finiteOrNull,
  nonFiniteNames,
  packFloat64,
  packInt64,
  unpackFloat64,
  unpackInt64,
} from './number-codec.ts';

describe('number codec', () => {
  it('encodes non-finite doubles as strings and decodes them back', () => {
    const values = [0, 1.5, -2e-308, Number.MAX_VALUE, Number.NaN, Infinity, -Infinity, -0];
    for (const value of values) {
      const roundTrip = decodeNumber(JSON.parse(JSON.stringify(encodeNumber(value))));
      expect(Object.is(roundTrip, value)).toBe(true);
    }
    expect(encodeNumber(Number.NaN)).toBe('NaN');
    expect(encodeNumber(Infinity)).toBe('Infinity');
    expect(encodeNumber(-Infinity)).toBe('-Infinity');
  });

  it('never decodes garbage to 0', () => {
    expect(decodeNumber('bogus')).toBeNaN();
    expect(decodeNumber(null)).toBeNaN();
  });

  it('round-trips metric maps through JSON and names the non-finite entries', () => {
    const metrics = { loss: Number.NaN, accuracy: 0.9, grad: Infinity, neg: -Infinity };
    const decoded = decodeMetricMap(JSON.parse(JSON.stringify(encodeMetricMap(metrics))));
    expect(decoded).toEqual(metrics);
    expect(nonFiniteNames(metrics)).toEqual(['grad', 'loss', 'neg']);
    expect(finiteOrNull(Number.NaN)).toBeNull();
    expect(finiteOrNull(undefined)).toBeNull();
    expect(finiteOrNull(0.5)).toBe(0.5);
  });

  it('packs blobs little-endian and keeps NaN payloads bit for bit', () => {
    const values = new Float64Array(4);
    const bits = new BigUint64Array(values.buffer);
    bits[0] = 0x7ff8_0000_dead_beefn; // quiet NaN with a payload
    bits[1] = 0xfff0_0000_0000_0001n; // signalling NaN, sign bit set
    values[2] = Infinity;
    values[3] = -0;
    const packed = packFloat64(values);
    expect(packed.readBigUInt64LE(0)).toBe(0x7ff8_0000_dead_beefn);
    const unpacked = unpackFloat64(packed);
    expect([...new BigUint64Array(unpacked.buffer)]).toEqual([...bits]);

    const steps = BigInt64Array.from([0n, 1n, 2n ** 62n, -5n]);
    const packedSteps = packInt64(steps);
    expect(packedSteps.readBigInt64LE(16)).toBe(2n ** 62n);
    expect(unpackInt64(packedSteps)).toEqual(steps);
  });

  it('unpacks from unaligned views and refuses truncated blobs', () => {
    const source = Buffer.alloc(17);
    source.writeDoubleLE(Math.PI, 1);
    source.writeDoubleLE(Number.NaN, 9);
    const view = source.subarray(1);
    const unpacked = unpackFloat64(view);
    expect(unpacked[0]).toBe(Math.PI);
    expect(unpacked[1]).toBeNaN();
    expect(() => unpackFloat64(Buffer.alloc(7))).toThrow(RangeError);
  });
});
