import { describe, expect, it } from 'vitest';
import { SeriesBuckets } from './series.ts';

describe('SeriesBuckets', () => {
  it('keeps min, max, last and count per bucket, and the last point of the series', () => {
    const series = new SeriesBuckets(0, 999_999, 2000);
    for (let step = 0; step < 1_000_000; step++)
      series.add(step, Math.sin(step / 1000) + (step === 777 ? 5 : 0));
    const buckets = series.buckets();
    expect(buckets.length).toBe(2000);
    expect(series.total).toBe(1_000_000);
    expect(buckets.reduce((n, b) => n + b.count, 0)).toBe(1_000_000);
    expect(buckets.every((b) => b.count === 500 && b.lastStep - b.firstStep === 499)).toBe(true);
    // The spike survives downsampling as its bucket's max.
    expect(buckets[1]!.max).toBeCloseTo(Math.sin(0.777) + 5, 12);
    expect(buckets[1]!.min).toBeCloseTo(Math.sin(0.5), 12);
    const final = buckets.at(-1)!;
    expect(final.lastStep).toBe(999_999);
    expect(final.last).toBe(Math.sin(999.999));
  });

  it('a range with no more steps than buckets is at full resolution', () => {
    const series = new SeriesBuckets(10, 19, 2000);
    for (let step = 0; step < 100; step++) series.add(step, step * 2);
    const buckets = series.buckets();
    expect(buckets.map((b) => [b.firstStep, b.last, b.count])).toEqual(
      Array.from({ length: 10 }, (_, i) => [10 + i, (10 + i) * 2, 1]),
    );
    expect(series.total).toBe(10);
  });

  it('min and max skip non-finite values; last keeps them; a repeated step keeps the later value', () => {
    const series = new SeriesBuckets(0, 3, 1);
    series.add(0, Number.NaN);
    series.add(1, 3);
    series.add(2, Number.POSITIVE_INFINITY);
    series.add(1, -1);
    const [bucket] = series.buckets();
    expect(bucket).toMatchObject({ firstStep: 0, lastStep: 2, min: -1, max: 3, count: 4 });
    expect(bucket!.last).toBe(Number.POSITIVE_INFINITY);
    const nan = new SeriesBuckets(0, 0, 1);
    nan.add(0, Number.NaN);
    expect(nan.buckets()[0]!.min).toBeNaN();
  });
});
