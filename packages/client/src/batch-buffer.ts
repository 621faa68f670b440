/**
 * A run of consecutive batch steps of one epoch with the same metric names, held in typed arrays:
 * `values` is row-major, `values[row * names.length + column]`. It becomes one `BatchMetricsBlock`.
 */
export interface SealedBlock {
  /** Sequence number, increasing by one per sealed block; flushes wait on it. */
  readonly seq: number;
  /** The epoch of every row. */
  readonly epoch: number;
  /** The columns, in the order the metrics object listed them. */
  readonly names: readonly string[];
  /** The global step of each row. */
  readonly steps: Float64Array;
  /** `steps.length × names.length` values, row-major. */
  readonly values: Float64Array;
}

/** Number of points (values) in a block. */
export function blockPoints(block: SealedBlock): number {
  return block.values.length;
}

/** Options of {@link BatchBuffer}. */
export interface BatchBufferOptions {
  /**
   * Block size: a block holds at most `max(1, floor(maxBlockPoints / names))` rows and is sealed as
   * soon as another row would not fit; the next step starts a new block.
   */
  readonly maxBlockPoints: number;
  /**
   * At most this many points are held (buffered plus in flight). Beyond it new points are dropped
   * (drop-newest) and counted in {@link BatchBuffer.dropped}.
   */
  readonly capacityPoints: number;
}

const INITIAL_ROWS = 16;
const EMPTY = new Float64Array(0);

/**
 * The hot path of `onBatchEnd`: appends one step's metrics into the typed arrays of the current
 * block, with no per-step allocation. A step whose epoch or metric names (in order) differ from the
 * current block's starts a new block. Pure and synchronous; it never throws.
 *
 * Bounded: when {@link BatchBufferOptions.capacityPoints} points are held, new steps are dropped
 * (drop-newest) and counted. Drop-newest keeps the buffer O(1) and never touches blocks that are
 * being sent; what reaches the sidecar is then an unbroken prefix plus whatever follows the outage.
 */
export class BatchBuffer {
  /** Points appended (accepted into the buffer). */
  appended = 0;
  /** Points dropped because the buffer was full. */
  dropped = 0;
  /** Steps ignored because their step or epoch was not a non-negative safe integer. */
  invalidSteps = 0;
  /** Points held: in the current block, in sealed blocks, and taken but not yet released. */
  held = 0;
  /** Points in sealed blocks not yet taken, plus the current block. */
  pending = 0;

  private readonly maxBlockPoints: number;
  private readonly capacityPoints: number;
  private readonly sealed: SealedBlock[] = [];
  private nextSeq = 1;

  // The current block.
  private names: readonly string[] = [];
  private cols = 0;
  private epoch = -1;
  private rows = 0;
  /** Rows the current block may hold: `max(1, floor(maxBlockPoints / cols))`. */
  private maxRows = 0;
  private rowCapacity = 0;
  private steps: Float64Array = EMPTY;
  private values: Float64Array = EMPTY;

  constructor(options: BatchBufferOptions) {
    this.maxBlockPoints = Math.max(1, Math.floor(options.maxBlockPoints));
    this.capacityPoints = Math.max(0, Math.floor(options.capacityPoints));
  }

  /** Sequence number of the last sealed block (0 when none was sealed yet). */
  get lastSealedSeq(): number {
    return this.nextSeq - 1;
  }

  /** Number of sealed blocks waiting to be taken. */
  get sealedBlocks(): number {
    return this.sealed.length;
  }

  /**
   * Appends one step. Returns false when the step was dropped (buffer full) or ignored (invalid step
   * or epoch, or no metrics).
   */
  append(epoch: number, step: number, metrics: Readonly<Record<string, number>>): boolean {
    if (
      !Number.isSafeInteger(step) ||
      step < 0 ||
      !Number.isSafeInteger(epoch) ||
      epoch < 0 ||
      epoch > 0x7fffffff
    ) {
      this.invalidSteps++;
      return false;
    }
    const cols = this.cols;
    // Fast path: same epoch, same names in the same order, room in the current arrays. The row is
    // written speculatively and only committed (rows++) when every name matched.
    if (epoch === this.epoch && this.rows < this.rowCapacity) {
      if (this.held + cols > this.capacityPoints) {
        this.dropped += cols;
        return false;
      }
      const names = this.names;
      const values = this.values;
      const base = this.rows * cols;
      let i = 0;
      let same = true;
      for (const name in metrics) {
        if (i >= cols || names[i] !== name) {
          same = false;
          break;
        }
        values[base + i] = +(metrics[name] as number);
        i++;
      }
      if (same && i === cols) return this.commitRow(step);
    }
    return this.appendSlow(epoch, step, metrics);
  }

  private appendSlow(epoch: number, step: number, metrics: Readonly<Record<string, number>>): boolean {
    const keys: string[] = [];
    for (const name in metrics) keys.push(name);
    const cols = keys.length;
    if (cols === 0) {
      this.invalidSteps++;
      return false;
    }
    if (this.held + cols > this.capacityPoints) {
      this.dropped += cols;
      return false;
    }
    const sameColumns =
      epoch === this.epoch && cols === this.cols && keys.every((name, i) => name === this.names[i]);
    if (sameColumns && this.rows < this.maxRows) {
      this.grow();
    } else {
      // Other columns or epoch, or (defensively) a full block: seal it and start a new one.
      this.seal();
      this.names = keys;
      this.cols = cols;
      this.epoch = epoch;
      this.maxRows = Math.max(1, Math.floor(this.maxBlockPoints / cols));
      this.rowCapacity = Math.min(INITIAL_ROWS, this.maxRows);
      this.steps = new Float64Array(this.rowCapacity);
      this.values = new Float64Array(this.rowCapacity * cols);
    }
    const base = this.rows * cols;
    for (let i = 0; i < cols; i++) this.values[base + i] = +(metrics[keys[i] as string] as number);
    return this.commitRow(step);
  }

  /** Counts the row whose values were just written at `rows`; seals the block when it is full. */
  private commitRow(step: number): true {
    this.steps[this.rows++] = step;
    this.appended += this.cols;
    this.held += this.cols;
    this.pending += this.cols;
    if (this.rows >= this.maxRows) this.seal();
    return true;
  }

  /**
   * Doubles the current block's arrays, up to {@link maxRows}. Only called while `rows < maxRows`,
   * so there is always room for one more row afterwards (a typed array silently ignores writes
   * past its end, which would lose the row while still counting its points).
   */
  private grow(): void {
    const rowCapacity = Math.min(this.maxRows, Math.max(INITIAL_ROWS, this.rowCapacity * 2));
    const steps = new Float64Array(rowCapacity);
    steps.set(this.steps.subarray(0, this.rows));
    const values = new Float64Array(rowCapacity * this.cols);
    values.set(this.values.subarray(0, this.rows * this.cols));
    this.steps = steps;
    this.values = values;
    this.rowCapacity = rowCapacity;
  }

  /** Seals the current block (if it has rows), so that it can be taken; the next step starts a new one. */
  seal(): void {
    if (this.rows > 0) {
      this.sealed.push({
        seq: this.nextSeq++,
        epoch: this.epoch,
        names: this.names,
        steps: this.steps.subarray(0, this.rows),
        values: this.values.subarray(0, this.rows * this.cols),
      });
    }
    // Same columns may continue in a fresh block; force the slow path to allocate it.
    this.rows = 0;
    this.rowCapacity = 0;
    this.steps = EMPTY;
    this.values = EMPTY;
  }

  /**
   * Takes sealed blocks, oldest first, up to `maxPoints` points (but at least one block). Their
   * points stay counted in {@link held} until {@link release}.
   */
  take(maxPoints: number): SealedBlock[] {
    const taken: SealedBlock[] = [];
    let points = 0;
    let count = 0;
    for (const block of this.sealed) {
      if (count > 0 && points + block.values.length > maxPoints) break;
      points += block.values.length;
      count++;
    }
    for (let i = 0; i < count; i++) taken.push(this.sealed[i] as SealedBlock);
    this.sealed.splice(0, count);
    this.pending -= points;
    return taken;
  }

  /** Gives back the capacity of taken blocks once they are acknowledged or given up. */
  release(blocks: readonly SealedBlock[]): void {
    for (const block of blocks) this.held -= block.values.length;
  }

  /** Drops everything not yet taken, counting it as dropped (used after the job ended). */
  clear(): number {
    this.seal();
    const blocks = this.take(Number.POSITIVE_INFINITY);
    this.release(blocks);
    let points = 0;
    for (const block of blocks) points += block.values.length;
    this.dropped += points;
    return points;
  }
}

let precompiled = false;

/**
 * Runs {@link BatchBuffer.append}'s paths once on a scratch buffer. V8 compiles a function on its
 * first call — about 0.3 ms for these, measured — and that call would otherwise be a trainer's first
 * `onBatchEnd`; the client's constructor calls this instead (once per process).
 */
export function precompileBatchBuffer(): void {
  if (precompiled) return;
  precompiled = true;
  const scratch = new BatchBuffer({ maxBlockPoints: 2, capacityPoints: 4 });
  scratch.append(0, 0, { a: 0 }); // a new block
  scratch.append(0, 1, { a: 0 }); // the fast path; the block is full: sealed
  scratch.append(0, 2, { a: 0, b: 0 }); // other names: another block
  scratch.append(0, 3, { a: 0 }); // full: dropped
}
