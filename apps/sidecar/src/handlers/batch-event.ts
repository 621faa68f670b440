// WatchJob's batch event: its wire bytes encoded straight from the stored block — the steps' int64
// words and the values' doubles as the store unpacked them — with no bigint per step and no
// protobuf-es message on the way. At 100 k points/s that message path (a bigint array per block, the
// writer growing its buffer) and its garbage were most of what the watchers cost the sidecar. The
// bytes are the ones protobuf-es writes for the same message (batch-event.spec.ts checks it); the
// message object is built only if a transport asks for it (Connect, which encodes on its own).
import { create, toBinary } from '@bufbuild/protobuf';
import { type BatchMetricsBlock, type WatchJobEvent, WatchJobEventSchema } from '@training-callbacks/proto';
import type { BatchBlock } from '@training-callbacks/store';
import { blockToProto } from '../convert.ts';
import type { EncodedEvent } from './watch-response.ts';

/** Typed arrays hold the host's byte order; the wire's is little-endian. */
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const TWO_32 = 2 ** 32;

// Tags (field number << 3 | wire type) of WatchJobEvent and BatchMetricsBlock.
const SEQ_TAG = (1 << 3) | 0; // uint64 seq = 1
const BATCH_TAG = (4 << 3) | 2; // BatchMetricsBlock batch = 4
const EPOCH_TAG = (1 << 3) | 0; // int32 epoch = 1
const NAME_TAG = (2 << 3) | 2; // repeated string names = 2
const STEPS_TAG = (3 << 3) | 2; // repeated int64 steps = 3 (packed)
const VALUES_TAG = (4 << 3) | 2; // repeated double values = 4 (packed)

/** The batch event at `seq` for `block`, with its bytes (what gRPC writes, inside a response). */
export function batchEventMessage(seq: number, block: BatchBlock): EncodedEvent<WatchJobEvent> {
  const message = create(WatchJobEventSchema, { seq: BigInt(seq) });
  let value: BatchMetricsBlock | undefined;
  message.event = {
    case: 'batch',
    get value() {
      value ??= blockToProto(block);
      return value;
    },
  };
  return { message, bytes: encodeBatchEvent(seq, block) ?? toBinary(WatchJobEventSchema, message) };
}

/** WatchJobEvent{seq, batch: block} as protobuf-es encodes it; undefined on a big-endian host. */
export function encodeBatchEvent(seq: number, block: BatchBlock): Uint8Array | undefined {
  if (!LITTLE_ENDIAN_HOST) return undefined;
  const { steps, values } = block;
  const words = new Uint32Array(steps.buffer, steps.byteOffset, steps.length * 2);
  let stepsSize = 0;
  for (let i = 0; i < words.length; i += 2) stepsSize += varintSize(words[i]!, words[i + 1]!);
  const names = block.names.map((name) => Buffer.from(name, 'utf8'));
  // int32: a negative epoch is sign-extended to ten bytes, as protobuf writes it.
  const epochHi = block.epoch < 0 ? 0xffffffff : 0;
  let blockSize = block.epoch === 0 ? 0 : 1 + varintSize(block.epoch >>> 0, epochHi);
  for (const name of names) blockSize += 1 + varintSize(name.length, 0) + name.length;
  if (steps.length > 0) blockSize += 1 + varintSize(stepsSize, 0) + stepsSize;
  if (values.length > 0) blockSize += 1 + varintSize(values.byteLength, 0) + values.byteLength;
  const seqLo = seq >>> 0;
  const seqHi = Math.floor(seq / TWO_32);
  const size = (seq === 0 ? 0 : 1 + varintSize(seqLo, seqHi)) + 1 + varintSize(blockSize, 0) + blockSize;

  const out = Buffer.allocUnsafe(size);
  let at = 0;
  if (seq !== 0) {
    out[at++] = SEQ_TAG;
    at = writeVarint(out, at, seqLo, seqHi);
  }
  out[at++] = BATCH_TAG;
  at = writeVarint(out, at, blockSize, 0);
  if (block.epoch !== 0) {
    out[at++] = EPOCH_TAG;
    at = writeVarint(out, at, block.epoch >>> 0, epochHi);
  }
  for (const name of names) {
    out[at++] = NAME_TAG;
    at = writeVarint(out, at, name.length, 0);
    at += name.copy(out, at);
  }
  if (steps.length > 0) {
    out[at++] = STEPS_TAG;
    at = writeVarint(out, at, stepsSize, 0);
    for (let i = 0; i < words.length; i += 2) at = writeVarint(out, at, words[i]!, words[i + 1]!);
  }
  if (values.length > 0) {
    out[at++] = VALUES_TAG;
    at = writeVarint(out, at, values.byteLength, 0);
    out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), at);
    at += values.byteLength;
  }
  return out;
}

/** Bytes of the varint of the 64-bit value hi·2³² + lo (both unsigned 32-bit). */
export function varintSize(lo: number, hi: number): number {
  let size = 1;
  while (hi !== 0 || lo > 0x7f) {
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
    size++;
  }
  return size;
}

export function writeVarint(out: Uint8Array, at: number, lo: number, hi: number): number {
  while (hi !== 0 || lo > 0x7f) {
    out[at++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  out[at++] = lo;
  return at;
}
