import { describe, expect, it } from 'vitest';
import {
  decodeJsonTree,
  decodeMetricMap,
  decodeNumber,
  encodeJsonTree,
  encodeMetricMap,
  encodeNonFinite,
  encodeNumber,
  finiteOrNull,
  nonFiniteNames,
  packFloat64,
  packInt64,
  unpackFloat64,
  unpackInt64,
  userKeyed,
  viewFloat64,
  viewInt64,
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

  it('encodes for MLflow with the same tokens, -0 kept a number, and decodes what MLflow answers', () => {
    // The MLflow bridge's use: outbox payloads and log-batch bodies. MLflow reads "NaN", "Infinity"
    // and "-Infinity" for a double; it has no "-0" token, and JSON prints -0 as 0.
    expect([Number.NaN, Infinity, -Infinity, 1.5, 0].map(encodeNonFinite)).toEqual([
      'NaN',
      'Infinity',
      '-Infinity',
      1.5,
      0,
    ]);
    expect(Object.is(encodeNonFinite(-0), -0)).toBe(true);
    expect(JSON.stringify([Number.NaN, -0].map(encodeNonFinite))).toBe('["NaN",0]');
    for (const value of [0, 1.5, -2e-308, Number.MAX_VALUE, Number.NaN, Infinity, -Infinity]) {
      const roundTrip = decodeNumber(JSON.parse(JSON.stringify(encodeNonFinite(value))));
      expect(Object.is(roundTrip, value)).toBe(true);
    }
    // MLflow answers NaN as "NaN" and ±Infinity as ±Number.MAX_VALUE (what its SQL store keeps).
    expect(decodeNumber('NaN')).toBeNaN();
    expect(decodeNumber(-1.7976931348623157e308)).toBe(-Number.MAX_VALUE);
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

  it('views aligned bytes in place and copies unaligned ones, with the same numbers', () => {
    const steps = BigInt64Array.of(-1n, 2n ** 62n, 7n);
    const values = Float64Array.of(Math.E, Number.NaN, -0);
    const alignedSteps = new Uint8Array(packInt64(steps));
    const alignedValues = new Uint8Array(packFloat64(values));
    expect(viewInt64(alignedSteps)).toEqual(steps);
    expect(viewInt64(alignedSteps).buffer).toBe(alignedSteps.buffer);
    expect(viewFloat64(alignedValues)).toEqual(values);
    expect(viewFloat64(alignedValues).buffer).toBe(alignedValues.buffer);
    const shifted = Buffer.alloc(25);
    Buffer.from(packInt64(steps)).copy(shifted, 1);
    expect(viewInt64(shifted.subarray(1))).toEqual(steps);
    expect(viewInt64(shifted.subarray(1)).buffer).not.toBe(shifted.buffer);
    Buffer.from(packFloat64(values)).copy(shifted, 1);
    expect(viewFloat64(shifted.subarray(1))).toEqual(values);
    expect(() => viewInt64(Buffer.alloc(7))).toThrow(RangeError);
  });
});

describe('user-chosen keys', () => {
  it('keeps __proto__ and other Object.prototype names as ordinary entries', () => {
    const reported = JSON.parse(
      '{"__proto__": 1, "constructor": 2, "toString": Infinity}'.replace('Infinity', '1e999'),
    );
    const encoded = encodeMetricMap(reported);
    expect(Object.getPrototypeOf(encoded)).toBeNull();
    expect(JSON.stringify(encoded)).toBe('{"__proto__":1,"constructor":2,"toString":"Infinity"}');
    const decoded = decodeMetricMap(JSON.parse(JSON.stringify(encoded)));
    expect(Object.keys(decoded)).toEqual(['__proto__', 'constructor', 'toString']);
    expect(Object.getOwnPropertyDescriptor(decoded, '__proto__')?.value).toBe(1);
    expect(decoded.toString).toBe(Number.POSITIVE_INFINITY);
    const name = '__proto__'; // a metric name as it arrives
    const plain: Record<string, number> = {};
    plain[name] = 5; // what the store used to do: the entry is silently dropped
    expect(Object.keys(plain)).toEqual([]);
    const safe = userKeyed<number>();
    safe[name] = 5;
    expect(Object.keys(safe)).toEqual(['__proto__']);
  });
});

describe('config trees', () => {
  const roundTrip = (value: unknown) => decodeJsonTree(JSON.parse(JSON.stringify(encodeJsonTree(value))));

  it('keeps NaN, ±Infinity and -0 at any depth, next to strings that spell them', () => {
    const config = {
      a: Number.NaN,
      b: [Number.POSITIVE_INFINITY, { c: Number.NEGATIVE_INFINITY }],
      z: -0,
      s: 'NaN',
      n: null,
      t: true,
      x: 1.5,
    };
    const back = roundTrip(config) as typeof config;
    expect(back).toEqual(config);
    expect(Object.is(back.z, -0)).toBe(true);
    expect(JSON.stringify(encodeJsonTree({ a: Number.NaN }))).toBe('{"a":{"$num":"NaN"}}');
  });

  it('stores an ordinary tree unchanged, so rows written before read back as they were', () => {
    const plain = { arch: 'resnet50', layers: [3, 4, 6, 3], opt: { lr: 0.001, $num: 1, other: 2 } };
    expect(JSON.stringify(encodeJsonTree(plain))).toBe(JSON.stringify(plain));
    expect(decodeJsonTree(plain)).toEqual(plain);
  });

  it('wraps objects that look like the encoding, so they read back as objects', () => {
    for (const lookalike of [
      { $num: 'NaN' },
      { $num: 3 },
      { $obj: { a: 1 } },
      { $obj: 5 },
      { $obj: { $num: 'NaN' } },
    ]) {
      expect(roundTrip({ v: lookalike })).toEqual({ v: lookalike });
    }
    expect(roundTrip({ $num: 'Infinity' })).toEqual({ $num: 'Infinity' });
  });

  it('keeps __proto__ keys in config objects', () => {
    const config = JSON.parse('{"__proto__": {"__proto__": [1]}, "k": 2}');
    const back = roundTrip(config) as Record<string, unknown>;
    expect(Object.keys(back)).toEqual(['__proto__', 'k']);
    const inner = Object.getOwnPropertyDescriptor(back, '__proto__')?.value as object;
    expect(Object.getOwnPropertyDescriptor(inner, '__proto__')?.value).toEqual([1]);
  });
});
