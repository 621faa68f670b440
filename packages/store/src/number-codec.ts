// Faithful storage of doubles in JSON and in binary blobs: the project's one NaN/±Infinity codec.
//
// JSON has no NaN or ±Infinity (JSON.stringify writes them as null), and SQLite turns a NaN REAL into
// NULL. So every metric map is encoded before it reaches a JSON column: finite numbers stay numbers,
// the others become the strings "NaN", "Infinity" and "-Infinity" (and -0 becomes "-0", which JSON
// would otherwise print as 0). Decoding reverses it exactly.
//
// The MLflow bridge uses the same tokens without "-0" (`encodeNonFinite`): they are what MLflow's (and
// proto3's) JSON reads for a double, and its outbox payloads and requests carry them. It imports this
// module alone (`@training-callbacks/store/number-codec`), so its sync thread loads no MikroORM.
//
// Config trees (model_config, training_config) may hold any double too, next to strings such as
// "NaN": see `encodeJsonTree` for their unambiguous encoding.
//
// Blobs are packed little-endian regardless of the host, so a file moves between machines unchanged;
// copying the bytes keeps every NaN payload bit for bit.
import { endianness } from 'node:os';

/** The string forms of the doubles JSON cannot hold. */
export type NonFiniteToken = 'NaN' | 'Infinity' | '-Infinity' | '-0';

/** A double as stored in JSON. */
export type EncodedNumber = number | NonFiniteToken;

/** A double as MLflow's JSON takes it: NaN and ±Infinity as strings, every other double a number. */
export type JsonNumber = number | Exclude<NonFiniteToken, '-0'>;

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/**
 * Encodes one double the way MLflow's JSON parser accepts it (-0 stays a number; JSON prints it 0).
 * `JSON.stringify(NaN)` gives `null`, which MLflow rejects as a missing value; a bare `NaN` token is
 * accepted by 3.x but stored as 0 with timestamp 0 (verified against 3.17.2), so non-finite values
 * travel as the strings "NaN", "Infinity", "-Infinity".
 */
export function encodeNonFinite(value: number): JsonNumber {
  if (Number.isFinite(value)) {
    return value;
  }
  if (Number.isNaN(value)) {
    return 'NaN';
  }
  return value > 0 ? 'Infinity' : '-Infinity';
}

/** Encodes one double for a JSON column (as {@link encodeNonFinite}, and -0 as "-0"). */
export function encodeNumber(value: number): EncodedNumber {
  return Object.is(value, -0) ? '-0' : encodeNonFinite(value);
}

/**
 * Decodes one double from JSON (a stored value, an outbox payload's, or one MLflow answers, where NaN
 * is "NaN"); anything unexpected decodes to NaN rather than to 0.
 */
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

/**
 * A record for user-chosen keys (metric names, params, config keys): no prototype, so a key such as
 * `__proto__` or `constructor` is an ordinary entry, never the object's prototype or an inherited
 * function. Assigning `out[key] = value` to a plain `{}` silently drops a `__proto__` entry.
 */
export function userKeyed<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** Encodes a metric map for a JSON column. */
export function encodeMetricMap(metrics: Readonly<Record<string, number>>): Record<string, EncodedNumber> {
  const out = userKeyed<EncodedNumber>();
  for (const [name, value] of Object.entries(metrics)) {
    out[name] = encodeNumber(value);
  }
  return out;
}

/** Decodes a metric map read from a JSON column (a prototype-free record, see {@link userKeyed}). */
export function decodeMetricMap(encoded: unknown): Record<string, number> {
  const out = userKeyed<number>();
  if (encoded && typeof encoded === 'object') {
    for (const [name, value] of Object.entries(encoded)) {
      out[name] = decodeNumber(value);
    }
  }
  return out;
}

/** A JSON value as a google.protobuf.Struct holds it, with any double (NaN and ±Infinity included). */
export type JsonTree = null | boolean | number | string | JsonTree[] | { [key: string]: JsonTree };

const NUMBER_TAG = '$num';
const NON_FINITE_TOKENS: ReadonlySet<unknown> = new Set<NonFiniteToken>([
  'NaN',
  'Infinity',
  '-Infinity',
  '-0',
]);
const OBJECT_TAG = '$obj';

/**
 * Encodes a config tree (model_config, training_config) for a JSON column, keeping what JSON cannot
 * hold. A string "NaN" in a config is a string, so the metric maps' bare tokens would be ambiguous
 * here; instead:
 * - NaN, ±Infinity and -0 become `{"$num": "NaN" | "Infinity" | "-Infinity" | "-0"}`;
 * - an object whose only key is "$num" or "$obj" (which would read back as something else) is
 *   wrapped as `{"$obj": {…}}`;
 * - everything else is stored as it is.
 * {@link decodeJsonTree} reverses it exactly; a tree without such values is stored unchanged, so
 * rows written before this encoding read back as they were.
 */
export function encodeJsonTree(value: unknown): JsonTree {
  if (typeof value === 'number') {
    return Number.isFinite(value) && !Object.is(value, -0)
      ? value
      : { [NUMBER_TAG]: encodeNumber(value) as string };
  }
  if (Array.isArray(value)) return value.map(encodeJsonTree);
  if (value !== null && typeof value === 'object') {
    const out = userKeyed<JsonTree>();
    const keys = Object.keys(value);
    for (const key of keys) out[key] = encodeJsonTree((value as Record<string, unknown>)[key]);
    if (keys.length === 1 && (keys[0] === NUMBER_TAG || keys[0] === OBJECT_TAG)) {
      const wrapped = userKeyed<JsonTree>();
      wrapped[OBJECT_TAG] = out;
      return wrapped;
    }
    return out;
  }
  if (typeof value === 'string' || typeof value === 'boolean' || value === null) return value;
  return null; // undefined, functions, bigint: not JSON; a Struct never holds them
}

/** Decodes a config tree written by {@link encodeJsonTree}; objects are prototype-free records. */
export function decodeJsonTree(value: unknown): JsonTree {
  if (Array.isArray(value)) return value.map(decodeJsonTree);
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    const only = keys.length === 1 ? (value as Record<string, unknown>)[keys[0]!] : undefined;
    if (keys[0] === NUMBER_TAG && NON_FINITE_TOKENS.has(only)) return decodeNumber(only);
    const wrapped =
      keys[0] === OBJECT_TAG && only !== null && typeof only === 'object' && !Array.isArray(only);
    const entries = (wrapped ? only : value) as Record<string, unknown>;
    const out = userKeyed<JsonTree>();
    for (const key of Object.keys(entries)) out[key] = decodeJsonTree(entries[key]);
    return out;
  }
  return value as JsonTree;
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

/**
 * Little-endian int64 steps as a view of `bytes` when they can be read in place (aligned, on a
 * little-endian host), else a copy: for reads that scan millions of points and only look at them.
 */
export function viewInt64(bytes: Uint8Array): BigInt64Array {
  if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 8 === 0 && bytes.byteLength % 8 === 0) {
    return new BigInt64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
  }
  return unpackInt64(bytes);
}

/** Little-endian doubles as a view of `bytes` when they can be read in place, else a copy. */
export function viewFloat64(bytes: Uint8Array): Float64Array {
  if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 8 === 0 && bytes.byteLength % 8 === 0) {
    return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
  }
  return unpackFloat64(bytes);
}
