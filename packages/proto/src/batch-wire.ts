// The wire form of ReportBatchMetricsRequest, read and written straight from typed arrays on both
// sides: the client's encoder (packages/client/src/batch-encoding.ts) writes a block's steps and values
// from its Float64Arrays, and the sidecar reads them back into the BigInt64Array and Float64Array the
// store keeps. protobuf-es builds a BigInt per step and grows a JS array per value; on the sidecar those
// arrays outlived the young generation under load and made most of what its major collections swept
// (docs/benchmarks.md). The field numbers come from the generated schemas: the proto is their one home.
import { fromBinary } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import {
  BatchMetricsBlockSchema,
  type ReportBatchMetricsRequest,
  ReportBatchMetricsRequestSchema,
} from './gen/trainingcallbacks/v1/training_callbacks_pb.ts';

const requestFields = ReportBatchMetricsRequestSchema.field;
const blockFields = BatchMetricsBlockSchema.field;
const tag = (field: { number: number }, wireType: WireType) => (field.number << 3) | wireType;

/** Wire tags (field number << 3 | wire type) of the two messages, as their proto types encode them. */
export const BATCH_TAGS = {
  requestJobId: tag(requestFields.jobId, WireType.LengthDelimited),
  requestBlocks: tag(requestFields.blocks, WireType.LengthDelimited),
  requestSessionId: tag(requestFields.sessionId, WireType.LengthDelimited),
  blockEpoch: tag(blockFields.epoch, WireType.Varint),
  blockNames: tag(blockFields.names, WireType.LengthDelimited),
  /** Packed int64. */
  blockSteps: tag(blockFields.steps, WireType.LengthDelimited),
  /** Packed double. */
  blockValues: tag(blockFields.values, WireType.LengthDelimited),
} as const;

/** Doubles travel as a Float64Array's bytes where the platform is little-endian, as protobuf's are. */
export const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

/** A block as the store keeps it: the steps as int64, the values row by row. */
export interface DecodedBatchBlock {
  readonly epoch: number;
  readonly names: string[];
  readonly steps: BigInt64Array;
  readonly values: Float64Array;
}

/** A ReportBatchMetricsRequest with its blocks' columns in typed arrays. */
export interface DecodedBatchRequest {
  readonly jobId: string;
  readonly sessionId: string;
  readonly blocks: DecodedBatchBlock[];
}

/**
 * Decodes a ReportBatchMetricsRequest into typed arrays: the same content as protobuf-es' `fromBinary`
 * (batch-wire.spec.ts compares them on canonical, reordered, unpacked and damaged messages) without an
 * object per point. The form every protobuf encoder writes (packed steps and values, one run each) is
 * read here; anything else (unpacked or split runs, a field of an unexpected wire type, damage) goes
 * through `fromBinary`, which also throws for bytes that are not the message.
 */
export function decodeBatchRequest(bytes: Uint8Array): DecodedBatchRequest {
  return (
    (LITTLE_ENDIAN && readPackedBatchRequest(bytes)) ||
    fromMessage(fromBinary(ReportBatchMetricsRequestSchema, bytes))
  );
}

/** The typed form of a message protobuf-es decoded. */
export function fromMessage(request: ReportBatchMetricsRequest): DecodedBatchRequest {
  return {
    jobId: request.jobId,
    sessionId: request.sessionId,
    blocks: request.blocks.map((block) => ({
      epoch: block.epoch,
      names: block.names,
      steps: BigInt64Array.from(block.steps),
      values: Float64Array.from(block.values),
    })),
  };
}

const STRICT_UTF8 = {
  jobId: requestFields.jobId.utf8Validation,
  sessionId: requestFields.sessionId.utf8Validation,
  names: blockFields.names.utf8Validation,
};

/** The request read in its packed form, or undefined for anything else (see decodeBatchRequest); exported for its spec. */
export function readPackedBatchRequest(bytes: Uint8Array): DecodedBatchRequest | undefined {
  try {
    const reader = new BinaryReader(bytes);
    let jobId = '';
    let sessionId = '';
    const blocks: DecodedBatchBlock[] = [];
    while (reader.pos < reader.len) {
      const [fieldNo, wireType] = reader.tag();
      const fieldTag = (fieldNo << 3) | wireType;
      if (fieldTag === BATCH_TAGS.requestJobId) jobId = reader.string(STRICT_UTF8.jobId);
      else if (fieldTag === BATCH_TAGS.requestSessionId) sessionId = reader.string(STRICT_UTF8.sessionId);
      else if (fieldTag === BATCH_TAGS.requestBlocks) {
        const block = readBlock(reader.bytes());
        if (!block) return undefined;
        blocks.push(block);
      } else if (isKnownField(fieldNo, requestFields) || wireType === WireType.StartGroup) {
        return undefined;
      } else {
        reader.skip(wireType, fieldNo);
      }
    }
    if (reader.pos !== reader.len) return undefined;
    return { jobId, sessionId, blocks };
  } catch {
    return undefined;
  }
}

function readBlock(bytes: Uint8Array): DecodedBatchBlock | undefined {
  const reader = new BinaryReader(bytes);
  let epoch = 0;
  const names: string[] = [];
  let steps: BigInt64Array | undefined;
  let values: Float64Array | undefined;
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    const fieldTag = (fieldNo << 3) | wireType;
    if (fieldTag === BATCH_TAGS.blockEpoch) epoch = reader.int32();
    else if (fieldTag === BATCH_TAGS.blockNames) names.push(reader.string(STRICT_UTF8.names));
    else if (fieldTag === BATCH_TAGS.blockSteps && steps === undefined) {
      steps = readSteps(reader.bytes());
      if (!steps) return undefined;
    } else if (fieldTag === BATCH_TAGS.blockValues && values === undefined) {
      values = readValues(reader.bytes());
      if (!values) return undefined;
    } else if (isKnownField(fieldNo, blockFields) || wireType === WireType.StartGroup) {
      // A second run, an unpacked value, a wrong wire type: protobuf-es' rules.
      return undefined;
    } else {
      reader.skip(wireType, fieldNo);
    }
  }
  if (reader.pos !== reader.len) return undefined;
  return { epoch, names, steps: steps ?? new BigInt64Array(0), values: values ?? new Float64Array(0) };
}

function isKnownField(fieldNo: number, fields: Record<string, { number: number }>): boolean {
  return Object.values(fields).some((field) => field.number === fieldNo);
}

/**
 * Packed varints into int64s, written as their two little-endian 32-bit halves (no BigInt per step);
 * undefined for a varint longer than ten bytes or cut off at the end.
 */
function readSteps(run: Uint8Array): BigInt64Array | undefined {
  let count = 0;
  for (let i = 0; i < run.length; i++) if (run[i]! < 0x80) count++;
  if (run.length > 0 && run[run.length - 1]! >= 0x80) return undefined;
  const steps = new BigInt64Array(count);
  const halves = new Int32Array(steps.buffer);
  let p = 0;
  for (let n = 0; n < count; n++) {
    let lo = 0;
    let hi = 0;
    let b = 0x80;
    // Bits 0–27 from the first four bytes, 28–34 from the fifth, 35–63 from the next five.
    for (let shift = 0; shift < 28 && b >= 0x80; shift += 7) {
      b = run[p++]!;
      lo |= (b & 0x7f) << shift;
    }
    if (b >= 0x80) {
      b = run[p++]!;
      lo |= (b & 0x0f) << 28;
      hi = (b & 0x7f) >> 4;
      for (let shift = 3; shift < 32 && b >= 0x80; shift += 7) {
        b = run[p++]!;
        hi |= (b & 0x7f) << shift;
      }
      if (b >= 0x80) return undefined;
    }
    halves[2 * n] = lo;
    halves[2 * n + 1] = hi;
  }
  return steps;
}

/** Packed doubles: their bytes copied into a Float64Array; undefined for a run not made of 8-byte values. */
function readValues(run: Uint8Array): Float64Array | undefined {
  if (run.length % 8 !== 0) return undefined;
  const values = new Float64Array(run.length / 8);
  new Uint8Array(values.buffer).set(run);
  return values;
}
