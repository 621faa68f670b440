import { describe, expect, it } from 'vitest';
import { SeriesBuckets } from './series.ts';

describe('SeriesBuckets', () => {
  it('keeps min, max, last and count per bucket, and the last point of the series', () => {
    const series = new SeriesBuckets(0n, 999_999n, 2000);
    for (let step = 0; step < 1_000_000; step++)
      series.add(BigInt(step), Math.sin(step / 1000) + (step === 777 ? 5 : 0));
    const buckets = series.buckets();
    expect(buckets.length).toBe(2000);
    expect(series.total).toBe(1_000_000);
    expect(buckets.reduce((n, b) => n + b.count, 0)).toBe(1_000_000);
    expect(buckets.every((b) => b.count === 500 && b.lastStep - b.firstStep === 499n)).toBe(true);
    // The spike survives downsampling as its bucket's max.
    expect(buckets[1]!.max).toBeCloseTo(Math.sin(0.777) + 5, 12);
    expect(buckets[1]!.min).toBeCloseTo(Math.sin(0.5), 12);
    const final = buckets.at(-1)!;
    expect(final.lastStep).toBe(999_999n);
    expect(final.last).toBe(Math.sin(999.999));
  });

  it('a range with no more steps than buckets is at full resolution', () => {
    const series = new SeriesBuckets(10n, 19n, 2000);
    for (let step = 0; step < 100; step++) series.add(BigInt(step), step * 2);
    const buckets = series.buckets();
    expect(buckets.map((b) => [b.firstStep, b.last, b.count])).toEqual(
      Array.from({ length: 10 }, (_, i) => [BigInt(10 + i), (10 + i) * 2, 1]),
    );
    expect(series.total).toBe(10);
  });

  it('min and max skip non-finite values; last keeps them; a repeated step keeps the later value', () => {
    const series = new SeriesBuckets(0n, 3n, 1);
    series.add(0n, Number.NaN);
    series.add(1n, 3);
    series.add(2n, Number.POSITIVE_INFINITY);
    series.add(1n, -1);
    const [bucket] = series.buckets();
    expect(bucket).toMatchObject({ firstStep: 0n, lastStep: 2n, min: -1, max: 3, count: 4 });
    expect(bucket!.last).toBe(Number.POSITIVE_INFINITY);
    const nan = new SeriesBuckets(0n, 0n, 1);
    nan.add(0n, Number.NaN);
    expect(nan.buckets()[0]!.min).toBeNaN();
  });

  it('steps at the ends of int64 stay exact (a Number would round them past int64)', () => {
    const max = 9_223_372_036_854_775_807n;
    const min = -9_223_372_036_854_775_808n;
    const series = new SeriesBuckets(min, max, 1);
    series.add(min, 1);
    series.add(6940n, 2);
    series.add(max, 3);
    expect(series.buckets()).toEqual([{ firstStep: min, lastStep: max, min: 1, max: 3, last: 3, count: 3 }]);
    const empty = new SeriesBuckets(6940n, 10n, 1); // a range after the stored steps
    empty.add(10n, 1);
    expect(empty.buckets()).toEqual([]);
  });
});

describe('SeriesBuckets.addColumn', () => {
  /** The same points through add and through addColumn: the same buckets and total. */
  function both(
    min: bigint,
    max: bigint,
    maxBuckets: number,
    steps: bigint[],
    rows: number[][],
    column: number,
  ) {
    const byPoint = new SeriesBuckets(min, max, maxBuckets);
    rows.forEach((row, i) => {
      byPoint.add(steps[i]!, row[column]!);
    });
    const byColumn = new SeriesBuckets(min, max, maxBuckets);
    byColumn.addColumn(BigInt64Array.from(steps), Float64Array.from(rows.flat()), column, rows[0]!.length);
    expect(byColumn.total).toBe(byPoint.total);
    expect(byColumn.buckets()).toEqual(byPoint.buckets());
    return byColumn.buckets();
  }

  it('reads one column of a block, negative and unordered steps included, as add does point by point', () => {
    const steps = [5n, -3n, 7n, 7n, 2n, -4_294_967_297n, 4_294_967_296n, 0n, 11n];
    const rows = steps.map((s, i) => [Number(s) * 10, i === 3 ? Number.NaN : -i, i]);
    const buckets = both(-4_294_967_300n, 4_294_967_296n, 3, steps, rows, 1);
    expect(buckets.reduce((n, b) => n + b.count, 0)).toBe(steps.length);
    both(-3n, 7n, 4, steps, rows, 0);
    const at7 = both(7n, 7n, 10, steps, rows, 2);
    expect(at7).toEqual([{ firstStep: 7n, lastStep: 7n, min: 2, max: 3, last: 3, count: 2 }]);
  });

  it('a block with steps beyond 2^53 around an exact range keeps them out, and a huge range stays exact', () => {
    const big = 9_007_199_254_740_993n; // 2^53 + 1: rounds to 2^53 as a Number
    const steps = [big, 9_007_199_254_740_991n, -big, 1n];
    const rows = steps.map((_, i) => [i]);
    expect(both(0n, 9_007_199_254_740_991n, 2, steps, rows, 0).map((b) => b.count)).toEqual([1, 1]);
    const wide = both(-9_223_372_036_854_775_808n, 9_223_372_036_854_775_807n, 7, steps, rows, 0);
    expect(wide.flatMap((b) => [b.firstStep, b.lastStep])).toContain(big);
  });

  it('bucket edges of a wide exact range fall where BigInt division puts them', () => {
    const max = 9_007_199_254_740_990n;
    const steps: bigint[] = [];
    for (const edge of [1n, 2n, 3n, 4n, 5n, 6n])
      for (const d of [-1n, 0n, 1n]) steps.push((max / 7n) * edge + d);
    both(
      0n,
      max,
      7,
      steps,
      steps.map((_, i) => [i]),
      0,
    );
  });
});
