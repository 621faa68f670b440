// `--log-format json`: what a log pipeline reads from the real sidecar process. Every line parses as a
// JSON object with level, time, event and msg, and every line about a job carries its id.
import { createClient } from '@training-callbacks/grpc-adapter';
import { TaskType, TrainingCallbacks, TrainingOutcome } from '@training-callbacks/proto';
import { startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { expect, it } from 'vitest';

interface LogLine {
  level: string;
  time: string;
  event: string;
  msg: string;
  jobId?: string;
  [key: string]: unknown;
}

it('writes one JSON object per line; each line about a job carries its id', async () => {
  await using sidecar = await startSidecarProcess({ args: ['--log-format', 'json'] });
  const client = createClient(TrainingCallbacks, sidecar.address);
  const jobs = ['json-a', 'json-b'];
  for (const jobId of jobs) {
    await client.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION, framework: 'timm' });
    for (let epoch = 0; epoch < 2; epoch++) {
      await client.endEpoch({ jobId, epoch, metrics: { accuracy: 0.6 + epoch / 10 } });
    }
  }
  await client.endTraining({ jobId: 'json-a', outcome: TrainingOutcome.COMPLETED });
  await client.endTraining({ jobId: 'json-b', outcome: TrainingOutcome.FAILED, errorMessage: 'CUDA OOM' });
  await client.beginTraining({ jobId: 'json-b', taskType: TaskType.IMAGE_CLASSIFICATION, startEpoch: 2 });
  client.close();
  expect(await sidecar.stop('SIGTERM')).toBe(0);

  const lines = sidecar.output.filter((line) => line.trim() !== '');
  const parsed = lines.map((line) => {
    try {
      return JSON.parse(line) as LogLine;
    } catch {
      throw new Error(`not a JSON line: ${line}`);
    }
  });
  for (const line of parsed) {
    expect(line).toMatchObject({
      level: expect.any(String),
      event: expect.any(String),
      msg: expect.any(String),
    });
    expect(Number.isNaN(Date.parse(line.time))).toBe(false);
  }
  for (const jobId of jobs) {
    const about = parsed.filter((line) => line.msg.includes(`[${jobId}]`));
    expect(about.length).toBeGreaterThanOrEqual(4);
    for (const line of about) expect(line.jobId, line.msg).toBe(jobId);
  }
  const events = (jobId: string) => parsed.filter((l) => l.jobId === jobId).map((l) => l.event);
  expect(events('json-a')).toEqual(['job_begun', 'epoch', 'epoch', 'job_ended']);
  expect(events('json-b')).toEqual(['job_begun', 'epoch', 'epoch', 'job_ended', 'job_resumed']);
  const epoch = parsed.find((l) => l.event === 'epoch' && l.jobId === 'json-a')!;
  expect(epoch).toMatchObject({ level: 'info', epoch: 0, metrics: { accuracy: 0.6 } });
  expect(parsed.find((l) => l.event === 'job_ended' && l.jobId === 'json-b')).toMatchObject({
    status: 'failed',
    error: 'CUDA OOM',
  });
  expect(parsed.map((l) => l.event)).toEqual(
    expect.arrayContaining(['http_listening', 'listening', 'stopping', 'stopped']),
  );
});
