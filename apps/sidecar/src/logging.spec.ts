import { describe, expect, it } from 'vitest';
import { createLogger, type LogLevel } from './logging.ts';

function sink() {
  const lines: string[] = [];
  return { lines, write: (chunk: string) => lines.push(...chunk.split('\n').filter(Boolean)) };
}

describe('createLogger', () => {
  it('text: the message as it is, info and debug on stdout, warnings and errors on stderr', () => {
    const out = sink();
    const err = sink();
    const log = createLogger({ format: 'text', level: 'debug', stdout: out, stderr: err });
    log.debug('d', { event: 'x' });
    log.info('[job-1] epoch 0 │ Accuracy 50.00%', { event: 'epoch', jobId: 'job-1' });
    log.warn('w');
    log.error('e', { event: 'internal_error' });
    expect(out.lines).toEqual(['d', '[job-1] epoch 0 │ Accuracy 50.00%']);
    expect(err.lines).toEqual(['w', 'e']);
  });

  it('json: one object per line with level, ISO time, event, jobId, fields and msg', () => {
    const out = sink();
    const log = createLogger({ format: 'json', level: 'info', stdout: out });
    log.info('[job-1] training begun', { event: 'job_begun', jobId: 'job-1', task: 'image_classification' });
    log.error('boom');
    const [first, second] = out.lines.map((line) => JSON.parse(line));
    expect(first).toEqual({
      level: 'info',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      event: 'job_begun',
      jobId: 'job-1',
      task: 'image_classification',
      msg: '[job-1] training begun',
    });
    expect(second).toMatchObject({ level: 'error', msg: 'boom' });
  });

  it.each([
    ['debug', 4],
    ['info', 3],
    ['warn', 2],
    ['error', 1],
    ['silent', 0],
  ] as Array<[LogLevel, number]>)('--log-level %s keeps %i of 4 lines, in both formats', (level, kept) => {
    for (const format of ['text', 'json'] as const) {
      const out = sink();
      const log = createLogger({ format, level, stdout: out, stderr: out });
      log.debug('d');
      log.info('i');
      log.warn('w');
      log.error('e');
      expect(out.lines).toHaveLength(kept);
    }
  });
});
