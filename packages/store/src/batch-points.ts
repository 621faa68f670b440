// Point identity of batch metrics. Within a job a point is (metric name, global step): the store keeps
// each point once, however the blocks that carried it were cut. Blocks keep the trainer's cut (one
// stored row per block) as long as nothing overlaps; what a new write does to points already stored:
// - the same value (and epoch) again: nothing — the stored point stays, with its first receipt time,
//   so a mirror that already sent it does not send it again;
// - a different value or epoch: the new one wins (last write wins, as re-reporting an epoch does);
//   the old point leaves its stored block, which is cut again around the hole.
// A point repeated inside one write keeps its last value. Pure functions: the store runs them inside
// the write's transaction (store.ts) on the stored blocks that overlap the write's step range.
import type { BatchBlock } from './types.ts';

/** A stored block as the write reads it back. */
export interface StoredBatchBlock extends BatchBlock {
  id: number;
}

/** What a write does, once overlaps are resolved. */
export interface BatchWritePlan {
  /** Blocks to insert: the incoming ones, less the points already stored or repeated later. */
  inserts: BatchBlock[];
  /** Stored blocks that lose points: what remains of each, cut into dense blocks (none: delete it). */
  rewrites: { id: number; pieces: BatchBlock[] }[];
  /** Incoming points equal to a stored point (kept as stored). */
  unchangedPoints: number;
  /** Stored points replaced by an incoming point of the same name and step with another value. */
  replacedPoints: number;
}

// Steps are compared by their two 32-bit words, not read as BigInts: every read of a BigInt64Array
// element makes a BigInt, and these scans read each step of every block a stream writes (5 % of a
// loaded sidecar's allocation, which its scavenges then pay for).
const HIGH = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0; // little-endian: high word second
const LOW = 1 - HIGH;

/** The 32-bit words of `steps`, for {@link compareSteps}. */
function wordsOf(steps: BigInt64Array): Int32Array {
  return new Int32Array(steps.buffer, steps.byteOffset, steps.length * 2);
}

/** Step `i` of `a` against step `j` of `b` (words of {@link wordsOf}): negative, 0 or positive. */
function compareSteps(a: Int32Array, i: number, b: Int32Array, j: number): number {
  const high = a[2 * i + HIGH]! - b[2 * j + HIGH]!; // signed: the sign of the step
  return high !== 0 ? high : (a[2 * i + LOW]! >>> 0) - (b[2 * j + LOW]! >>> 0);
}

/** The smallest and largest step of a block (blocks need not list their steps in order). */
export function stepBounds(steps: BigInt64Array): { min: bigint; max: bigint } {
  const words = wordsOf(steps);
  let min = 0;
  let max = 0;
  for (let i = 1; i < steps.length; i++) {
    if (compareSteps(words, i, words, min) < 0) min = i;
    else if (compareSteps(words, i, words, max) > 0) max = i;
  }
  return { min: steps[min]!, max: steps[max]! };
}

/**
 * True unless every block lists strictly increasing steps and starts after the last step of every
 * earlier block with a name in common: the usual stream, in which no point can repeat.
 */
function mayRepeat(blocks: readonly BatchBlock[]): boolean {
  /** Per name, the last step of the last block that had it: words and index. */
  const last = new Map<string, { words: Int32Array; at: number }>();
  for (const block of blocks) {
    const steps = block.steps;
    const words = wordsOf(steps);
    for (let i = 1; i < steps.length; i++) if (compareSteps(words, i, words, i - 1) <= 0) return true;
    const end = { words, at: steps.length - 1 };
    for (const name of block.names) {
      const seen = last.get(name);
      if (seen !== undefined && compareSteps(words, 0, seen.words, seen.at) <= 0) return true;
      last.set(name, end);
    }
  }
  return false;
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** A step as a cheap map key (a number whenever it is exact). */
function stepKey(step: bigint): number | string {
  return step >= MIN_SAFE && step <= MAX_SAFE ? Number(step) : String(step);
}

/** A cell of an incoming block: block index and value index, packed into one number. */
const CELL_SPAN = 2 ** 26;

/** name → step → the last incoming cell holding that point; repeats mark the earlier cell dropped. */
function indexCells(blocks: readonly BatchBlock[], masks: (Uint8Array | undefined)[]) {
  const index = new Map<string, Map<number | string, number>>();
  blocks.forEach((block, b) => {
    const columns = block.names.length;
    const byName = block.names.map((name) => {
      let m = index.get(name);
      if (!m) {
        m = new Map();
        index.set(name, m);
      }
      return m;
    });
    for (let row = 0; row < block.steps.length; row++) {
      const key = stepKey(block.steps[row]!);
      for (let c = 0; c < columns; c++) {
        const cell = b * CELL_SPAN + row * columns + c;
        const earlier = byName[c]!.get(key);
        if (earlier !== undefined) mark(masks, blocks, earlier);
        byName[c]!.set(key, cell);
      }
    }
  });
  return index;
}

function mark(masks: (Uint8Array | undefined)[], blocks: readonly BatchBlock[], cell: number): void {
  const b = Math.floor(cell / CELL_SPAN);
  masks[b] ??= new Uint8Array(blocks[b]!.values.length);
  masks[b][cell % CELL_SPAN] = 1;
}

/** Same epoch, names and steps, and the very same value bits. */
function sameBlock(a: BatchBlock, b: BatchBlock): boolean {
  if (a.epoch !== b.epoch || a.names.length !== b.names.length || a.steps.length !== b.steps.length)
    return false;
  if (!a.names.every((n, i) => n === b.names[i])) return false;
  const bytes = (x: BigInt64Array | Float64Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
  return bytes(a.steps).equals(bytes(b.steps)) && bytes(a.values).equals(bytes(b.values));
}

/** Two stored doubles are the same point value: bit for bit (NaN payloads, -0 included). */
function sameValue(a: number, b: number): boolean {
  if (Object.is(a, b)) return true;
  if (!Number.isNaN(a) || !Number.isNaN(b)) return false;
  const bits = new Float64Array([a, b]);
  const words = new BigUint64Array(bits.buffer);
  return words[0] === words[1];
}

/**
 * The points of `block` not dropped by `mask`, as dense blocks: runs of rows that keep the same
 * columns (rows that keep none are skipped).
 */
export function cutAround(block: BatchBlock, mask: Uint8Array | undefined): BatchBlock[] {
  if (!mask) return [block];
  const columns = block.names.length;
  const pieces: BatchBlock[] = [];
  let kept: number[] = [];
  let keptKey = '';
  let steps: bigint[] = [];
  let values: number[] = [];
  const close = () => {
    if (steps.length === 0) return;
    pieces.push({
      epoch: block.epoch,
      names: kept.map((c) => block.names[c]!),
      steps: BigInt64Array.from(steps),
      values: Float64Array.from(values),
    });
    steps = [];
    values = [];
  };
  for (let row = 0; row < block.steps.length; row++) {
    const cols: number[] = [];
    for (let c = 0; c < columns; c++) if (!mask[row * columns + c]) cols.push(c);
    if (cols.length === 0) continue;
    const key = cols.join(',');
    if (key !== keptKey) {
      close();
      kept = cols;
      keptKey = key;
    }
    steps.push(block.steps[row]!);
    for (const c of cols) values.push(block.values[row * columns + c]!);
  }
  close();
  return pieces;
}

/**
 * Resolves a write of `incoming` (in stream order) against the `stored` blocks that may overlap it.
 * The usual write (increasing steps, nothing stored in its range) passes through untouched.
 */
export function planBatchWrite(
  incoming: readonly BatchBlock[],
  stored: readonly StoredBatchBlock[],
): BatchWritePlan {
  const masks: (Uint8Array | undefined)[] = new Array(incoming.length);
  if (stored.length === 0 && !mayRepeat(incoming)) {
    return { inserts: [...incoming], rewrites: [], unchangedPoints: 0, replacedPoints: 0 };
  }
  if (incoming.length >= CELL_SPAN || incoming.some((b) => b.values.length >= CELL_SPAN)) {
    throw new RangeError(`a batch write holds at most ${CELL_SPAN - 1} blocks of ${CELL_SPAN - 1} values`);
  }
  const index = indexCells(incoming, masks);
  let unchangedPoints = 0;
  let replacedPoints = 0;
  // A block resent exactly as stored (the usual retry after a lost acknowledgement) is dropped whole.
  const dropped = new Set<number>();
  for (const block of stored) {
    incoming.forEach((candidate, b) => {
      if (!dropped.has(b) && sameBlock(candidate, block)) dropped.add(b);
    });
  }
  const rewrites: BatchWritePlan['rewrites'] = [];
  for (const block of stored) {
    const columns = block.names.length;
    let storedMask: Uint8Array | undefined;
    for (let c = 0; c < columns; c++) {
      const byStep = index.get(block.names[c]!);
      if (!byStep) continue;
      for (let row = 0; row < block.steps.length; row++) {
        const cell = byStep.get(stepKey(block.steps[row]!));
        if (cell === undefined) continue;
        const b = Math.floor(cell / CELL_SPAN);
        const source = incoming[b]!;
        const value = source.values[cell % CELL_SPAN]!;
        if (source.epoch === block.epoch && sameValue(value, block.values[row * columns + c]!)) {
          unchangedPoints++;
          if (!dropped.has(b)) mark(masks, incoming, cell);
        } else {
          replacedPoints++;
          storedMask ??= new Uint8Array(block.values.length);
          storedMask[row * columns + c] = 1;
        }
      }
    }
    if (storedMask) rewrites.push({ id: block.id, pieces: cutAround(block, storedMask) });
  }
  const inserts = incoming.flatMap((block, b) => (dropped.has(b) ? [] : cutAround(block, masks[b])));
  return { inserts, rewrites, unchangedPoints, replacedPoints };
}
