// Downsampling of a long series into buckets of steps (W&B style): per bucket the smallest and largest
// finite value, the last point (the value at the bucket's largest step) and the count. The bucket width
// is fixed by the requested range, so the answer is deterministic and a zoomed range, asked again,
// comes back at full resolution once it holds no more steps than buckets.
//
// A series of a million points is bucketed on every chart load, so the state is kept in typed arrays
// (no object per bucket or point), and a range within ±2^53 — every real one — is bucketed with
// Numbers read straight from the stored int64 words: no BigInt per point. A range beyond that falls
// back to exact BigInt arithmetic, point by point.
import { endianness } from 'node:os';

/** One bucket as it is answered. */
export interface Bucket {
  firstStep: bigint;
  lastStep: bigint;
  min: number;
  max: number;
  last: number;
  count: number;
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const WORD = 2 ** 32;
/** The int64 words of a BigInt64Array can be read as (low, high) Int32 pairs. */
const LITTLE_ENDIAN = endianness() === 'LE';

/** Accumulates the points of one metric over [minStep, maxStep] into at most `maxBuckets` buckets. */
export class SeriesBuckets {
  // Steps are int64: answered as bigints, so steps beyond 2^53 stay exact and answer as they were stored.
  readonly #min: bigint;
  readonly #max: bigint;
  readonly #width: bigint;
  /** The range and width as Numbers, when all of the range is exact as a Number (and steps are read as words). */
  readonly #exact: { min: number; max: number; width: number } | undefined;
  readonly #count: Float64Array;
  readonly #low: Float64Array;
  readonly #high: Float64Array;
  readonly #last: Float64Array;
  /** First and last step per bucket: Numbers on the exact path, bigints otherwise. */
  readonly #firstStep: Float64Array | BigInt64Array;
  readonly #lastStep: Float64Array | BigInt64Array;
  #total = 0;

  constructor(minStep: bigint, maxStep: bigint, maxBuckets: number) {
    this.#min = minStep;
    this.#max = maxStep;
    const span = maxStep - minStep + 1n;
    const buckets = BigInt(maxBuckets);
    this.#width = span <= 0n ? 1n : (span + buckets - 1n) / buckets;
    const n = span <= 0n ? 0 : Number((span + this.#width - 1n) / this.#width);
    this.#exact =
      LITTLE_ENDIAN && minStep >= MIN_SAFE && maxStep <= MAX_SAFE && span <= MAX_SAFE
        ? { min: Number(minStep), max: Number(maxStep), width: Number(this.#width) }
        : undefined;
    this.#count = new Float64Array(n);
    this.#low = new Float64Array(n);
    this.#high = new Float64Array(n);
    this.#last = new Float64Array(n);
    this.#firstStep = this.#exact ? new Float64Array(n) : new BigInt64Array(n);
    this.#lastStep = this.#exact ? new Float64Array(n) : new BigInt64Array(n);
  }

  /** Adds one point; a point outside the range is ignored. A repeated step keeps the later value as last. */
  add(step: bigint, value: number): void {
    if (step < this.#min || step > this.#max) return;
    // One point as a block of one: the bucketing lives in addColumn (this is not the hot path).
    if (this.#exact) this.addColumn(BigInt64Array.of(step), Float64Array.of(value), 0, 1);
    else this.#addBig(step, value);
  }

  /**
   * Adds column `column` of a stored block (`values` row-major, `width` values a row), as `add` would
   * point by point.
   */
  addColumn(steps: BigInt64Array, values: Float64Array, column: number, width: number): void {
    const exact = this.#exact;
    if (!exact) {
      for (let row = 0; row < steps.length; row++) {
        const step = steps[row]!;
        if (step >= this.#min && step <= this.#max) this.#addBig(step, values[row * width + column]!);
      }
      return;
    }
    const words = new Int32Array(steps.buffer, steps.byteOffset, steps.length * 2);
    const { min, max, width: bucketWidth } = exact;
    // Over locals: this loop runs once per stored point.
    const count = this.#count;
    const low = this.#low;
    const high = this.#high;
    const last = this.#last;
    const first = this.#firstStep as Float64Array;
    const lastStep = this.#lastStep as Float64Array;
    let added = 0;
    for (let row = 0; row < steps.length; row++) {
      // Exact for |step| < 2^53; a step beyond rounds to a Number beyond the (exact) range: ignored.
      const step = words[2 * row + 1]! * WORD + (words[2 * row]! >>> 0);
      if (step < min || step > max) continue;
      const value = values[row * width + column]!;
      const offset = step - min;
      let index = Math.floor(offset / bucketWidth);
      if (index * bucketWidth > offset) index--;
      else if ((index + 1) * bucketWidth <= offset) index++;
      added++;
      const finite = value - value === 0; // not NaN, not ±Infinity
      const seen = count[index]!;
      count[index] = seen + 1;
      if (seen === 0) {
        first[index] = step;
        lastStep[index] = step;
        low[index] = finite ? value : Number.NaN;
        high[index] = finite ? value : Number.NaN;
        last[index] = value;
        continue;
      }
      if (step < first[index]!) first[index] = step;
      if (step >= lastStep[index]!) {
        lastStep[index] = step;
        last[index] = value;
      }
      if (finite) {
        if (!(value >= low[index]!)) low[index] = value; // NaN min: the first finite value
        if (!(value <= high[index]!)) high[index] = value;
      }
    }
    this.#total += added;
  }

  #addBig(step: bigint, value: number): void {
    const index = Number((step - this.#min) / this.#width);
    const first = this.#firstStep as BigInt64Array;
    const last = this.#lastStep as BigInt64Array;
    if (this.#count[index] === 0) {
      first[index] = step;
      last[index] = step;
    } else {
      if (step < first[index]!) first[index] = step;
      if (step < last[index]!) {
        this.#addValue(index, value, false);
        return;
      }
      last[index] = step;
    }
    this.#addValue(index, value, true);
  }

  /** Count, min and max of bucket `index` with `value`; `isLast`: it is the bucket's last point so far. */
  #addValue(index: number, value: number, isLast: boolean): void {
    this.#total++;
    const finite = Number.isFinite(value);
    const seen = this.#count[index]!;
    this.#count[index] = seen + 1;
    if (seen === 0) {
      this.#low[index] = finite ? value : Number.NaN;
      this.#high[index] = finite ? value : Number.NaN;
      this.#last[index] = value;
      return;
    }
    if (isLast) this.#last[index] = value;
    if (finite) {
      if (!(value >= this.#low[index]!)) this.#low[index] = value; // NaN min: the first finite value
      if (!(value <= this.#high[index]!)) this.#high[index] = value;
    }
  }

  /** Points added within the range. */
  get total(): number {
    return this.#total;
  }

  /** The non-empty buckets in step order. */
  buckets(): Bucket[] {
    const out: Bucket[] = [];
    for (let i = 0; i < this.#count.length; i++) {
      if (this.#count[i] === 0) continue;
      out.push({
        firstStep: BigInt(this.#firstStep[i]!),
        lastStep: BigInt(this.#lastStep[i]!),
        min: this.#low[i]!,
        max: this.#high[i]!,
        last: this.#last[i]!,
        count: this.#count[i]!,
      });
    }
    return out;
  }
}
