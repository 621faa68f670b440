// The wire form's tags are proto/src/batch-wire.ts's, which also holds the sidecar's decoder of it.
import { BATCH_TAGS, LITTLE_ENDIAN } from '@training-callbacks/proto';
import type { SealedBlock } from './batch-buffer.ts';

/** At most this many points go into one message of a ReportBatchMetrics stream (1 MiB of values). */
export const MAX_POINTS_PER_MESSAGE = 131_072;

const {
  requestJobId: REQUEST_JOB_ID,
  requestBlocks: REQUEST_BLOCKS,
  requestSessionId: REQUEST_SESSION_ID,
  blockEpoch: BLOCK_EPOCH,
  blockNames: BLOCK_NAMES,
  blockSteps: BLOCK_STEPS,
  blockValues: BLOCK_VALUES,
} = BATCH_TAGS;
// Every tag is written as one byte.
if (Math.max(...Object.values(BATCH_TAGS)) > 127) {
  throw new Error('batch-encoding.ts writes one-byte tags: a field number above 15 needs two');
}

function varintSize(value: number): number {
  let size = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

/** Bytes of one length-delimited field holding `size` bytes (tags here are one byte). */
const fieldSize = (size: number) => 1 + varintSize(size) + size;

/**
 * Writes ReportBatchMetricsRequest bytes straight from the blocks' typed arrays: what protobuf-es's
 * toBinary writes for the same message (batch-encoding.spec.ts compares them), without building the
 * message — a BigInt per step and a boxed number per value, then a writer chunk per value, were a
 * trainer's largest allocation while it streams.
 */
class RequestWriter {
  private readonly bytes: Buffer;
  private at = 0;

  constructor(size: number) {
    this.bytes = Buffer.allocUnsafe(size);
  }

  done(): Buffer {
    return this.bytes;
  }

  varint(value: number): void {
    const bytes = this.bytes;
    // Steps are safe integers (up to 2^53): division, not 32-bit shifts, and no BigInt.
    while (value >= 128) {
      bytes[this.at++] = (value % 128) | 128;
      value = Math.floor(value / 128);
    }
    bytes[this.at++] = value;
  }

  string(fieldTag: number, value: string, size: number): void {
    this.bytes[this.at++] = fieldTag;
    this.varint(size);
    this.at += this.bytes.write(value, this.at, size, 'utf8');
  }

  block(block: SealedBlock, size: BlockSize): void {
    const bytes = this.bytes;
    bytes[this.at++] = REQUEST_BLOCKS;
    this.varint(size.total);
    if (block.epoch !== 0) {
      bytes[this.at++] = BLOCK_EPOCH;
      this.varint(block.epoch);
    }
    for (let i = 0; i < block.names.length; i++) this.string(BLOCK_NAMES, block.names[i]!, size.names[i]!);
    const { steps, values } = block;
    if (steps.length > 0) {
      bytes[this.at++] = BLOCK_STEPS;
      this.varint(size.steps);
      for (let i = 0; i < steps.length; i++) this.varint(steps[i]!);
    }
    if (values.length > 0) {
      bytes[this.at++] = BLOCK_VALUES;
      this.varint(values.length * 8);
      if (LITTLE_ENDIAN) {
        bytes.set(new Uint8Array(values.buffer, values.byteOffset, values.length * 8), this.at);
        this.at += values.length * 8;
      } else {
        for (let i = 0; i < values.length; i++, this.at += 8) bytes.writeDoubleLE(values[i]!, this.at);
      }
    }
  }
}

interface BlockSize {
  /** The block message's bytes (without its tag and length). */
  readonly total: number;
  /** The packed steps' bytes. */
  readonly steps: number;
  /** Each name's UTF-8 bytes. */
  readonly names: readonly number[];
}

function blockSize(block: SealedBlock): BlockSize {
  let total = block.epoch !== 0 ? 1 + varintSize(block.epoch) : 0;
  const names = block.names.map((name) => Buffer.byteLength(name, 'utf8'));
  for (const size of names) total += fieldSize(size);
  let steps = 0;
  for (let i = 0; i < block.steps.length; i++) steps += varintSize(block.steps[i]!);
  if (steps > 0) total += fieldSize(steps);
  if (block.values.length > 0) total += fieldSize(block.values.length * 8);
  return { total, steps, names };
}

/**
 * The bytes of one ReportBatchMetricsRequest for `blocks`. Epochs and steps are what the BatchBuffer
 * accepts: non-negative safe integers (epochs int32).
 */
export function encodeBatchRequest(jobId: string, sessionId: string, blocks: readonly SealedBlock[]): Buffer {
  const jobIdSize = Buffer.byteLength(jobId, 'utf8');
  const sessionIdSize = Buffer.byteLength(sessionId, 'utf8');
  const sizes = blocks.map(blockSize);
  let total = 0;
  if (jobIdSize > 0) total += fieldSize(jobIdSize);
  for (const size of sizes) total += fieldSize(size.total);
  if (sessionIdSize > 0) total += fieldSize(sessionIdSize);
  const writer = new RequestWriter(total);
  if (jobIdSize > 0) writer.string(REQUEST_JOB_ID, jobId, jobIdSize);
  for (let i = 0; i < blocks.length; i++) writer.block(blocks[i]!, sizes[i]!);
  if (sessionIdSize > 0) writer.string(REQUEST_SESSION_ID, sessionId, sessionIdSize);
  return writer.done();
}

/**
 * The messages of one ReportBatchMetrics stream for `blocks`: blocks packed into messages of at most
 * `maxPointsPerMessage` points (a bigger block travels alone), every message naming the job and the
 * client's session: the bytes of each, as {@link encodeBatchRequest} writes them.
 */
export function toBatchRequests(
  { jobId, sessionId = '' }: { readonly jobId: string; readonly sessionId?: string },
  blocks: readonly SealedBlock[],
  maxPointsPerMessage = MAX_POINTS_PER_MESSAGE,
): Buffer[] {
  const requests: Buffer[] = [];
  const send = (group: readonly SealedBlock[]) => requests.push(encodeBatchRequest(jobId, sessionId, group));
  let current: SealedBlock[] = [];
  let points = 0;
  for (const block of blocks) {
    const size = block.values.length;
    if (current.length > 0 && points + size > maxPointsPerMessage) {
      send(current);
      current = [];
      points = 0;
    }
    current.push(block);
    points += size;
  }
  if (current.length > 0) send(current);
  return requests;
}
