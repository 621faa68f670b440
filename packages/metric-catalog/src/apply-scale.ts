/**
 * Multiplies a reported value by an alias scale. When the scale is the reciprocal of a whole number (0.01)
 * the value is divided by that number instead, which is exact where the multiplication is not:
 * `95 * 0.01` is 0.9500000000000001 but `95 / 100` is 0.95. NaN and ±Infinity pass through.
 * Use it for batch-level points too, so that they get the same values as epoch metrics.
 */
export function applyScale(value: number, scale: number): number {
  if (scale === 1) {
    return value;
  }
  const divisor = 1 / scale;
  return Number.isInteger(divisor) ? value / divisor : value * scale;
}
