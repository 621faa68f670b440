/**
 * A job's params within what the sidecar accepts (proto/request-limits.json, MLflow's limits for run
 * params): a BeginTraining with one param beyond them is refused whole, so the client keeps the
 * params within them before sending — the same rule as the Python client's `params_within_limits`
 * (`_config.py`), so that a job reported from either language gets the same keys.
 */
import { createHash } from 'node:crypto';
import {
  MAX_PARAMS,
  PARAM_KEY_DIGEST_HEX_DIGITS,
  PARAM_KEY_DIGEST_SEPARATOR,
  PARAM_KEY_FORBIDDEN,
  PARAM_KEY_MAX_LENGTH,
  PARAM_VALUE_CUT_SUFFIX,
  PARAM_VALUE_MAX_LENGTH,
} from '@training-callbacks/proto';

/** The params that can be sent, and one note per change, naming the param. */
export interface ParamsWithinLimits {
  readonly params: Record<string, string>;
  readonly notes: readonly string[];
}

/** Code points, as the limits count them (not UTF-16 units). */
function codePoints(text: string): string[] {
  return Array.from(text);
}

/**
 * A key that is empty or holds control characters is dropped; a key too long is shortened to its
 * start, `_` and 8 hex digits of its SHA-256 (two long keys with the same start stay apart); a value
 * too long is cut, saying so; entries beyond the most a job may have are dropped.
 */
export function paramsWithinLimits(params: Readonly<Record<string, string>>): ParamsWithinLimits {
  const entries = Object.entries(params);
  // A Map, not a plain object: a `__proto__` key stays an ordinary key.
  const kept = new Map<string, string>();
  const notes: string[] = [];
  for (const [index, [rawKey, rawValue]] of entries.entries()) {
    const keyPoints = codePoints(rawKey);
    const shown = JSON.stringify(keyPoints.length <= 60 ? rawKey : `${keyPoints.slice(0, 57).join('')}...`);
    if (rawKey === '' || PARAM_KEY_FORBIDDEN.test(rawKey)) {
      notes.push(`${shown} dropped (an empty key or one with control characters)`);
      continue;
    }
    let key = rawKey;
    if (keyPoints.length > PARAM_KEY_MAX_LENGTH) {
      const digest = createHash('sha256')
        .update(rawKey, 'utf8')
        .digest('hex')
        .slice(0, PARAM_KEY_DIGEST_HEX_DIGITS);
      const tail = `${PARAM_KEY_DIGEST_SEPARATOR}${digest}`;
      key = keyPoints.slice(0, PARAM_KEY_MAX_LENGTH - codePoints(tail).length).join('') + tail;
      notes.push(
        `${shown} shortened to ${codePoints(key).length} characters (the limit is ${PARAM_KEY_MAX_LENGTH})`,
      );
    }
    let value = rawValue;
    const valuePoints = codePoints(rawValue);
    if (valuePoints.length > PARAM_VALUE_MAX_LENGTH) {
      const suffix = PARAM_VALUE_CUT_SUFFIX.replace('{length}', String(valuePoints.length));
      value = valuePoints.slice(0, PARAM_VALUE_MAX_LENGTH - codePoints(suffix).length).join('') + suffix;
      notes.push(`the value of ${shown} cut to ${PARAM_VALUE_MAX_LENGTH} characters`);
    }
    if (kept.size >= MAX_PARAMS) {
      notes.push(`${entries.length - index} params beyond the first ${MAX_PARAMS} dropped, from ${shown} on`);
      break;
    }
    kept.set(key, value);
  }
  return { params: Object.fromEntries(kept), notes };
}
