import { create } from '@bufbuild/protobuf';
import {
  EndCause,
  JobSchema,
  JobStatus,
  MetricDefinitionSchema,
  MetricFormat,
  MlflowSyncSchema,
} from '@training-callbacks/proto';
import { describe, expect, it } from 'vitest';
import {
  formatDuration,
  formatValue,
  matchesStatusFilter,
  mlflowRunUrl,
  statusOf,
  syncOf,
} from './format.ts';

const definition = (format: MetricFormat) => create(MetricDefinitionSchema, { name: 'm', format });

describe('formatValue', () => {
  it('formats by the catalog: percent, float (also unspecified), int; non-finite and missing as such', () => {
    expect(formatValue(0.912, definition(MetricFormat.PERCENT))).toBe('91.20%');
    expect(formatValue(0.23404, definition(MetricFormat.FLOAT))).toBe('0.2340');
    expect(formatValue(0.23404, definition(MetricFormat.UNSPECIFIED))).toBe('0.2340');
    expect(formatValue(0.23404, undefined)).toBe('0.2340');
    expect(formatValue(11.6, definition(MetricFormat.INT))).toBe('12');
    expect(formatValue(Number.NaN, definition(MetricFormat.PERCENT))).toBe('NaN');
    expect(formatValue(-Infinity, undefined)).toBe('-Inf');
    expect(formatValue(0.00025, undefined)).toBe('2.500e-4');
    expect(formatValue(undefined, undefined)).toBe('—');
  });
});

describe('statusOf', () => {
  it('tells a lost job (the sidecar’s verdict) apart from a failure the trainer reported', () => {
    const lost = create(JobSchema, {
      status: JobStatus.FAILED,
      endCause: EndCause.LEASE_EXPIRED,
      endReason: 'lost: no heartbeat from the trainer for 60 s',
    });
    const failed = create(JobSchema, {
      status: JobStatus.FAILED,
      endCause: EndCause.REPORTED,
      errorMessage: 'CUDA out of memory',
    });
    expect(statusOf(lost)).toEqual({
      label: 'lost',
      kind: 'lost',
      reason: 'lost: no heartbeat from the trainer for 60 s',
    });
    expect(statusOf(failed)).toEqual({ label: 'failed', kind: 'failed', reason: 'CUDA out of memory' });
    expect(matchesStatusFilter(lost, 'lost')).toBe(true);
    expect(matchesStatusFilter(failed, 'lost')).toBe(false);
    expect(matchesStatusFilter(lost, 'failed')).toBe(false);
    expect(matchesStatusFilter(failed, 'failed')).toBe(true);
    expect(statusOf(create(JobSchema, { status: JobStatus.COMPLETED })).reason).toBe('');
  });

  it('names what the client could not deliver', () => {
    const job = create(JobSchema, {
      status: JobStatus.COMPLETED,
      clientLosses: { droppedPoints: 3n, reasons: ['buffer full'] },
    });
    expect(statusOf(job).reason).toBe(
      'client could not deliver: 3 dropped, 0 refused points, 0 failed writes (buffer full)',
    );
  });
});

describe('MLflow', () => {
  it('says how far the mirror is behind, and links the run when the UI is known', () => {
    expect(syncOf(create(JobSchema)).text).toBe('off');
    const pending = create(JobSchema, {
      mlflowSync: create(MlflowSyncSchema, { enabled: true, pendingItems: 4n, oldestPendingAgeSeconds: 400 }),
    });
    expect(syncOf(pending)).toEqual({ text: '4 pending (oldest 6 min 40 s)', attention: true });
    const mirrored = create(JobSchema, { mlflowExperimentId: '1', mlflowRunId: 'abc' });
    expect(mlflowRunUrl(mirrored, 'http://mlflow:5000/')).toBe('http://mlflow:5000/#/experiments/1/runs/abc');
    expect(mlflowRunUrl(mirrored, undefined)).toBeUndefined();
  });

  it('formats durations', () => {
    expect([formatDuration(4200), formatDuration(723_000), formatDuration(7_500_000)]).toEqual([
      '4 s',
      '12 min 3 s',
      '2 h 05 min',
    ]);
  });
});
