/**
 * Multiplies a reported value by an alias scale, keeping the decimal digits that were reported. For a
 * power-of-ten scale (0.01 for a percentage) the decimal point of the value's shortest decimal form is
 * moved and the result parsed, so 88.2728 × 0.01 is 0.882728 — where `88.2728 / 100` is
 * 0.8827280000000001 and `95 * 0.01` is 0.9500000000000001. Any other scale multiplies. NaN, ±Infinity
 * and ±0 pass through (with the scale's sign rules). Use it for batch-level points too, so that they
 * get the same values as epoch metrics.
 */
export function applyScale(value: number, scale: number): number {
  if (scale === 1) {
    return value;
  }
  const exponent = powerOfTen(scale);
  if (exponent === undefined || value === 0 || !Number.isFinite(value)) {
    return value * scale;
  }
  // String(value) is the shortest decimal that reads back as `value`: "88.2728", "1e-7", "1.5e+21".
  const [digits, ownExponent = '0'] = String(value).split('e');
  return Number(`${digits}e${Number(ownExponent) + exponent}`);
}

/** k when `scale` is exactly 10^k for an integer k (|k| ≤ 22, where 10^k is exact), else undefined. */
function powerOfTen(scale: number): number | undefined {
  if (!(scale > 0)) return undefined;
  const k = Math.round(Math.log10(scale));
  return Math.abs(k) <= 22 && Number(`1e${k}`) === scale ? k : undefined;
}
