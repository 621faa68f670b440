// Faithful storage of doubles in JSON and in binary blobs.
//
// JSON has no NaN or ±Infinity (JSON.stringify writes them as null), and SQLite turns a NaN REAL into
// NULL. So every metric map is encoded before it reaches a JSON column: finite numbers stay numbers,
// the others become the strings "NaN", "Infinity" and "-Infinity" (and -0 becomes "-0", which JSON
// would otherwise print as 0). Decoding reverses it exactly.
//
// Blobs are packed little-endian regardless of the host, so a file moves between machines unchanged;
// copying the bytes keeps every NaN payload bit for bit.
import { endianness } from 'node:os';

/** The string forms of the doubles JSON cannot hold. */
export type NonFiniteToken = 'NaN' | 'Infinity' | '-Infinity' | '-0';

/** A double as stored in JSON. */
export type EncodedNumber = number | NonFiniteToken;

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** Encodes one double for JSON. */
export function encodeNumber(value: number): EncodedNumber {
  if (Number.isFinite(value)) {
    return Object.is(value, -0) ? '-0' : value;
  }
  if (Number.isNaN(value)) {
    return 'NaN';
  }
  return value > 0 ? 'Infinity' : '-Infinity';
}

/** Decodes one double from JSON; anything unexpected decodes to NaN rather than to 0. */
export function decodeNumber(value: unknown): number {
  if (typeof value === 'number') {
    return value;
  }
  switch (value) {
    case 'Infinity':
      return Number.POSITIVE_INFINITY;
    case '-Infinity':
      return Number.NEGATIVE_INFINITY;
    case '-0':
      return -0;
    default:
      return Number.NaN;
  }
}

/** Encodes a metric map for a JSON column. */
export function encodeMetricMap(metrics: Readonly<Record<string, number>>): Record<string, EncodedNumber> {
  const out: Record<string, EncodedNumber> = {};
  for (const [name, value] of Object.entries(metrics)) {
    out[name] = encodeNumber(value);
  }
  return out;
}

/** Decodes a metric map read from a JSON column. */
export function decodeMetricMap(encoded: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (encoded && typeof encoded === 'object') {
    for (const [name, value] of Object.entries(encoded)) {
      out[name] = decodeNumber(value);
    }
  }
  return out;
}

/** Names of the entries whose value is NaN or ±Infinity, in name order. */
export function nonFiniteNames(metrics: Readonly<Record<string, number>>): string[] {
  return Object.keys(metrics)
    .filter((name) => !Number.isFinite(metrics[name]))
    .sort();
}

/** A finite value, or null (for the nullable double columns that mirror a JSON entry). */
export function finiteOrNull(value: number | undefined): number | null {
  return value !== undefined && Number.isFinite(value) ? value : null;
}

/** Packs int64 steps as little-endian bytes. */
export function packInt64(values: BigInt64Array): Buffer {
  if (LITTLE_ENDIAN_HOST) {
    return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  }
  /* v8 ignore next 6 */
  const out = Buffer.allocUnsafe(values.length * 8);
  for (let i = 0; i < values.length; i++) {
    out.writeBigInt64LE(values[i]!, i * 8);
  }
  return out;
}

/** Packs doubles as little-endian bytes (NaN payloads included). */
export function packFloat64(values: Float64Array): Buffer {
  if (LITTLE_ENDIAN_HOST) {
    return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  }
  /* v8 ignore next 6 */
  const out = Buffer.allocUnsafe(values.length * 8);
  for (let i = 0; i < values.length; i++) {
    out.writeDoubleLE(values[i]!, i * 8);
  }
  return out;
}

/** Copies little-endian bytes into an aligned ArrayBuffer, swapping on a big-endian host. */
function alignedCopy(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteLength % 8 !== 0) {
    throw new RangeError(`corrupt blob: ${bytes.byteLength} bytes is not a whole number of 8-byte values`);
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  /* v8 ignore next 3 */
  if (!LITTLE_ENDIAN_HOST) {
    for (let i = 0; i < copy.length; i += 8) copy.subarray(i, i + 8).reverse();
  }
  return copy.buffer;
}

/** Unpacks little-endian int64 steps. */
export function unpackInt64(bytes: Uint8Array): BigInt64Array {
  return new BigInt64Array(alignedCopy(bytes));
}

/** Unpacks little-endian doubles. */
export function unpackFloat64(bytes: Uint8Array): Float64Array {
  return new Float64Array(alignedCopy(bytes));
}
