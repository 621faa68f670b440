// Values checked at the edge and stored faithfully, against the real sidecar process and its database
// (SQLite, or PostgreSQL in the PostgreSQL run): what is refused is refused with INVALID_ARGUMENT and changes nothing; what is acknowledged
// reads back exactly as sent — names JS treats specially (`__proto__`), NUL and control characters in
// text, NaN and ±Infinity inside configs, the extremes of google.protobuf.Timestamp, characters outside
// the BMP, and percentages converted without new decimal digits.
import { createClient, type ServiceClient, Status } from '@training-callbacks/grpc-adapter';
import {
  type JobStatus,
  type MetricFormat,
  TaskType,
  TrainingCallbacks,
  TrainingOutcome,
} from '@training-callbacks/proto';
import { type SidecarProcess, startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ON_POSTGRES, queryDatabase } from './database.ts';
import { expectRefused } from './refusals.ts';

type Methods = typeof TrainingCallbacks extends { method: infer M } ? M : never;

let sidecar: SidecarProcess;
let client: ServiceClient<Methods>;

beforeAll(async () => {
  sidecar = await startSidecarProcess({ args: ['--quiet'] });
  client = createClient(TrainingCallbacks, sidecar.address);
  await client.beginTraining({ jobId: 'values', taskType: TaskType.IMAGE_CLASSIFICATION });
});

afterAll(async () => {
  client?.close();
  await sidecar?.[Symbol.asyncDispose]();
});

const refused = (call: () => Promise<unknown>, code: Parameters<typeof expectRefused>[2], message: RegExp) =>
  expectRefused(sidecar.dbPath, call, code, message);

/** A JSON column of one row, parsed. */
async function jsonColumn(sql: string, ...params: unknown[]): Promise<unknown> {
  const rows = await queryDatabase<Record<string, string>>(sidecar.dbPath, sql, ...params);
  expect(rows).toHaveLength(1);
  return JSON.parse(Object.values(rows[0]!)[0]!);
}

describe('timestamps', () => {
  const MAX_SECONDS = 253402300799n; // 9999-12-31T23:59:59Z
  const MIN_SECONDS = -62135596800n; // 0001-01-01T00:00:00Z

  it.each([
    ['after 9999-12-31', { seconds: MAX_SECONDS + 1n, nanos: 0 }],
    ['before 0001-01-01', { seconds: MIN_SECONDS - 1n, nanos: 0 }],
    ['beyond JavaScript Date (±8.64e15 ms)', { seconds: 8_640_000_000_001n, nanos: 0 }],
    ['at the int64 limit', { seconds: 9223372036854775807n, nanos: 0 }],
    ['with negative nanos', { seconds: 0n, nanos: -1 }],
    ['with nanos of a whole second', { seconds: 0n, nanos: 1_000_000_000 }],
  ])(
    'EndEpoch and BeginEpoch refuse a timestamp %s (it was acknowledged, then missing)',
    async (_, timestamp) => {
      await refused(
        () => client.endEpoch({ jobId: 'values', epoch: 7, metrics: { accuracy: 0.5 }, timestamp }),
        Status.INVALID_ARGUMENT,
        /timestamp .* outside google.protobuf.Timestamp's range \(0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z, nanos 0 to 999999999\)/,
      );
      await refused(
        () => client.beginEpoch({ jobId: 'values', epoch: 7, timestamp }),
        Status.INVALID_ARGUMENT,
        /timestamp .* outside google.protobuf.Timestamp's range/,
      );
    },
  );

  it('stores the first and the last instant of the range and reads them back', async () => {
    await client.beginEpoch({ jobId: 'values', epoch: 1, timestamp: { seconds: MIN_SECONDS, nanos: 0 } });
    await client.endEpoch({
      jobId: 'values',
      epoch: 1,
      metrics: { accuracy: 0.5 },
      timestamp: { seconds: MAX_SECONDS, nanos: 999_999_999 },
    });
    const { epochs } = await client.listEpochs({ jobId: 'values' });
    const epoch = epochs.find((e) => e.epoch === 1)!;
    expect(epoch.beganAt).toMatchObject({ seconds: MIN_SECONDS, nanos: 0 });
    // Stored with millisecond precision (documented): the last millisecond of 9999.
    expect(epoch.timestamp).toMatchObject({ seconds: MAX_SECONDS, nanos: 999_000_000 });
  });
});

describe('enums', () => {
  it('BeginTraining refuses a custom metric format that is no MetricFormat', () =>
    refused(
      () =>
        client.beginTraining({
          jobId: 'enum-job',
          taskType: TaskType.IMAGE_CLASSIFICATION,
          customMetrics: [{ name: 'ece', format: 42 as MetricFormat }],
        }),
      Status.INVALID_ARGUMENT,
      /custom_metrics\[0\]\.format 42 is not a MetricFormat; send METRIC_FORMAT_PERCENT, METRIC_FORMAT_FLOAT or METRIC_FORMAT_INT/,
    ));
  it('EndTraining refuses an outcome number that is no TrainingOutcome', () =>
    refused(
      () => client.endTraining({ jobId: 'values', outcome: 42 as TrainingOutcome }),
      Status.INVALID_ARGUMENT,
      /outcome 42 is not a TrainingOutcome; send TRAINING_OUTCOME_COMPLETED/,
    ));
  it('ListJobs and GetMetricCatalog refuse unknown numbers', async () => {
    await refused(
      () => client.listJobs({ status: 9 as JobStatus }),
      Status.INVALID_ARGUMENT,
      /status 9 is not a job status/,
    );
    await refused(
      () => client.getMetricCatalog({ taskType: 77 as TaskType }),
      Status.INVALID_ARGUMENT,
      /task_type 77 is not a task type/,
    );
  });
});

describe('configs (google.protobuf.Struct)', () => {
  const nested = (levels: number): Record<string, unknown> => {
    let value: Record<string, unknown> = { leaf: 1 };
    for (let i = 1; i < levels; i++) value = { level: value };
    return value;
  };

  it('refuses a config nested deeper than 32 levels, with the limit', async () => {
    await refused(
      () =>
        client.beginTraining({
          jobId: 'deep',
          taskType: TaskType.IMAGE_CLASSIFICATION,
          modelConfig: nested(33) as never,
        }),
      Status.INVALID_ARGUMENT,
      /model_config is nested 33 levels deep; the limit is 32/,
    );
    await refused(
      () =>
        client.beginTraining({
          jobId: 'deep',
          taskType: TaskType.IMAGE_CLASSIFICATION,
          trainingConfig: {
            layers: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
          } as never,
        }),
      Status.INVALID_ARGUMENT,
      /training_config is nested 34 levels deep; the limit is 32/,
    );
    await refused(
      () =>
        client.beginTraining({
          jobId: 'deep',
          taskType: TaskType.IMAGE_CLASSIFICATION,
          modelConfig: nested(49) as never,
        }),
      Status.INVALID_ARGUMENT,
      /nested 49 levels deep; the limit is 32/,
    );
    // From 50 levels on (100 nested messages: Struct → Value → Struct …) protobuf's decoder refuses the
    // request itself, before any handler runs: that is the undecodable-request case of the error table.
  });

  it('keeps a config of 32 levels', async () => {
    const { job } = await client.beginTraining({
      jobId: 'deep',
      taskType: TaskType.IMAGE_CLASSIFICATION,
      modelConfig: nested(32) as never,
    });
    expect(job?.modelConfig).toEqual(nested(32));
    expect((await client.getJob({ jobId: 'deep' })).job?.modelConfig).toEqual(nested(32));
  });

  it('keeps NaN and ±Infinity inside configs (they came back null), and strings that look like them', async () => {
    const modelConfig = {
      nan: Number.NaN,
      inf: Number.POSITIVE_INFINITY,
      ninf: Number.NEGATIVE_INFINITY,
      nested: { values: [Number.NaN, 1.5, Number.NEGATIVE_INFINITY], text: 'NaN' },
      lookalike: { $num: 'NaN' },
      wrapped: { $obj: { a: 1 } },
      plain: 'Infinity',
    };
    const { job } = await client.beginTraining({
      jobId: 'nan-config',
      taskType: TaskType.IMAGE_CLASSIFICATION,
      modelConfig: modelConfig as never,
      trainingConfig: { lr: Number.NaN } as never,
    });
    for (const read of [job, (await client.getJob({ jobId: 'nan-config' })).job]) {
      expect(read?.modelConfig).toEqual(modelConfig);
      expect(read?.trainingConfig?.lr).toBeNaN();
    }
    // And through ListJobs.
    const listed = (await client.listJobs({})).jobs.find((j) => j.jobId === 'nan-config');
    expect(listed?.modelConfig).toEqual(modelConfig);
  });
});

describe('what a job stores about itself', () => {
  it('is refused over 1 MiB encoded, so that every accepted job can be read back in one message', async () => {
    const params = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`p${i}`, 'v'.repeat(6000)]));
    await refused(
      () => client.beginTraining({ jobId: 'huge', taskType: TaskType.IMAGE_CLASSIFICATION, params }),
      Status.INVALID_ARGUMENT,
      /take 12\d{5} bytes encoded; the limit is 1048576 \(1 MiB\)/,
    );
    await refused(
      () =>
        client.beginTraining({
          jobId: 'huge',
          taskType: TaskType.IMAGE_CLASSIFICATION,
          modelConfig: { layers: Array.from({ length: 150_000 }, (_, i) => i * 1.5) } as never,
        }),
      Status.INVALID_ARGUMENT,
      /the limit is 1048576/,
    );
    // Just under the limit: stored, and read back whole.
    const fits = Object.fromEntries(Array.from({ length: 160 }, (_, i) => [`p${i}`, 'v'.repeat(6000)]));
    const { job } = await client.beginTraining({
      jobId: 'big',
      taskType: TaskType.IMAGE_CLASSIFICATION,
      params: fits,
    });
    expect(Object.keys(job!.params)).toHaveLength(160);
    expect((await client.getJob({ jobId: 'big' })).job?.params).toEqual(fits);
  });
});

describe('names that are special in JavaScript', () => {
  it('a metric named __proto__ is stored and read back (it was acknowledged and never stored)', async () => {
    const reported = JSON.parse(
      '{"__proto__": 0.25, "constructor": 2, "toString": 3, "hasOwnProperty": 4, "accuracy": 0.7}',
    ) as Record<string, number>;
    expect(Object.keys(reported)).toContain('__proto__');
    const response = await client.endEpoch({ jobId: 'values', epoch: 2, metrics: reported });
    expect(response.verdicts.map((v) => v.reportedName)).toContain('__proto__');
    const { epochs } = await client.listEpochs({ jobId: 'values' });
    const epoch = epochs.find((e) => e.epoch === 2)!;
    expect(Object.keys(epoch.metrics).sort()).toEqual(
      ['__proto__', 'accuracy', 'constructor', 'hasOwnProperty', 'toString'].sort(),
    );
    expect(Object.getOwnPropertyDescriptor(epoch.metrics, '__proto__')?.value).toBe(0.25);
    const stored = (await jsonColumn(
      'select extra_metrics from training_metric where job_id = ? and epoch = 2',
      'values',
    )) as Record<string, number>;
    expect(Object.getOwnPropertyDescriptor(stored, '__proto__')?.value).toBe(0.25);
  });

  it('params, configs and final metrics keep a __proto__ key', async () => {
    const params = JSON.parse('{"__proto__": "polluted?", "lr": "0.1"}') as Record<string, string>;
    const modelConfig = JSON.parse('{"__proto__": {"depth": 50}, "n": 1}') as Record<string, unknown>;
    const { job } = await client.beginTraining({
      jobId: 'proto-keys',
      taskType: TaskType.IMAGE_CLASSIFICATION,
      params,
      modelConfig: modelConfig as never,
    });
    const final = JSON.parse('{"__proto__": 1.5, "accuracy": 0.9}') as Record<string, number>;
    const ended = await client.endTraining({
      jobId: 'proto-keys',
      outcome: TrainingOutcome.COMPLETED,
      finalMetrics: final,
    });
    for (const read of [job, ended.job, (await client.getJob({ jobId: 'proto-keys' })).job]) {
      expect(Object.keys(read!.params).sort()).toEqual(['__proto__', 'lr']);
      expect(Object.getOwnPropertyDescriptor(read!.params, '__proto__')?.value).toBe('polluted?');
      expect(Object.getOwnPropertyDescriptor(read!.modelConfig, '__proto__')?.value).toEqual({ depth: 50 });
    }
    expect(Object.getOwnPropertyDescriptor(ended.job!.finalMetrics, '__proto__')?.value).toBe(1.5);
    expect(({} as Record<string, unknown>).depth).toBeUndefined(); // nothing leaked into Object.prototype
  });

  it('a batch metric named __proto__ is stored and read back', async () => {
    const response = await client.reportBatchMetrics([
      { jobId: 'values', blocks: [{ epoch: 0, names: ['__proto__', 'loss'], steps: [5n], values: [1, 2] }] },
    ]);
    expect(response.acceptedPoints).toBe(2n);
    const { blocks } = await client.listBatchMetrics({ jobId: 'values', epoch: 0 });
    expect(blocks.find((b) => b.steps[0] === 5n)?.names).toEqual(['__proto__', 'train_loss']);
  });
});

describe('text', () => {
  it('a NUL and control characters in error_message are stored faithfully (it was INTERNAL)', async () => {
    await client.beginTraining({ jobId: 'nul-error', taskType: TaskType.IMAGE_CLASSIFICATION });
    const sent =
      'Traceback:\n\tfile "x.py"\nValueError: bad byte \u0000 here\u0007 and \u001b[31mred\u001b[0m';
    // PostgreSQL cannot store NUL in text: the store keeps U+FFFD in its place (packages/store README).
    const errorMessage = ON_POSTGRES ? sent.replaceAll('\u0000', '\uFFFD') : sent;
    const { job } = await client.endTraining({
      jobId: 'nul-error',
      outcome: TrainingOutcome.FAILED,
      errorMessage: sent,
    });
    expect(job?.status).toBe(3); // FAILED
    expect(job?.errorMessage).toBe(errorMessage);
    expect((await client.getJob({ jobId: 'nul-error' })).job?.errorMessage).toBe(errorMessage);
    const rows = await queryDatabase<{ error_message: string }>(
      sidecar.dbPath,
      'select error_message from training_job where job_id = ?',
      'nul-error',
    );
    expect(rows[0]?.error_message).toBe(errorMessage);
  });

  it('an error_message over the limit is cut at a character, never inside one', async () => {
    await client.beginTraining({ jobId: 'long-error', taskType: TaskType.IMAGE_CLASSIFICATION });
    const { job } = await client.endTraining({
      jobId: 'long-error',
      outcome: TrainingOutcome.FAILED,
      errorMessage: '😀'.repeat(20_000),
    });
    expect(job?.errorMessage).toBe(`${'😀'.repeat(16384)}… (truncated from 20000 characters)`);
  });

  it('lengths are counted in characters (code points), not UTF-16 units', async () => {
    const { job } = await client.beginTraining({
      jobId: '😀'.repeat(128), // 256 UTF-16 units
      taskType: TaskType.IMAGE_CLASSIFICATION,
      framework: '𝔉'.repeat(256),
      params: { ['🔑'.repeat(250)]: '𝓋'.repeat(6000) },
    });
    expect(job?.jobId).toBe('😀'.repeat(128));
    await refused(
      () => client.beginTraining({ jobId: '😀'.repeat(129), taskType: TaskType.IMAGE_CLASSIFICATION }),
      Status.INVALID_ARGUMENT,
      /job_id is 129 characters long; the limit is 128/,
    );
    await refused(
      () =>
        client.beginTraining({
          jobId: 'x',
          taskType: TaskType.IMAGE_CLASSIFICATION,
          params: { k: '𝓋'.repeat(6001) },
        }),
      Status.INVALID_ARGUMENT,
      /params\["k"\] is 6001 characters long; the limit is 6000/,
    );
  });
});

describe('metric values', () => {
  it("timm's eval_top1 88.2728 is stored as 0.882728 (it was 0.8827280000000001)", async () => {
    await client.beginTraining({ jobId: 'timm', taskType: TaskType.IMAGE_CLASSIFICATION, framework: 'timm' });
    const response = await client.endEpoch({ jobId: 'timm', epoch: 0, metrics: { eval_top1: 88.2728 } });
    expect(response.best?.value).toBe(0.882728);
    const { epochs } = await client.listEpochs({ jobId: 'timm' });
    expect(epochs[0]?.metrics.accuracy).toBe(0.882728);
    const rows = await queryDatabase<{ accuracy: number; extra_metrics: string }>(
      sidecar.dbPath,
      'select accuracy, extra_metrics from training_metric where job_id = ?',
      'timm',
    );
    expect(rows[0]?.accuracy).toBe(0.882728);
    expect(JSON.parse(rows[0]!.extra_metrics)).toMatchObject({ accuracy: 0.882728 });
  });

  it("Keras' accuracy next to val_accuracy is training accuracy: the best epoch follows val_accuracy", async () => {
    await client.beginTraining({
      jobId: 'keras',
      taskType: TaskType.IMAGE_CLASSIFICATION,
      framework: 'keras',
    });
    // Training accuracy keeps rising while validation accuracy peaks at epoch 1 (overfitting).
    const logs = [
      { accuracy: 0.8, val_accuracy: 0.7, loss: 0.5, val_loss: 0.6 },
      { accuracy: 0.9, val_accuracy: 0.78, loss: 0.3, val_loss: 0.5 },
      { accuracy: 0.99, val_accuracy: 0.74, loss: 0.1, val_loss: 0.7 },
    ];
    for (const [epoch, metrics] of logs.entries()) {
      const { verdicts } = await client.endEpoch({ jobId: 'keras', epoch, metrics });
      expect(verdicts.find((v) => v.reportedName === 'accuracy')?.name).toBe('train_accuracy');
      expect(verdicts.find((v) => v.reportedName === 'val_accuracy')?.name).toBe('accuracy');
    }
    const best = await client.getBestEpoch({ jobId: 'keras' });
    expect(best.epoch?.epoch).toBe(1);
    expect(best.epoch?.metrics).toMatchObject({ accuracy: 0.78, train_accuracy: 0.9, train_loss: 0.3 });
  });
});
