import { describe, expect, it } from 'vitest';
import { checkMetricName, METRIC_NAME_MAX_LENGTH } from './metric-name.ts';

describe('checkMetricName', () => {
  it.each(['accuracy', 'metrics/mAP50-95(B)', 'lr/pg0', 'val loss', 'é'.repeat(METRIC_NAME_MAX_LENGTH)])(
    'accepts %j',
    (name) => {
      expect(checkMetricName(name)).toBeUndefined();
    },
  );

  it('uses 250, MLflow’s metric-key limit', () => {
    expect(METRIC_NAME_MAX_LENGTH).toBe(250);
  });

  it('refuses an empty name', () => {
    expect(checkMetricName('')).toMatch(/empty/);
  });

  it('refuses a name one character over the limit, saying the limit', () => {
    const message = checkMetricName('a'.repeat(METRIC_NAME_MAX_LENGTH + 1));
    expect(message).toMatch(/251 characters long; shorten it to at most 250/);
    expect(message).toContain('…'); // the name is cut in the message
  });

  it('counts code points, not UTF-16 units', () => {
    // 250 astral characters are 500 UTF-16 units but 250 Python characters.
    expect(checkMetricName('😀'.repeat(250))).toBeUndefined();
    expect(checkMetricName('😀'.repeat(251))).toMatch(/251 characters/);
  });

  it.each([
    ['a\nb', 'U+000A', 1],
    ['\u0000x', 'U+0000', 0],
    ['ab\u007f', 'U+007F', 2],
    ['a\u0085', 'U+0085', 1],
    ['a\u009f', 'U+009F', 1],
    ['tab\there', 'U+0009', 3],
  ])('refuses control characters in %j', (name, code, index) => {
    const message = checkMetricName(name);
    expect(message).toContain(`control character ${code} at index ${index}`);
    expect(message).toMatch(/remove it$/);
  });

  it('does not treat U+00A0 (just after C1) as a control character', () => {
    expect(checkMetricName('a\u00a0b')).toBeUndefined();
  });

  it.each([' accuracy', 'accuracy ', '\u00a0accuracy', 'accuracy\u3000'])(
    'refuses leading or trailing whitespace in %j',
    (name) => {
      expect(checkMetricName(name)).toMatch(/leading or trailing whitespace; trim it/);
    },
  );

  it('quotes the name with control characters made visible', () => {
    expect(checkMetricName('bad\nname')).toContain('"bad\\nname"');
  });
});
