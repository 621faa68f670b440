import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { DISPLAY_STATUSES, displayStatus, EndCause, JobSchema, JobStatus, statusFilter } from './index.ts';

const job = (status: JobStatus, endCause: EndCause = EndCause.UNSPECIFIED) =>
  create(JobSchema, { status, endCause });

describe('display status', () => {
  const reportedFailure = job(JobStatus.FAILED, EndCause.REPORTED);
  const leaseExpired = job(JobStatus.FAILED, EndCause.LEASE_EXPIRED);
  const processExited = job(JobStatus.FAILED, EndCause.PROCESS_EXITED);

  it('names a FAILED job lost only when the sidecar ended it by a verdict', () => {
    expect(displayStatus(reportedFailure)).toBe('failed');
    expect(displayStatus(leaseExpired)).toBe('lost');
    expect(displayStatus(processExited)).toBe('lost');
    expect(displayStatus(job(JobStatus.COMPLETED, EndCause.REPORTED))).toBe('completed');
    expect(displayStatus(job(42 as JobStatus))).toBe('unknown');
  });

  it('offers every contract status and lost', () => {
    expect(DISPLAY_STATUSES).toEqual(['running', 'completed', 'failed', 'cancelled', 'lost']);
  });

  it('filters by what the badge says: failed leaves lost jobs out, lost finds only them', () => {
    const failed = statusFilter('FAILED');
    const lost = statusFilter('lost');
    expect(failed?.status).toBe(JobStatus.FAILED);
    expect(lost?.status).toBe(JobStatus.FAILED);
    expect([reportedFailure, leaseExpired, processExited].map((j) => failed?.keep(j))).toEqual([
      true,
      false,
      false,
    ]);
    expect([reportedFailure, leaseExpired, processExited].map((j) => lost?.keep(j))).toEqual([
      false,
      true,
      true,
    ]);
    expect(statusFilter('running')?.keep(job(JobStatus.RUNNING))).toBe(true);
    expect(statusFilter('running')?.keep(job(JobStatus.COMPLETED))).toBe(false);
    expect(statusFilter('finished')).toBeUndefined();
  });
});
