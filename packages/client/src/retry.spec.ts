import { readFileSync } from 'node:fs';
import { Metadata } from '@grpc/grpc-js';
import { RpcError, Status, type StatusCode } from '@training-callbacks/grpc-adapter';
import { classifyStatus, RETRY_METADATA_KEY, SUSPECT_ATTEMPTS } from '@training-callbacks/proto';
import { describe, expect, it } from 'vitest';
import { backoffDelay, callWithRetry, isRetryable, type RetryPolicy, statusClass } from './retry.ts';

const policy: RetryPolicy = {
  initialBackoffMs: 100,
  maxBackoffMs: 1000,
  multiplier: 2,
  jitter: 0.5,
  maxRetryTimeMs: 5000,
};

describe('backoff schedule', () => {
  it('grows exponentially up to the cap without jitter', () => {
    const delays = [0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, policy, () => 0));
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('jitters each delay within [base × (1 − jitter), base]', () => {
    for (let n = 0; n < 6; n++) {
      const base = Math.min(1000, 100 * 2 ** n);
      expect(backoffDelay(n, policy, () => 0.999999)).toBeCloseTo(base * 0.5, 0);
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(n, policy);
        expect(d).toBeGreaterThanOrEqual(base * 0.5);
        expect(d).toBeLessThanOrEqual(base);
      }
    }
  });
});

describe('which statuses are retried (the shared status table)', () => {
  it('retries transient statuses, drops permanent ones at once, tries suspect ones a few times', () => {
    for (const code of [Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED, Status.ABORTED, Status.CANCELLED]) {
      expect(isRetryable(code)).toBe(true);
    }
    for (const code of [
      Status.INVALID_ARGUMENT,
      Status.NOT_FOUND,
      Status.FAILED_PRECONDITION,
      Status.PERMISSION_DENIED,
      Status.RESOURCE_EXHAUSTED, // an oversized message: retrying cannot help
      Status.UNAUTHENTICATED,
    ]) {
      expect(isRetryable(code)).toBe(false);
    }
    expect(isRetryable(Status.INTERNAL, SUSPECT_ATTEMPTS - 1)).toBe(true);
    expect(isRetryable(Status.INTERNAL, SUSPECT_ATTEMPTS)).toBe(false);
  });

  it("follows the sidecar's training-callbacks-retry trailer over the status's default", () => {
    const marked = (code: StatusCode, value: string) => {
      const metadata = new Metadata();
      metadata.set(RETRY_METADATA_KEY, value);
      return new RpcError(code, 'disk full', { metadata });
    };
    expect(statusClass(new RpcError(Status.RESOURCE_EXHAUSTED, 'message too large'))).toBe('permanent');
    expect(statusClass(marked(Status.RESOURCE_EXHAUSTED, 'transient'))).toBe('transient');
    expect(statusClass(marked(Status.UNAVAILABLE, 'permanent'))).toBe('permanent');
  });

  it('is generated from proto/status-table.json', () => {
    const path = new URL('../../../proto/status-table.json', import.meta.url);
    const table = JSON.parse(readFileSync(path, 'utf8')) as {
      statuses: { code: number; name: string; class: string }[];
    };
    for (const row of table.statuses) {
      expect(Status[row.code as StatusCode]).toBe(row.name);
      expect(classifyStatus(row.code)).toBe(row.class);
    }
  });
});

const fast: RetryPolicy = { ...policy, initialBackoffMs: 1, maxBackoffMs: 4, maxRetryTimeMs: 200 };

describe('callWithRetry', () => {
  it('retries UNAVAILABLE until the call succeeds', async () => {
    let calls = 0;
    const delays: number[] = [];
    const result = await callWithRetry(
      async () => {
        calls++;
        if (calls < 4) throw new RpcError(Status.UNAVAILABLE, 'connection refused');
        return 'ok';
      },
      fast,
      { onRetry: (_e, delay) => delays.push(delay) },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(4);
    expect(delays).toHaveLength(3);
  });

  it('does not retry INVALID_ARGUMENT and rejects with the sidecar message', async () => {
    let calls = 0;
    const error = await callWithRetry(async () => {
      calls++;
      throw new RpcError(Status.INVALID_ARGUMENT, 'epoch is -1; epochs are counted from 0');
    }, fast).catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect((error as RpcError).code).toBe(Status.INVALID_ARGUMENT);
    expect((error as RpcError).message).toBe('epoch is -1; epochs are counted from 0');
  });

  it('gives up with the last error once the time budget is spent', async () => {
    let clock = 0;
    let calls = 0;
    const error = await callWithRetry(
      async () => {
        calls++;
        clock += 60; // each attempt "takes" 60 ms
        throw new RpcError(Status.DEADLINE_EXCEEDED, `attempt ${calls}`);
      },
      fast,
      { now: () => clock, random: () => 0 },
    ).catch((e: unknown) => e);
    expect((error as RpcError).code).toBe(Status.DEADLINE_EXCEEDED);
    // 60, 120, 180 ms elapsed after attempts 1–3 plus a ≤ 4 ms backoff fit in 200 ms; the 4th does not.
    expect(calls).toBe(4);
    expect((error as RpcError).message).toBe('attempt 4');
  });

  it('tries INTERNAL (a bug, or a transport fault) SUSPECT_ATTEMPTS times in all', async () => {
    let calls = 0;
    const error = await callWithRetry(async () => {
      calls++;
      throw new RpcError(Status.INTERNAL, 'see its log');
    }, fast).catch((e: unknown) => e);
    expect(calls).toBe(SUSPECT_ATTEMPTS);
    expect((error as RpcError).code).toBe(Status.INTERNAL);
  });

  it('normalises foreign errors to RpcError', async () => {
    const error = await callWithRetry(async () => {
      throw new TypeError('boom');
    }, fast).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcError);
    expect((error as RpcError).code).toBe(Status.INTERNAL);
  });
});
