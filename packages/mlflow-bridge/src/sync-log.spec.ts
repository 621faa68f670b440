import { describe, expect, it } from 'vitest';
import { PROGRESS_INTERVAL_MS, PROGRESS_MIN_BYTES, syncEventLogger } from './sync-log.ts';

function setup() {
  const lines: string[] = [];
  const errors: string[] = [];
  let t = 1_000_000;
  const onEvent = syncEventLogger({
    log: (l) => lines.push(l),
    logError: (l) => errors.push(l),
    now: () => t,
  });
  return { lines, errors, onEvent, advance: (ms: number) => (t += ms) };
}

describe('sync event log', () => {
  it('says once that MLflow fails and once that it is back, however many retries come between', () => {
    const { lines, onEvent } = setup();
    for (let attempts = 1; attempts <= 5; attempts++) {
      onEvent({
        type: 'retry',
        jobId: 'j',
        itemId: 1,
        attempts,
        delayMs: 1000,
        error: 'connect ECONNREFUSED',
      });
    }
    onEvent({ type: 'delivered', jobId: 'j', kind: 'epoch_metrics', items: 3, points: 30 });
    onEvent({ type: 'delivered', jobId: 'j', kind: 'epoch_metrics', items: 1, points: 10 });
    expect(lines).toEqual([
      '[j] MLflow: connect ECONNREFUSED — retrying (every item stays in the outbox; training is not affected)',
      '[j] MLflow: reachable again, catching up',
    ]);
  });

  it('writes a parked job to the error log with what to do', () => {
    const { lines, errors, onEvent } = setup();
    onEvent({ type: 'parked', jobId: 'j', itemId: 7, error: '403 PERMISSION_DENIED' });
    expect(lines).toEqual([]);
    expect(errors[0]).toContain('[j] MLflow sync STOPPED for this job: 403 PERMISSION_DENIED');
    expect(errors[0]).toContain('call RetryMlflowSync for the job or restart the sidecar');
  });

  it('shows a large upload starting, every few seconds while it runs, and its end; small ones stay quiet', () => {
    const { lines, onEvent, advance } = setup();
    const total = PROGRESS_MIN_BYTES * 4;
    const progress = (sentBytes: number, totalBytes = total, artifactPath = 'weights/best.pt') =>
      onEvent({ type: 'artifact_progress', jobId: 'j', artifactPath, sentBytes, totalBytes });
    progress(0);
    for (let i = 1; i < 16; i++) {
      advance(PROGRESS_INTERVAL_MS / 2);
      progress((total * i) / 16);
    }
    advance(PROGRESS_INTERVAL_MS / 2);
    progress(total);
    progress(0, PROGRESS_MIN_BYTES - 1, 'results.csv');
    progress(PROGRESS_MIN_BYTES - 1, PROGRESS_MIN_BYTES - 1, 'results.csv');
    expect(lines[0]).toBe('[j] MLflow: uploading weights/best.pt (64.0 MiB)');
    expect(lines.at(-1)).toBe('[j] MLflow: uploaded weights/best.pt (64.0 MiB in 40.0 s, 1.6 MiB/s)');
    // 40 s at one line per 5 s at most: 7 progress lines between the first and the last.
    const middle = lines.slice(1, -1);
    expect(middle).toHaveLength(7);
    expect(middle[0]).toBe('[j] MLflow: uploading weights/best.pt: 12 % (8.0 MiB of 64.0 MiB)');
    expect(lines.some((l) => l.includes('results.csv'))).toBe(false);
  });

  it('starts the count again when a failed upload is retried from byte 0', () => {
    const { lines, onEvent, advance } = setup();
    const total = PROGRESS_MIN_BYTES;
    onEvent({ type: 'artifact_progress', jobId: 'j', artifactPath: 'a.pt', sentBytes: 0, totalBytes: total });
    advance(1000);
    onEvent({
      type: 'artifact_progress',
      jobId: 'j',
      artifactPath: 'a.pt',
      sentBytes: 10,
      totalBytes: total,
    });
    advance(60_000);
    onEvent({ type: 'artifact_progress', jobId: 'j', artifactPath: 'a.pt', sentBytes: 0, totalBytes: total });
    advance(2000);
    onEvent({
      type: 'artifact_progress',
      jobId: 'j',
      artifactPath: 'a.pt',
      sentBytes: total,
      totalBytes: total,
    });
    expect(lines.filter((l) => l.includes('uploading a.pt (16.0 MiB)'))).toHaveLength(2);
    expect(lines.at(-1)).toContain('in 2.0 s');
  });
});
