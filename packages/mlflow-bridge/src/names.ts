import { encodeNonFinite } from '@training-callbacks/store/number-codec';

/** MLflow's limit on metric, param and tag keys. Keys are never truncated by the server: longer is an error. */
export const MAX_KEY_LENGTH = 250;

/** FNV-1a, 32 bit, as 8 hex digits: a short deterministic fingerprint for shortened names. */
export function shortHash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

function fitLength(key: string, original: string, max = MAX_KEY_LENGTH): string {
  if (key.length <= max) return key;
  return `${key.slice(0, max - 9)}_${shortHash(original)}`;
}

/**
 * Maps a metric (or param/tag) name onto the set every MLflow server accepts:
 * - `(` and `)` are dropped, as Ultralytics' own MLflow callback does (`metrics/mAP50(B)` → `metrics/mAP50B`);
 * - any other character outside `A-Z a-z 0-9 _ - . space /` becomes `_` (`:` too: old and Windows servers refuse it);
 * - the name must be unchanged by POSIX normpath: empty segments (leading, trailing or double `/`) are removed,
 *   `.` and `..` segments become `_` and `__`;
 * - at most 250 characters: longer names are cut and end in `_` + 8 hex digits of a hash of the original.
 * Pure and deterministic; an empty result becomes `_`.
 */
export function sanitizeMetricKey(name: string): string {
  const cleaned = name.replace(/[()]/g, '').replace(/[^A-Za-z0-9_\-. /]/g, '_');
  const segments = cleaned
    .split('/')
    .filter((s) => s !== '')
    .map((s) => (s === '.' ? '_' : s === '..' ? '__' : s));
  const joined = segments.join('/') || '_';
  return fitLength(joined, name);
}

/** A name that had to change on its way to MLflow. */
export interface KeyCollision {
  /** The reported name that arrived second. */
  original: string;
  /** The name it would have had … */
  wanted: string;
  /** … already taken by this reported name. */
  takenBy: string;
  /** The name it got instead. */
  assigned: string;
}

/**
 * The kept mapping from reported metric names to MLflow keys for one run. Two reported names that sanitise to
 * the same key (`mAP50(B)` and `mAP50B`) would silently merge their histories; the second one seen gets a
 * `_2`, `_3`, … suffix instead and the collision is recorded. The mapping depends on the order names are first
 * seen, so it must be persisted with the job (see `MlflowJobMirror.metricKeys`) and passed back in on restart.
 */
export class MetricKeyMap {
  readonly #byOriginal = new Map<string, string>();
  readonly #byKey = new Map<string, string>();
  readonly collisions: KeyCollision[] = [];
  /** Entries added since construction or the last `takeAdded()`. */
  #added: Array<[string, string]> = [];

  constructor(entries?: Record<string, string>) {
    for (const [original, key] of Object.entries(entries ?? {})) {
      this.#byOriginal.set(original, key);
      this.#byKey.set(key, original);
    }
  }

  /** The MLflow key for a reported name, assigning (and remembering) one on first sight. */
  keyFor(original: string): string {
    const known = this.#byOriginal.get(original);
    if (known !== undefined) return known;
    const wanted = sanitizeMetricKey(original);
    let assigned = wanted;
    for (let n = 2; this.#byKey.has(assigned); n++) {
      const suffix = `_${n}`;
      assigned = `${wanted.slice(0, MAX_KEY_LENGTH - suffix.length)}${suffix}`;
    }
    if (assigned !== wanted) {
      this.collisions.push({ original, wanted, takenBy: this.#byKey.get(wanted) ?? '', assigned });
    }
    this.#byOriginal.set(original, assigned);
    this.#byKey.set(assigned, original);
    this.#added.push([original, assigned]);
    return assigned;
  }

  /** The reported name behind an MLflow key, if known. */
  originalOf(key: string): string | undefined {
    return this.#byKey.get(key);
  }

  /** The whole mapping, reported name → MLflow key (JSON-safe, for persisting). */
  toJSON(): Record<string, string> {
    return Object.fromEntries(this.#byOriginal);
  }

  /** Returns and forgets the entries assigned since the last call. */
  takeAdded(): Array<[original: string, key: string]> {
    const a = this.#added;
    this.#added = [];
    return a;
  }

  get size(): number {
    return this.#byOriginal.size;
  }
}

/** `JSON.stringify` replacer that keeps non-finite numbers as MLflow's strings. */
export function mlflowJsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? encodeNonFinite(value) : value;
}
