// Downsampling of a long series into buckets of steps (W&B style): per bucket the smallest and largest
// finite value, the last point (the value at the bucket's largest step) and the count. The bucket width
// is fixed by the requested range, so the answer is deterministic and a zoomed range, asked again,
// comes back at full resolution once it holds no more steps than buckets.

/** One bucket as it is accumulated. */
export interface Bucket {
  firstStep: bigint;
  lastStep: bigint;
  min: number;
  max: number;
  last: number;
  count: number;
}

/** Accumulates the points of one metric over [minStep, maxStep] into at most `maxBuckets` buckets. */
export class SeriesBuckets {
  // Steps are int64: kept as bigints, so steps beyond 2^53 stay exact and answer as they were stored.
  readonly #min: bigint;
  readonly #max: bigint;
  readonly #width: bigint;
  readonly #buckets: (Bucket | undefined)[];
  #total = 0;

  constructor(minStep: bigint, maxStep: bigint, maxBuckets: number) {
    this.#min = minStep;
    this.#max = maxStep;
    const span = maxStep - minStep + 1n;
    const buckets = BigInt(maxBuckets);
    this.#width = span <= 0n ? 1n : (span + buckets - 1n) / buckets;
    this.#buckets = span <= 0n ? [] : new Array(Number((span + this.#width - 1n) / this.#width));
  }

  /** Adds one point; a point outside the range is ignored. A repeated step keeps the later value as last. */
  add(step: bigint, value: number): void {
    if (step < this.#min || step > this.#max) return;
    this.#total++;
    const index = Number((step - this.#min) / this.#width);
    const finite = Number.isFinite(value);
    const bucket = this.#buckets[index];
    if (!bucket) {
      this.#buckets[index] = {
        firstStep: step,
        lastStep: step,
        min: finite ? value : Number.NaN,
        max: finite ? value : Number.NaN,
        last: value,
        count: 1,
      };
      return;
    }
    bucket.count++;
    if (step < bucket.firstStep) bucket.firstStep = step;
    if (step >= bucket.lastStep) {
      bucket.lastStep = step;
      bucket.last = value;
    }
    if (finite) {
      if (!(value >= bucket.min)) bucket.min = value; // NaN min: the first finite value
      if (!(value <= bucket.max)) bucket.max = value;
    }
  }

  /** Points added within the range. */
  get total(): number {
    return this.#total;
  }

  /** The non-empty buckets in step order. */
  buckets(): Bucket[] {
    return this.#buckets.filter((b): b is Bucket => b !== undefined);
  }
}
