/** Longest metric name accepted, in Unicode code points: MLflow's limit for a metric key. */
export const METRIC_NAME_MAX_LENGTH = 250;

// C0 controls, DEL and C1 controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/u;

/**
 * Checks a reported or defined metric name. Returns `undefined` when the name is fine, otherwise a
 * message that says what to fix. A name must be non-empty, at most {@link METRIC_NAME_MAX_LENGTH} code
 * points long (code points, not UTF-16 units, because MLflow counts Python characters), contain no
 * control character (C0, DEL, C1) and have no leading or trailing whitespace.
 *
 * The catalog does not restrict names to MLflow's character set: the store keeps names as reported and the
 * MLflow mirror sanitises them.
 */
export function checkMetricName(name: string): string | undefined {
  if (name.length === 0) {
    return 'metric name is empty; give every metric a name';
  }
  // Checked on every name of every report: the quoted name is made only for a message, and the
  // code points are counted only when the UTF-16 length (never less than it) could exceed the limit.
  const control = CONTROL_CHARACTER.exec(name);
  if (control !== null) {
    const codePoint = control[0].codePointAt(0) ?? 0;
    const hex = codePoint.toString(16).toUpperCase().padStart(4, '0');
    return `metric name ${quote(name)} contains the control character U+${hex} at index ${control.index}; remove it`;
  }
  if (name.trim() !== name) {
    return `metric name ${quote(name)} has leading or trailing whitespace; trim it`;
  }
  const length = name.length <= METRIC_NAME_MAX_LENGTH ? name.length : [...name].length;
  if (length > METRIC_NAME_MAX_LENGTH) {
    return `metric name ${quote(name)} is ${length} characters long; shorten it to at most ${METRIC_NAME_MAX_LENGTH}`;
  }
  return undefined;
}

/** Quotes a name for a message: JSON escapes make control characters visible; long names are cut. */
function quote(name: string): string {
  const points = [...name];
  return points.length > 60 ? `${JSON.stringify(points.slice(0, 60).join(''))}…` : JSON.stringify(name);
}
