import { create } from '@bufbuild/protobuf';
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { BeginTrainingRequestSchema } from '@training-callbacks/proto';
import { describe, expect, it } from 'vitest';
import {
  checkJobDescriptionSize,
  checkJobId,
  checkStructDepth,
  codePointLength,
  JOB_DESCRIPTION_MAX_BYTES,
  quote,
  STRUCT_MAX_DEPTH,
  timestampOf,
  truncateCodePoints,
} from './validation.ts';

function refusal(check: () => void): string {
  try {
    check();
  } catch (error) {
    expect(error).toBeInstanceOf(RpcError);
    expect((error as RpcError).code).toBe(Status.INVALID_ARGUMENT);
    return (error as RpcError).message;
  }
  throw new Error('expected a refusal');
}

describe('code points', () => {
  it('counts characters, not UTF-16 units', () => {
    expect(codePointLength('abc')).toBe(3);
    expect(codePointLength('😀'.repeat(128))).toBe(128);
    expect('😀'.repeat(128).length).toBe(256);
    expect(codePointLength('a\uD800b')).toBe(3); // a lone surrogate is one
  });

  it('cuts at a character boundary', () => {
    expect(truncateCodePoints('😀😀😀', 2)).toBe('😀😀');
    expect(truncateCodePoints('a😀b', 2)).toBe('a😀');
    expect(truncateCodePoints('short', 10)).toBe('short');
  });

  it('job ids: 128 characters, whatever their UTF-16 length', () => {
    expect(() => checkJobId('😀'.repeat(128))).not.toThrow();
    expect(refusal(() => checkJobId('😀'.repeat(129)))).toBe(
      'job_id is 129 characters long; the limit is 128',
    );
  });

  it('quote cuts long values at a character', () => {
    expect(quote('😀'.repeat(100), 3)).toBe('"😀😀😀"…');
    expect(quote('😀😀', 3)).toBe('"😀😀"');
  });
});

describe('timestampOf', () => {
  it("accepts google.protobuf.Timestamp's whole range, truncated to the millisecond", () => {
    expect(timestampOf(undefined)).toBeUndefined();
    expect(timestampOf({ seconds: -62135596800n, nanos: 0 })?.toISOString()).toBe('0001-01-01T00:00:00.000Z');
    expect(timestampOf({ seconds: 253402300799n, nanos: 999_999_999 })?.toISOString()).toBe(
      '9999-12-31T23:59:59.999Z',
    );
    expect(timestampOf({ seconds: 1n, nanos: 1_999_999 })?.getTime()).toBe(1001);
  });

  it.each([
    [253402300800n, 0],
    [-62135596801n, 0],
    [8_640_000_000_001n, 0],
    [0n, -1],
    [0n, 1_000_000_000],
  ])('refuses seconds %s, nanos %s', (seconds, nanos) => {
    expect(refusal(() => timestampOf({ seconds, nanos }, 'timestamp'))).toMatch(
      new RegExp(
        `^timestamp \\(seconds ${seconds}, nanos ${nanos}\\) is outside google.protobuf.Timestamp's range`,
      ),
    );
  });
});

describe('checkStructDepth', () => {
  const nested = (levels: number): unknown => {
    let value: unknown = 1;
    for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { k: value };
    return value;
  };

  it(`accepts ${STRUCT_MAX_DEPTH} levels of objects and lists, refuses one more with the depth and the limit`, () => {
    expect(() => checkStructDepth(undefined, 'model_config')).not.toThrow();
    expect(() => checkStructDepth({}, 'model_config')).not.toThrow();
    expect(() => checkStructDepth(nested(STRUCT_MAX_DEPTH), 'model_config')).not.toThrow();
    expect(refusal(() => checkStructDepth(nested(STRUCT_MAX_DEPTH + 1), 'model_config'))).toMatch(
      /^model_config is nested 33 levels deep; the limit is 32/,
    );
    expect(refusal(() => checkStructDepth({ a: 1, b: nested(60) }, 'training_config'))).toMatch(
      /^training_config is nested 61 levels deep/,
    );
  });

  it('stops counting far past the limit instead of walking an arbitrarily deep value', () => {
    expect(refusal(() => checkStructDepth(nested(5000), 'model_config'))).toMatch(
      /nested more than 128 levels deep; the limit is 32/,
    );
  });
});

describe('checkJobDescriptionSize', () => {
  const request = (valueLength: number) =>
    create(BeginTrainingRequestSchema, { jobId: 'j', params: { p: 'v'.repeat(valueLength) } });

  it('accepts up to 1 MiB encoded and refuses more, with the size and the limit', () => {
    expect(() => checkJobDescriptionSize(request(JOB_DESCRIPTION_MAX_BYTES - 100))).not.toThrow();
    expect(refusal(() => checkJobDescriptionSize(request(JOB_DESCRIPTION_MAX_BYTES)))).toMatch(
      /take 10485\d\d bytes encoded; the limit is 1048576 \(1 MiB\)/,
    );
  });
});
