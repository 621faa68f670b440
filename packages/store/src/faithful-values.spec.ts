// What the store is given it gives back: text with NUL and control characters (bound, never inlined
// into SQL), NaN and ±Infinity inside configs, user-chosen keys that JavaScript treats specially
// (`__proto__`), and the extremes of the timestamp range.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { type NewJob, openStore, type Store } from './index.ts';
import { sampleJob } from './testing.ts';

let dir: string;
let dbPath: string;
let store: Store;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'store-values-'));
  dbPath = join(dir, 'store.db');
  store = await openStore({ dbPath });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function inspect<T>(sql: string, ...params: string[]): T[] {
  const db = new DatabaseSync(dbPath, { readOnly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

async function reopened(): Promise<Store> {
  await store.close();
  store = await openStore({ dbPath });
  return store;
}

function job(jobId: string, overrides: Partial<NewJob> = {}): NewJob {
  return sampleJob(jobId, { framework: '', modelName: '', ...overrides });
}

/** An object with an own `__proto__` entry, as JSON.parse and protobuf-es build them. */
const withProto = <T>(json: string) => JSON.parse(json) as Record<string, T>;

it('stores an error message with NUL and control characters exactly (bound, not inlined)', async () => {
  await store.createOrGetJob(job('nul'));
  const errorMessage = "a\u0000b\u0007c\n\td'); drop table training_job; --\u001b[0m";
  const ended = await store.endJob({
    jobId: 'nul',
    status: 'failed',
    finalMetrics: {},
    errorMessage,
    endedAt: new Date(),
  });
  expect(ended.errorMessage).toBe(errorMessage);
  expect((await (await reopened()).getJob('nul'))?.errorMessage).toBe(errorMessage);
  expect(
    inspect<{ e: string }>('select error_message as e from training_job where job_id = ?', 'nul'),
  ).toEqual([{ e: errorMessage }]);
});

it('stores params with NUL in their values exactly', async () => {
  const params = { cmd: 'a\u0000b', quote: "it's" };
  const { job: created } = await store.createOrGetJob(job('p', { params }));
  expect(created.params).toEqual(params);
  await store.reopenJob('p', { startEpoch: 1, params: { cmd: 'c\u0000d' } });
  expect((await (await reopened()).getJob('p'))?.params).toEqual({ cmd: 'c\u0000d' });
});

it('keeps NaN, ±Infinity and -0 inside configs, and objects that look like the encoding', async () => {
  const modelConfig = {
    nan: Number.NaN,
    inf: Number.POSITIVE_INFINITY,
    list: [Number.NEGATIVE_INFINITY, 1, { deep: Number.NaN }],
    negativeZero: -0,
    text: 'NaN',
    lookalike: { $num: 'NaN' },
    wrapped: { $obj: { a: 1 } },
    empty: {},
    none: null,
  };
  const { job: created } = await store.createOrGetJob(
    job('cfg', { modelConfig, trainingConfig: { lr: Number.NaN } }),
  );
  const read = (await (await reopened()).getJob('cfg'))!;
  for (const record of [created, read]) {
    expect(record.modelConfig).toEqual(modelConfig);
    expect(Object.is((record.modelConfig as { negativeZero: number }).negativeZero, -0)).toBe(true);
    expect(record.trainingConfig.lr).toBeNaN();
  }
  await store.reopenJob('cfg', { startEpoch: 0, trainingConfig: { lr: Number.POSITIVE_INFINITY } });
  expect((await store.getJob('cfg'))?.trainingConfig).toEqual({ lr: Number.POSITIVE_INFINITY });
});

it('keeps __proto__ keys in metrics, final metrics, params and configs', async () => {
  const params = withProto<string>('{"__proto__": "p", "constructor": "c"}');
  const modelConfig = withProto<unknown>('{"__proto__": {"x": [1, {"__proto__": 2}]}}');
  await store.createOrGetJob(job('proto', { params, modelConfig }));
  const metrics = withProto<number>('{"__proto__": 0.5, "accuracy": 0.9, "toString": 1}');
  await store.saveEpoch({
    jobId: 'proto',
    epoch: 0,
    metrics,
    columns: {},
    timestamp: new Date(),
    best: null,
  });
  await store.endJob({
    jobId: 'proto',
    status: 'completed',
    finalMetrics: withProto<number>('{"__proto__": Infinity}'.replace('Infinity', '1e999')),
    errorMessage: '',
    endedAt: new Date(),
  });
  const s = await reopened();
  const [epoch] = await s.listEpochs('proto');
  const read = (await s.getJob('proto'))!;
  const own = (o: object, key: string) => Object.getOwnPropertyDescriptor(o, key)?.value;
  expect(Object.keys(epoch!.metrics).sort()).toEqual(['__proto__', 'accuracy', 'toString']);
  expect(own(epoch!.metrics, '__proto__')).toBe(0.5);
  expect(own(read.finalMetrics, '__proto__')).toBe(Number.POSITIVE_INFINITY);
  expect(own(read.params, '__proto__')).toBe('p');
  expect(own(read.params, 'constructor')).toBe('c');
  const inner = own(read.modelConfig, '__proto__') as { x: [number, object] };
  expect(inner.x[0]).toBe(1);
  expect(own(inner.x[1], '__proto__')).toBe(2);
});

it('stores the first and last millisecond of google.protobuf.Timestamp', async () => {
  await store.createOrGetJob(job('t'));
  const first = new Date('0001-01-01T00:00:00.000Z');
  const last = new Date('9999-12-31T23:59:59.999Z');
  await store.beginEpoch('t', 0, first);
  await store.saveEpoch({ jobId: 't', epoch: 0, metrics: {}, columns: {}, timestamp: last, best: null });
  const [epoch] = await (await reopened()).listEpochs('t');
  expect(epoch?.beganAt?.toISOString()).toBe(first.toISOString());
  expect(epoch?.timestamp.toISOString()).toBe(last.toISOString());
});

it('gives back the same epoch and block by key (the watch streams’ reads) as by listing', async () => {
  await store.createOrGetJob(job('w'));
  const metrics = withProto<number>('{"__proto__": 0.5, "accuracy": 0.9, "top5": 1e999, "neg": -0}');
  await store.beginEpoch('w', 0, new Date('2026-01-02T03:04:05.678Z'));
  await store.saveEpoch({
    jobId: 'w',
    epoch: 0,
    metrics,
    columns: { accuracy: 0.9, loss: Number.NaN },
    timestamp: new Date('2026-01-02T03:04:06.789Z'),
    best: null,
  });
  await store.appendBatchBlocks('w', [
    {
      epoch: 0,
      names: ['loss', 'lr'],
      steps: BigInt64Array.from([1n, 2n ** 62n]),
      values: Float64Array.from([Number.NaN, -0, 0.5, 1e-300]),
    },
  ]);
  const s = await reopened();
  const [listed] = await s.listEpochs('w');
  const byKey = await s.getEpoch('w', 0);
  expect(byKey).toEqual(listed);
  expect(Object.is(byKey!.metrics.neg, -0)).toBe(true);
  expect(await s.getEpoch('w', 1)).toBeUndefined();
  const [block] = await s.readBatchBlocks('w', { afterId: 0, limit: 10 });
  expect(await s.getBatchBlock(block!.id)).toEqual(block);
  expect(await s.getBatchBlock(block!.id + 1)).toBeUndefined();
});
