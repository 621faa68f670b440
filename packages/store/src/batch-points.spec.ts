import { describe, expect, it } from 'vitest';
import { stepBounds } from './batch-points.ts';

describe('stepBounds', () => {
  it('finds the smallest and largest step across 32-bit word boundaries, signs and the int64 limits', () => {
    const steps = [
      2n ** 32n,
      2n ** 32n - 1n,
      -1n,
      0n,
      2n ** 31n,
      -(2n ** 32n),
      2n ** 63n - 1n,
      -(2n ** 63n),
      123_456_789_012_345n,
    ];
    expect(stepBounds(BigInt64Array.from(steps))).toEqual({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    // Steps a low word apart, unordered: the low word compares unsigned.
    expect(stepBounds(BigInt64Array.from([2n ** 32n + 5n, 2n ** 32n + 2n ** 31n, 2n ** 32n]))).toEqual({
      min: 2n ** 32n,
      max: 2n ** 32n + 2n ** 31n,
    });
    expect(stepBounds(BigInt64Array.from([7n]))).toEqual({ min: 7n, max: 7n });
  });

  it('reads a block that is a view into a larger buffer', () => {
    const all = BigInt64Array.from([100n, 3n, 9n, 5n, -100n]);
    expect(stepBounds(all.subarray(1, 4))).toEqual({ min: 3n, max: 9n });
  });
});
