import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type BatchBlock,
  type MetricSourceRecord,
  type NewJob,
  openStore,
  type Store,
  StoreError,
  type StoreOptions,
} from './index.ts';
import { openSqliteOrm, sqlitePragmas } from './sqlite-dialect.ts';

let dir: string;
let dbPath: string;
const open: Store[] = [];

async function openTestStore(options: Partial<StoreOptions> = {}): Promise<Store> {
  const store = await openStore({ dbPath, ...options });
  open.push(store);
  return store;
}

/** Closes `store` and opens the same file again, to prove what was committed is on disk. */
async function reopen(store: Store): Promise<Store> {
  await store.close();
  open.splice(open.indexOf(store), 1);
  return openTestStore();
}

/** Reads the file with node:sqlite, independently of MikroORM. */
function inspect<T>(sql: string, ...params: (string | number)[]): T[] {
  const db = new DatabaseSync(dbPath, { readOnly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

function newJob(jobId: string, overrides: Partial<NewJob> = {}): NewJob {
  return {
    jobId,
    task: 'image_classification',
    framework: 'timm',
    modelName: 'resnet50',
    modelConfig: { arch: 'resnet50', pretrained: true, layers: [3, 4, 6, 3] },
    trainingConfig: { epochs: 10, optimizer: { name: 'adamw', lr: 0.001 } },
    params: { lr: '0.001', batch_size: '64' },
    customMetrics: [
      {
        name: 'ece',
        label: 'ECE',
        format: 'float',
        higherIsBetter: false,
        description: 'Calibration error.',
      },
    ],
    startEpoch: 0,
    primaryMetric: 'accuracy',
    ...overrides,
  };
}

function block(epoch: number, names: string[], firstStep: bigint, rows: number, seed = 0): BatchBlock {
  const steps = new BigInt64Array(rows);
  const values = new Float64Array(rows * names.length);
  for (let r = 0; r < rows; r++) {
    steps[r] = firstStep + BigInt(r);
    for (let c = 0; c < names.length; c++) values[r * names.length + c] = seed + r + c / 10;
  }
  return { epoch, names, steps, values };
}

/** The outbox entry of newly recorded metric sources, as a test builds it. */
const sourcesItem = (added: MetricSourceRecord[]) => ({ kind: 'metric_sources', payload: { added } });

function bitsOf(values: Float64Array): bigint[] {
  return [...new BigUint64Array(values.buffer, values.byteOffset, values.length)];
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'store-spec-'));
  dbPath = join(dir, 'nested', 'dir', 'store.db');
});

afterEach(async () => {
  for (const store of open.splice(0)) await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('openStore', () => {
  it('creates the parent directory, applies the migrations once and turns WAL on', async () => {
    let store = await openTestStore();
    expect(existsSync(dbPath)).toBe(true);
    const migrations = () => inspect<{ name: string }>('select name from mikro_orm_migrations');
    const first = migrations();
    expect(first.length).toBeGreaterThan(0);
    expect(inspect<{ journal_mode: string }>('pragma journal_mode')[0]?.journal_mode).toBe('wal');

    store = await reopen(store);
    expect(migrations()).toEqual(first);
    const tables = inspect<{ name: string }>(
      "select name from sqlite_master where type = 'table' order by name",
    );
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining(['artifact', 'batch_metric_block', 'training_job', 'training_metric']),
    );
  });

  it('has committed migrations that match the entities (no schema drift)', async () => {
    const orm = await openSqliteOrm({ dbPath });
    try {
      expect((await orm.schema.getUpdateSchemaSQL({ wrap: false })).trim()).toBe('');
    } finally {
      await orm.close(true);
    }
  });

  it('chooses synchronous by durability', async () => {
    expect(sqlitePragmas({})).toContain('synchronous = NORMAL');
    expect(sqlitePragmas({ durability: 'full' })).toContain('synchronous = FULL');
    const store = await openTestStore({ durability: 'full' });
    await store.createOrGetJob(newJob('full'));
    expect((await store.getJob('full'))?.jobId).toBe('full');
  });

  it('works in memory', async () => {
    const store = await openStore({ dbPath: ':memory:' });
    try {
      await store.createOrGetJob(newJob('mem'));
      expect((await store.getJob('mem'))?.status).toBe('running');
    } finally {
      await store.close();
    }
  });
});

describe('jobs', () => {
  it('creates a job once and returns the existing one untouched', async () => {
    let store = await openTestStore();
    const created = await store.createOrGetJob(newJob('job-1'));
    expect(created.created).toBe(true);
    expect(created.job).toMatchObject({
      jobId: 'job-1',
      status: 'running',
      epochsReported: 0,
      finalMetrics: {},
      errorMessage: '',
      mlflowExperimentId: '',
      mlflowRunId: '',
      modelConfig: { arch: 'resnet50', pretrained: true, layers: [3, 4, 6, 3] },
      params: { lr: '0.001', batch_size: '64' },
    });
    expect(created.job.bestEpoch).toBeUndefined();
    expect(created.job.endedAt).toBeUndefined();
    expect(created.job.createdAt).toBeInstanceOf(Date);

    const again = await store.createOrGetJob(newJob('job-1', { modelName: 'other', startEpoch: 5 }));
    expect(again.created).toBe(false);
    expect(again.job).toEqual(created.job);

    store = await reopen(store);
    expect(await store.getJob('job-1')).toEqual(created.job);
    expect(await store.getJob('missing')).toBeUndefined();
  });

  it('refuses an epoch for a job another store ended, inside the write; a reopen lets it in again', async () => {
    // Two stores on one file stand for two sidecars sharing a database: neither's memory is the truth.
    const a = await openTestStore();
    const b = await openTestStore();
    await a.createOrGetJob(newJob('job-x'));
    const epoch = (n: number) => ({
      jobId: 'job-x',
      epoch: n,
      metrics: { accuracy: 0.5 },
      columns: { accuracy: 0.5 },
      timestamp: new Date(),
      best: { epoch: n, value: 0.5 },
    });
    await a.saveEpoch(epoch(0));
    await b.endJob({
      jobId: 'job-x',
      status: 'failed',
      finalMetrics: {},
      errorMessage: 'OOM',
      endedAt: new Date(),
    });
    await expect(a.saveEpoch(epoch(1))).rejects.toMatchObject({ kind: 'ended' });
    expect(inspect('SELECT epoch FROM training_metric WHERE job_id = ?', 'job-x')).toEqual([{ epoch: 0 }]);
    expect(await a.getJob('job-x')).toMatchObject({ status: 'failed', epochsReported: 1 });

    await b.reopenJob('job-x', { startEpoch: 1 });
    await a.saveEpoch(epoch(1));
    expect(await b.getJob('job-x')).toMatchObject({ status: 'running', epochsReported: 2 });
    await expect(a.saveEpoch({ ...epoch(0), jobId: 'nope' })).rejects.toMatchObject({ kind: 'not_found' });
  });

  it('ends a job once: a second end, from another store, is refused with ended and changes nothing', async () => {
    const a = await openTestStore();
    const b = await openTestStore();
    await a.createOrGetJob(newJob('job-once'));
    const end = (status: 'completed' | 'failed', errorMessage = '') => ({
      jobId: 'job-once',
      status,
      finalMetrics: {},
      errorMessage,
      endedAt: new Date(),
    });
    await a.endJob(end('completed'));
    await expect(b.endJob(end('failed', 'late'))).rejects.toMatchObject({
      kind: 'ended',
      message: expect.stringMatching(/already ended \(completed\)/),
    });
    await expect(a.endJob(end('completed'))).rejects.toMatchObject({ kind: 'ended' });
    expect(await b.getJob('job-once')).toMatchObject({ status: 'completed', errorMessage: '' });
    expect(
      inspect("SELECT count(*) AS n FROM store_change WHERE job_id = ? AND kind = 'job'", 'job-once'),
    ).toEqual([{ n: 2 }]);
  });

  it('ends a job from what the database holds when it ends: best value, losses, last epoch', async () => {
    const a = await openTestStore();
    const b = await openTestStore();
    await a.createOrGetJob(newJob('job-f', { startEpoch: 2 }));
    // Epochs stored through the other store: the ending one never saw them.
    for (const [epoch, accuracy] of [
      [2, 0.5],
      [3, 0.75],
      [4, 0.625],
    ] as const) {
      await b.saveEpoch({
        jobId: 'job-f',
        epoch,
        metrics: { accuracy },
        columns: { accuracy },
        timestamp: new Date(),
        best: { epoch: 3, value: 0.75 },
      });
    }
    const seen: unknown[] = [];
    const ended = await a.endJob({
      jobId: 'job-f',
      status: 'completed',
      finalMetrics: { loss: 0.1 },
      errorMessage: '',
      endedAt: new Date(),
      clientLosses: (stored) => {
        seen.push(stored);
        return { droppedPoints: 1, refusedPoints: 0, failedWrites: 0, reasons: ['full'] };
      },
      outbox: (job) => {
        seen.push(job);
        return [{ kind: 'job_ended', payload: { step: job.lastEpoch } }];
      },
    });
    expect(ended).toMatchObject({
      finalPrimaryValue: 0.75,
      finalAccuracy: 0.75,
      clientLosses: { droppedPoints: 1 },
    });
    expect(seen).toEqual([{ startEpoch: 2, lastEpoch: 4 }, undefined]);
    expect(inspect('SELECT payload FROM outbox_item WHERE job_id = ?', 'job-f')).toEqual([
      { payload: JSON.stringify({ step: 4 }) },
    ]);
    // A resumed job's earlier losses are what the next end adds to.
    await b.reopenJob('job-f', { startEpoch: 5, from: { status: 'completed', endCause: 'reported' } });
    const again = await a.endJob({
      jobId: 'job-f',
      status: 'failed',
      finalMetrics: {},
      finalPrimaryValue: 0.5,
      errorMessage: 'OOM',
      endedAt: new Date(),
      clientLosses: (stored) => stored && { ...stored, droppedPoints: stored.droppedPoints + 2 },
      outbox: (job) => [{ kind: 'job_ended', payload: job }],
    });
    expect(again).toMatchObject({
      finalPrimaryValue: 0.5,
      finalAccuracy: 0.75,
      clientLosses: { droppedPoints: 3 },
    });
    expect(inspect('SELECT payload FROM outbox_item WHERE job_id = ? ORDER BY id', 'job-f').at(-1)).toEqual({
      payload: JSON.stringify({ startEpoch: 5, lastEpoch: 4 }),
    });
  });

  it('refuses batch blocks and artifacts for a job another store ended, inside the write', async () => {
    const a = await openTestStore();
    const b = await openTestStore();
    await a.createOrGetJob(newJob('job-w'));
    const artifact = (path: string) => ({
      artifactPath: path,
      sizeBytes: 1,
      sha256: '0'.repeat(64),
      sourcePath: '/tmp/x',
      storedPath: `/store/${path}`,
      loggedAt: new Date(),
    });
    await a.appendBatchBlocks('job-w', [block(0, ['loss'], 0n, 2)], { outboxKind: 'batch_metrics' });
    await a.putArtifacts('job-w', [artifact('a.txt')], { outbox: [{ kind: 'artifact', payload: {} }] });
    await b.endJob({
      jobId: 'job-w',
      status: 'cancelled',
      finalMetrics: {},
      errorMessage: '',
      endedAt: new Date(),
    });
    await expect(
      a.appendBatchBlocks('job-w', [block(0, ['loss'], 2n, 2)], {
        outboxKind: 'batch_metrics',
        metricSources: { sources: [{ name: 'batch/acc', reported: 'acc%', scale: 0.01 }], item: sourcesItem },
      }),
    ).rejects.toMatchObject({ kind: 'ended', message: expect.stringMatching(/has ended \(cancelled\)/) });
    await expect(a.putArtifacts('job-w', [artifact('b.txt')])).rejects.toMatchObject({ kind: 'ended' });
    expect(inspect('SELECT first_step FROM batch_metric_block WHERE job_id = ?', 'job-w')).toEqual([
      { first_step: 0 },
    ]);
    expect(inspect('SELECT artifact_path FROM artifact WHERE job_id = ?', 'job-w')).toEqual([
      { artifact_path: 'a.txt' },
    ]);
    expect(inspect('SELECT count(*) AS n FROM metric_source WHERE job_id = ?', 'job-w')).toEqual([{ n: 0 }]);
    expect(inspect('SELECT kind FROM outbox_item WHERE job_id = ? ORDER BY id', 'job-w')).toEqual([
      { kind: 'batch_metrics' },
      { kind: 'artifact' },
    ]);
    await expect(a.appendBatchBlocks('nope', [block(0, ['loss'], 0n, 1)])).rejects.toMatchObject({
      kind: 'not_found',
    });
    await expect(a.putArtifacts('nope', [artifact('a.txt')])).rejects.toMatchObject({ kind: 'not_found' });
  });

  it('resumes a job only from the state the caller decided on', async () => {
    const a = await openTestStore();
    const b = await openTestStore();
    await a.createOrGetJob(newJob('job-s'));
    const failed = await a.endJob({
      jobId: 'job-s',
      status: 'failed',
      finalMetrics: {},
      errorMessage: 'x',
      endedAt: new Date(),
    });
    // Both read it failed; b resumes it first, so a's decision (made on "failed") no longer holds.
    await b.reopenJob('job-s', { startEpoch: 3, from: failed });
    await expect(
      a.reopenJob('job-s', { startEpoch: 1, from: failed, outbox: [{ kind: 'job_begun', payload: {} }] }),
    ).rejects.toMatchObject({
      kind: 'conflict',
      message: expect.stringMatching(/changed meanwhile \(failed → running\)/),
    });
    expect(await a.getJob('job-s')).toMatchObject({ status: 'running', startEpoch: 3 });
    expect(inspect('SELECT count(*) AS n FROM outbox_item WHERE job_id = ?', 'job-s')).toEqual([{ n: 0 }]);
    // Decided again on the job as it is now (running), the resume goes through.
    const now = (await a.getJob('job-s'))!;
    expect(await a.reopenJob('job-s', { startEpoch: 1, from: now })).toMatchObject({
      status: 'running',
      startEpoch: 1,
    });
    // A resume decided on "running" does not undo an end that came in between.
    await b.endJob({
      jobId: 'job-s',
      status: 'completed',
      finalMetrics: {},
      errorMessage: '',
      endedAt: new Date(),
    });
    await expect(a.reopenJob('job-s', { startEpoch: 2, from: now })).rejects.toMatchObject({
      kind: 'conflict',
    });
    expect(await b.getJob('job-s')).toMatchObject({ status: 'completed' });
  });

  it('reopens a job: new start epoch and configs, running again, endedAt cleared', async () => {
    let store = await openTestStore();
    await store.createOrGetJob(newJob('job-r'));
    await store.endJob({
      jobId: 'job-r',
      status: 'failed',
      finalMetrics: {},
      errorMessage: 'OOM',
      endedAt: new Date('2026-01-01T00:00:00Z'),
    });
    const reopened = await store.reopenJob('job-r', { startEpoch: 4, params: { lr: '0.0005' } });
    expect(reopened).toMatchObject({ status: 'running', startEpoch: 4, params: { lr: '0.0005' } });
    expect(reopened.endedAt).toBeUndefined();
    expect(reopened.modelConfig).toEqual(newJob('x').modelConfig);
    store = await reopen(store);
    expect(await store.getJob('job-r')).toEqual(reopened);
    await expect(store.reopenJob('nope', { startEpoch: 0 })).rejects.toMatchObject({ kind: 'not_found' });
  });

  it("keeps the client's losses with the ended job; none is no column value", async () => {
    let store = await openTestStore();
    await store.createOrGetJob(newJob('job-l'));
    await store.createOrGetJob(newJob('job-clean'));
    const endedAt = new Date('2026-03-04T05:06:07.089Z');
    const clientLosses = {
      droppedPoints: 800,
      refusedPoints: 2,
      failedWrites: 1,
      reasons: ['batch queue full (500 rows)', 'epoch_end refused: RESOURCE_EXHAUSTED: too large'],
    };
    const base = { status: 'completed', finalMetrics: {}, errorMessage: '', endedAt } as const;
    const ended = await store.endJob({ ...base, jobId: 'job-l', clientLosses });
    expect(ended.clientLosses).toEqual(clientLosses);
    expect((await store.endJob({ ...base, jobId: 'job-clean' })).clientLosses).toBeUndefined();
    store = await reopen(store);
    expect((await store.getJob('job-l'))?.clientLosses).toEqual(clientLosses);
    expect(await store.getJob('job-clean')).not.toHaveProperty('clientLosses');
    const rows = inspect<{ job_id: string; client_losses: string | null }>(
      'select job_id, client_losses from training_job where job_id in (?, ?) order by job_id',
      'job-clean',
      'job-l',
    );
    expect(rows.map((r) => r.client_losses === null)).toEqual([true, false]);
  });

  it('ends a job with final metrics, NaN and ±Infinity included', async () => {
    let store = await openTestStore();
    await store.createOrGetJob(newJob('job-e'));
    const endedAt = new Date('2026-03-04T05:06:07.089Z');
    const ended = await store.endJob({
      jobId: 'job-e',
      status: 'completed',
      finalMetrics: { accuracy: Number.NaN, loss: Infinity, neg: -Infinity, top5: 0.97 },
      finalPrimaryValue: Number.NaN,
      finalAccuracy: Number.NaN,
      errorMessage: '',
      endedAt,
    });
    expect(ended.status).toBe('completed');
    expect(ended.endedAt).toEqual(endedAt);
    expect(ended.finalMetrics).toEqual({ accuracy: Number.NaN, loss: Infinity, neg: -Infinity, top5: 0.97 });
    expect(ended.finalPrimaryValue).toBeNaN();
    expect(ended.finalAccuracy).toBeNaN();
    store = await reopen(store);
    const read = await store.getJob('job-e');
    expect(read).toEqual(ended);
    const [row] = inspect<{ final_metrics: string; final_primary_value: number | null }>(
      'select final_metrics, final_primary_value from training_job where job_id = ?',
      'job-e',
    );
    expect(JSON.parse(row!.final_metrics)).toEqual({
      accuracy: 'NaN',
      loss: 'Infinity',
      neg: '-Infinity',
      top5: 0.97,
    });
    expect(row!.final_primary_value).toBeNull();

    await store.createOrGetJob(newJob('job-e2'));
    const finite = await store.endJob({
      jobId: 'job-e2',
      status: 'cancelled',
      finalMetrics: { accuracy: 0.5 },
      finalPrimaryValue: 0.5,
      finalAccuracy: 0.5,
      errorMessage: 'stopped',
      endedAt,
    });
    expect(finite).toMatchObject({ status: 'cancelled', finalPrimaryValue: 0.5, finalAccuracy: 0.5 });
    await expect(
      store.endJob({ jobId: 'nope', status: 'failed', finalMetrics: {}, errorMessage: '', endedAt }),
    ).rejects.toMatchObject({ kind: 'not_found' });
  });

  it('sets the MLflow ids', async () => {
    let store = await openTestStore();
    await store.createOrGetJob(newJob('job-m'));
    await store.setMlflowIds('job-m', '12', 'abc123');
    store = await reopen(store);
    expect(await store.getJob('job-m')).toMatchObject({ mlflowExperimentId: '12', mlflowRunId: 'abc123' });
    await expect(store.setMlflowIds('nope', '1', '2')).rejects.toBeInstanceOf(StoreError);
  });

  it('lists jobs newest first, filtered, in pages with a keyset cursor', async () => {
    const store = await openTestStore();
    // Many jobs share a millisecond: the jobId tiebreak must keep paging exact.
    for (let i = 0; i < 25; i++) {
      const id = `job-${String(i).padStart(2, '0')}`;
      await store.createOrGetJob(
        newJob(id, { task: i % 2 === 0 ? 'object_detection' : 'image_classification' }),
      );
      if (i % 3 === 0) {
        await store.endJob({
          jobId: id,
          status: 'completed',
          finalMetrics: {},
          errorMessage: '',
          endedAt: new Date(),
        });
      }
    }
    const all = (await store.listJobs({ limit: 100 })).jobs;
    expect(all).toHaveLength(25);
    for (let i = 1; i < all.length; i++) {
      const [a, b] = [all[i - 1]!, all[i]!];
      const ordered =
        a.createdAt.getTime() > b.createdAt.getTime() ||
        (a.createdAt.getTime() === b.createdAt.getTime() && a.jobId > b.jobId);
      expect(ordered).toBe(true);
    }

    const paged: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await store.listJobs({ limit: 4, ...(cursor ? { cursor } : {}) });
      expect(page.jobs.length).toBeLessThanOrEqual(4);
      paged.push(...page.jobs.map((j) => j.jobId));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(7);
    expect(paged).toEqual(all.map((j) => j.jobId));

    const completed = await store.listJobs({ status: 'completed', limit: 100 });
    expect(completed.jobs.map((j) => j.jobId).sort()).toEqual(
      ['job-00', 'job-03', 'job-06', 'job-09', 'job-12', 'job-15', 'job-18', 'job-21', 'job-24'].sort(),
    );
    const detectionRunning = await store.listJobs({ status: 'running', task: 'object_detection', limit: 2 });
    expect(detectionRunning.jobs).toHaveLength(2);
    expect(detectionRunning.jobs.every((j) => j.status === 'running' && j.task === 'object_detection')).toBe(
      true,
    );
    expect(detectionRunning.nextCursor).toBeDefined();
    const exact = await store.listJobs({ status: 'completed', limit: 9 });
    expect(exact.nextCursor).toBeUndefined();

    await expect(store.listJobs({ limit: 3, cursor: 'not-a-cursor' })).rejects.toMatchObject({
      kind: 'invalid_argument',
    });
  });
});

describe('epochs', () => {
  it('stores an epoch, replaces it on re-report and counts distinct epochs', async () => {
    let store = await openTestStore();
    await store.createOrGetJob(newJob('job-ep'));
    const t0 = new Date('2026-05-01T10:00:00.123Z');
    await store.saveEpoch({
      jobId: 'job-ep',
      epoch: 0,
      metrics: { loss: 0.9, accuracy: 0.4, learning_rate: 0.01, ece: 0.2 },
      columns: { loss: 0.9, accuracy: 0.4, learningRate: 0.01 },
      timestamp: t0,
      best: { epoch: 0, value: 0.4 },
    });
    await store.saveEpoch({
      jobId: 'job-ep',
      epoch: 1,
      metrics: { loss: 0.7, accuracy: 0.6 },
      columns: { loss: 0.7, accuracy: 0.6 },
      timestamp: t0,
      best: { epoch: 1, value: 0.6 },
    });
    // Re-report epoch 1: replaces it.
    await store.saveEpoch({
      jobId: 'job-ep',
      epoch: 1,
      metrics: { loss: 0.65, accuracy: 0.55 },
      columns: { loss: 0.65, accuracy: 0.55 },
      timestamp: new Date('2026-05-01T11:00:00Z'),
      best: { epoch: 0, value: 0.4 },
    });

    store = await reopen(store);
    const epochs = await store.listEpochs('job-ep');
    expect(epochs).toEqual([
      {
        jobId: 'job-ep',
        epoch: 0,
        metrics: { loss: 0.9, accuracy: 0.4, learning_rate: 0.01, ece: 0.2 },
        nonFinite: [],
        loss: 0.9,
        accuracy: 0.4,
        learningRate: 0.01,
        timestamp: t0,
      },
      {
        jobId: 'job-ep',
        epoch: 1,
        metrics: { loss: 0.65, accuracy: 0.55 },
        nonFinite: [],
        loss: 0.65,
        accuracy: 0.55,
        timestamp: new Date('2026-05-01T11:00:00Z'),
      },
    ]);
    expect(inspect('select * from training_metric where job_id = ?', 'job-ep')).toHaveLength(2);
    const job = await store.getJob('job-ep');
    expect(job).toMatchObject({ epochsReported: 2, bestEpoch: 0, bestValue: 0.4 });
    expect(job!.updatedAt.getTime()).toBeGreaterThanOrEqual(job!.createdAt.getTime());

    await store.saveEpoch({
      jobId: 'job-ep',
      epoch: 2,
      metrics: { accuracy: Number.NaN },
      columns: { accuracy: Number.NaN },
      timestamp: t0,
      best: null,
    });
    const cleared = await store.getJob('job-ep');
    expect(cleared).toMatchObject({ epochsReported: 3 });
    expect(cleared!.bestEpoch).toBeUndefined();
    expect(cleared!.bestValue).toBeUndefined();
  });

  it('keeps NaN and ±Infinity in the JSON and flags them, with NULL in the columns', async () => {
    let store = await openTestStore();
    await store.createOrGetJob(newJob('job-nan'));
    const metrics = { loss: Number.NaN, accuracy: Infinity, learning_rate: -Infinity, ece: 0.1 };
    await store.saveEpoch({
      jobId: 'job-nan',
      epoch: 3,
      metrics,
      columns: { loss: metrics.loss, accuracy: metrics.accuracy, learningRate: metrics.learning_rate },
      timestamp: new Date(),
      best: null,
    });
    store = await reopen(store);
    const [epoch] = await store.listEpochs('job-nan');
    expect(epoch!.metrics).toEqual(metrics);
    expect(epoch!.nonFinite).toEqual(['accuracy', 'learning_rate', 'loss']);
    expect(epoch!.loss).toBeUndefined();
    expect(epoch!.accuracy).toBeUndefined();
    expect(epoch!.learningRate).toBeUndefined();

    const [row] = inspect<Record<string, unknown>>(
      'select * from training_metric where job_id = ?',
      'job-nan',
    );
    expect(row).toMatchObject({ loss: null, accuracy: null, learning_rate: null });
    expect(JSON.parse(row!.extra_metrics as string)).toEqual({
      loss: 'NaN',
      accuracy: 'Infinity',
      learning_rate: '-Infinity',
      ece: 0.1,
    });
    expect(JSON.parse(row!.non_finite as string)).toEqual(['accuracy', 'learning_rate', 'loss']);
  });

  it('records when an epoch began, before or after its metrics, without listing begun-only epochs', async () => {
    let store = await openTestStore();
    await store.createOrGetJob(newJob('job-b'));
    const began = new Date('2026-02-02T02:02:02.002Z');
    await store.beginEpoch('job-b', 0, began);
    await store.beginEpoch('job-b', 0, began); // retried BeginEpoch
    expect(await store.listEpochs('job-b')).toEqual([]);
    await store.saveEpoch({
      jobId: 'job-b',
      epoch: 0,
      metrics: { loss: 1 },
      columns: { loss: 1 },
      timestamp: new Date('2026-02-02T03:00:00Z'),
      best: null,
    });
    await store.beginEpoch('job-b', 1, began); // begun, not reported yet
    expect((await store.getJob('job-b'))?.epochsReported).toBe(1);

    // An epoch run again after a resume: the new begin time, the metrics kept.
    const rebegan = new Date('2026-02-03T00:00:00Z');
    await store.beginEpoch('job-b', 0, rebegan);
    store = await reopen(store);
    const epochs = await store.listEpochs('job-b');
    expect(epochs).toHaveLength(1);
    expect(epochs[0]).toMatchObject({ epoch: 0, metrics: { loss: 1 }, beganAt: rebegan });
    await store.saveEpoch({
      jobId: 'job-b',
      epoch: 1,
      metrics: { loss: 0.5 },
      columns: { loss: 0.5 },
      timestamp: new Date(),
      best: null,
    });
    const both = await store.listEpochs('job-b');
    expect(both.map((e) => [e.epoch, e.beganAt])).toEqual([
      [0, rebegan],
      [1, began],
    ]);
    expect((await store.getJob('job-b'))?.epochsReported).toBe(2);
  });

  it('refuses epochs of an unknown job with not_found and writes nothing', async () => {
    const store = await openTestStore();
    const saving = store.saveEpoch({
      jobId: 'ghost',
      epoch: 0,
      metrics: { loss: 1 },
      columns: {},
      timestamp: new Date(),
      best: null,
    });
    await expect(saving).rejects.toBeInstanceOf(StoreError);
    await expect(saving).rejects.toMatchObject({ kind: 'not_found' });
    await expect(store.beginEpoch('ghost', 0, new Date())).rejects.toMatchObject({ kind: 'not_found' });
    expect(inspect('select * from training_metric')).toEqual([]);
  });
});

describe('batch blocks', () => {
  it('round-trips blocks bit for bit, in step order, per epoch', async () => {
    let store = await openTestStore();
    await store.createOrGetJob(newJob('job-bb'));
    const names = ['loss', 'lr'];
    const special = block(1, names, 2n ** 60n, 3);
    const bits = new BigUint64Array(special.values.buffer);
    bits[0] = 0x7ff8_0000_0000_beefn; // NaN with a payload
    special.values[1] = Infinity;
    special.values[2] = -Infinity;
    special.values[3] = -0;
    const later = block(0, names, 100n, 50);
    const earlier = block(0, names, 0n, 100);
    await store.appendBatchBlocks('job-bb', [later, special]);
    await store.appendBatchBlocks('job-bb', [earlier, block(0, [], 5n, 0)]);

    store = await reopen(store);
    const all = await store.listBatchBlocks('job-bb');
    expect(all.map((b) => b.steps[0])).toEqual([0n, 100n, 2n ** 60n]);
    expect(all[0]).toMatchObject(earlier);
    expect(all[1]).toMatchObject(later);
    expect(all[2]!.steps).toEqual(special.steps);
    expect(bitsOf(all[2]!.values)).toEqual(bitsOf(special.values));
    expect(all[2]!.names).toEqual(names);

    const epoch1 = await store.listBatchBlocks('job-bb', 1);
    expect(epoch1).toHaveLength(1);
    expect(await store.listBatchBlocks('job-bb', 7)).toEqual([]);

    const types = inspect<{ t: string }>('select distinct typeof(first_step) as t from batch_metric_block');
    expect(types).toEqual([{ t: 'integer' }]);
  });

  it('reads the blocks overlapping a step range in id order, big blocks in place, bit for bit', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('job-rb'));
    const names = ['loss', 'lr'];
    // A block of 4 000 rows (its blobs are their own buffers: viewed), then small ones (copied or viewed).
    const big = block(0, names, 0n, 4000);
    big.values[1] = Number.NaN;
    const small = [block(0, names, 4000n, 3), block(1, names, 5000n, 2), block(1, ['loss'], 6000n, 1)];
    await store.appendBatchBlocks('job-rb', [big, ...small]);
    const all = await store.readBatchBlocks('job-rb', { afterId: 0, limit: 10 });
    expect(all.map((b) => b.steps[0])).toEqual([0n, 4000n, 5000n, 6000n]);
    expect(all[0]!.steps).toEqual(big.steps);
    expect(bitsOf(all[0]!.values)).toEqual(bitsOf(big.values));
    all.slice(1).forEach((b, i) => {
      expect(b).toMatchObject(small[i]!);
    });
    const ranged = await store.readBatchBlocks('job-rb', {
      afterId: 0,
      limit: 10,
      minStep: 4002n,
      maxStep: 5000n,
    });
    expect(ranged.map((b) => b.steps[0])).toEqual([4000n, 5000n]);
    const paged = await store.readBatchBlocks('job-rb', { afterId: all[1]!.id, limit: 1 });
    expect(paged.map((b) => b.id)).toEqual([all[2]!.id]);
  });

  it('replaces a resent block instead of duplicating it', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('job-rs'));
    const names = ['loss'];
    await store.appendBatchBlocks('job-rs', [block(0, names, 0n, 10, 0), block(0, ['acc'], 0n, 10, 0)]);
    await store.appendBatchBlocks('job-rs', [block(0, names, 0n, 12, 1000)]);
    const blocks = await store.listBatchBlocks('job-rs', 0);
    expect(blocks).toHaveLength(2);
    const loss = blocks.find((b) => b.names[0] === 'loss')!;
    expect(loss.steps).toHaveLength(12);
    expect(loss.values[0]).toBe(1000);
    expect(inspect('select * from batch_metric_block')).toHaveLength(2);
  });

  it('stores a point once when it is resent in blocks cut differently', async () => {
    let store = await openTestStore();
    await store.createOrGetJob(newJob('job-cut'));
    const names = ['loss', 'lr'];
    await store.appendBatchBlocks('job-cut', [block(0, names, 0n, 100)], { receivedAtMs: 1000 });
    // The same points again (values seed + row), cut at 30 and 70, and 50 new steps after them.
    const again = [block(0, names, 0n, 30, 0), block(0, names, 30n, 70, 30), block(0, names, 100n, 50, 100)];
    const result = await store.appendBatchBlocks('job-cut', again, { receivedAtMs: 2000 });
    expect(result).toEqual({ unchangedPoints: 200, replacedPoints: 0 });
    store = await reopen(store);
    const blocks = await store.listBatchBlocks('job-cut');
    const points = blocks.flatMap((b) =>
      [...b.steps].flatMap((step, row) =>
        b.names.map((n, c) => `${step}/${n}=${b.values[row * b.names.length + c]}`),
      ),
    );
    expect(points).toHaveLength(150 * 2);
    expect(new Set(points).size).toBe(points.length);
    expect(points).toContain('42/lr=42.1');
    expect(points).toContain('149/loss=149');
    // The unchanged points stay as first stored, with their first receipt time.
    expect(
      inspect('select first_step, last_step, received_at_ms from batch_metric_block order by id'),
    ).toEqual([
      { first_step: 0, last_step: 99, received_at_ms: 1000 },
      { first_step: 100, last_step: 149, received_at_ms: 2000 },
    ]);
  });

  it('keeps the last value of a point sent again with another value, and cuts the old block around it', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('job-lww'));
    await store.appendBatchBlocks('job-lww', [block(0, ['loss', 'lr'], 0n, 10)], {
      outboxKind: 'batch_metrics',
      receivedAtMs: 1000,
    });
    // Steps 4..5 of `loss` only, new values; inside the call step 5 comes twice: the last one wins.
    const changed: BatchBlock = {
      epoch: 0,
      names: ['loss'],
      steps: BigInt64Array.from([4n, 5n, 5n]),
      values: Float64Array.from([-4, -50, -5]),
    };
    const result = await store.appendBatchBlocks('job-lww', [changed], {
      outboxKind: 'batch_metrics',
      receivedAtMs: 2000,
    });
    expect(result).toEqual({ unchangedPoints: 0, replacedPoints: 2 });
    const value = new Map<string, number>();
    const seen: string[] = [];
    for (const b of await store.listBatchBlocks('job-lww')) {
      b.steps.forEach((step, row) => {
        b.names.forEach((n, c) => {
          seen.push(`${step}/${n}`);
          value.set(`${step}/${n}`, b.values[row * b.names.length + c]!);
        });
      });
    }
    expect(seen).toHaveLength(20);
    expect(new Set(seen).size).toBe(20);
    expect(value.get('4/loss')).toBe(-4);
    expect(value.get('5/loss')).toBe(-5);
    expect(value.get('4/lr')).toBe(4.1);
    expect(value.get('6/loss')).toBe(6);
    // The old block's pending outbox entry still sends what remains of it (the cut pieces have
    // entries of their own, with the old receipt time); the new values have theirs.
    const items = await store.peekOutbox('job-lww', 100);
    const sent = items.flatMap((i) => {
      const b = i.block!;
      return [...b.steps].flatMap((step, row) =>
        b.names.map((n, c) => `${step}/${n}=${b.values[row * b.names.length + c]}@${b.receivedAtMs}`),
      );
    });
    expect(sent).toHaveLength(20);
    expect(sent).toContain('4/loss=-4@2000');
    expect(sent).toContain('4/lr=4.1@1000');
    expect(sent).toContain('9/loss=9@1000');
    expect(sent.filter((p) => p.startsWith('5/loss='))).toEqual(['5/loss=-5@2000']);
  });

  it('deletes a stored block whose every point was replaced, and its pending outbox entry', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('job-del'));
    await store.appendBatchBlocks('job-del', [block(0, ['loss'], 0n, 3)], { outboxKind: 'batch_metrics' });
    await store.appendBatchBlocks('job-del', [block(1, ['loss'], 0n, 3)], { outboxKind: 'batch_metrics' });
    const blocks = await store.listBatchBlocks('job-del');
    expect(blocks.map((b) => b.epoch)).toEqual([1]);
    const items = await store.peekOutbox('job-del', 100);
    expect(items.map((i) => i.block?.epoch)).toEqual([1]);
  });

  it('records each metric source once per job, whichever store saw it first, and hands them to a re-mirror', async () => {
    const a = await openTestStore();
    const b = await openTestStore();
    await a.createOrGetJob(newJob('job-ms'));
    await a.createOrGetJob(newJob('job-other'));
    const percent = { name: 'batch/accuracy', reported: 'acc%', scale: 0.01 };
    const renamed = { name: 'batch/learning_rate', reported: 'lr/pg0', scale: 1 };
    const write = (store: Store, jobId: string, step: bigint, sources: MetricSourceRecord[]) =>
      store.appendBatchBlocks(jobId, [block(0, ['loss'], step, 1)], {
        outboxKind: 'batch_metrics',
        metricSources: { sources, item: sourcesItem },
      });
    await write(a, 'job-ms', 0n, [percent]);
    // B never saw A's: the database knows percent is recorded, only the rename is new.
    await write(b, 'job-ms', 1n, [percent, renamed]);
    await write(a, 'job-ms', 2n, [renamed, percent]);
    // Per job: the same source of another job is that job's own.
    await write(b, 'job-other', 0n, [percent]);
    const items = (await a.peekOutbox('job-ms', 100)).map((i) => [i.kind, i.payload]);
    expect(items).toEqual([
      ['metric_sources', { added: [percent] }],
      ['batch_metrics', null],
      ['metric_sources', { added: [renamed] }],
      ['batch_metrics', null],
      ['batch_metrics', null],
    ]);
    expect((await a.peekOutbox('job-other', 100)).map((i) => i.kind)).toEqual([
      'metric_sources',
      'batch_metrics',
    ]);
    const copied: MetricSourceRecord[][] = [];
    await b.replaceOutbox(
      'job-ms',
      ({ metricSources }) => {
        copied.push(metricSources);
        return { before: [], blockKind: 'batch_metrics', after: [] };
      },
      1,
    );
    expect(copied).toEqual([[percent, renamed]]);
  });

  it('pages blocks, epochs in keyset order', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('job-pg'));
    await store.appendBatchBlocks('job-pg', [
      block(0, ['loss'], 0n, 5),
      block(0, ['lr'], 0n, 5),
      block(1, ['loss'], 5n, 5),
    ]);
    const all = await store.listBatchBlocks('job-pg');
    expect(all.map((b) => [b.firstStep, b.names[0]])).toEqual([
      [0n, 'loss'],
      [0n, 'lr'],
      [5n, 'loss'],
    ]);
    // From a block on (included: a page may have ended inside it), at most two.
    const page = await store.listBatchBlocks('job-pg', undefined, {
      after: { firstStep: 0n, id: all[1]!.id },
      limit: 2,
    });
    expect(page.map((b) => b.id)).toEqual([all[1]!.id, all[2]!.id]);
    expect((await store.listBatchBlocks('job-pg', 1, { limit: 5 })).map((b) => b.id)).toEqual([all[2]!.id]);
    for (let e = 0; e < 5; e++) {
      await store.saveEpoch({
        jobId: 'job-pg',
        epoch: e,
        metrics: { loss: e },
        columns: {},
        timestamp: new Date(),
        best: null,
      });
    }
    expect((await store.listEpochs('job-pg', { afterEpoch: 1, limit: 2 })).map((e) => e.epoch)).toEqual([
      2, 3,
    ]);
  });

  it('refuses malformed blocks and unknown jobs', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('job-x'));
    const bad: BatchBlock = {
      epoch: 0,
      names: ['a', 'b'],
      steps: BigInt64Array.from([1n]),
      values: Float64Array.from([1]),
    };
    await expect(store.appendBatchBlocks('job-x', [bad])).rejects.toThrow(RangeError);
    await expect(store.appendBatchBlocks('ghost', [block(0, ['a'], 0n, 2)])).rejects.toMatchObject({
      kind: 'not_found',
    });
    expect(inspect('select * from batch_metric_block')).toEqual([]);
  });

  it('stores many blocks in one call (more rows than one INSERT carries)', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('job-many'));
    const blocks = Array.from({ length: 1200 }, (_, i) => block(0, ['loss'], BigInt(i * 4), 4, i));
    await store.appendBatchBlocks('job-many', blocks);
    const read = await store.listBatchBlocks('job-many');
    expect(read).toHaveLength(1200);
    expect(read[1199]).toMatchObject(blocks[1199]!);
  });
});

describe('concurrency', () => {
  it('serialises concurrent calls on the one connection without mixing transactions', async () => {
    const store = await openTestStore();
    await Promise.all(Array.from({ length: 8 }, (_, j) => store.createOrGetJob(newJob(`job-c${j}`))));
    const calls: Promise<unknown>[] = [];
    for (let j = 0; j < 8; j++) {
      const jobId = `job-c${j}`;
      calls.push(store.createOrGetJob(newJob(jobId)));
      for (let e = 0; e < 20; e++) {
        calls.push(store.beginEpoch(jobId, e, new Date()));
        calls.push(
          store.saveEpoch({
            jobId,
            epoch: e,
            metrics: { loss: e },
            columns: { loss: e },
            timestamp: new Date(),
            best: null,
          }),
        );
        calls.push(store.appendBatchBlocks(jobId, [block(e, ['loss'], BigInt(e * 10), 10)]));
        calls.push(store.getJob(jobId));
      }
      calls.push(
        store
          .saveEpoch({
            jobId: 'ghost',
            epoch: 0,
            metrics: {},
            columns: {},
            timestamp: new Date(),
            best: null,
          })
          .catch((e) => e),
      );
    }
    await Promise.all(calls);
    for (let j = 0; j < 8; j++) {
      expect((await store.getJob(`job-c${j}`))?.epochsReported).toBe(20);
      expect(await store.listBatchBlocks(`job-c${j}`)).toHaveLength(20);
    }
  });
});

/**
 * A store in a process of its own on the test's file (another sidecar): runs `ops` once the parent
 * writes a line to its stdin (so several start together), and prints each op's outcome as JSON.
 */
function storeProcess(ops: string): { go(): void; done: Promise<Array<{ ok: boolean; kind?: string }>> } {
  const script = `
    import { openStore } from ${JSON.stringify(join(import.meta.dirname, 'index.ts'))};
    const store = await openStore({ dbPath: ${JSON.stringify(dbPath)} });
    const outcomes = [];
    const run = async (op) => {
      try { await op(); outcomes.push({ ok: true }); }
      catch (error) { outcomes.push({ ok: false, kind: error.kind ?? String(error) }); }
    };
    const block = (step) => ({ epoch: 0, names: ['loss'], steps: BigInt64Array.from([BigInt(step)]),
      values: Float64Array.from([step]) });
    const end = (status) => store.endJob({ jobId: 'job-race', status, finalMetrics: {}, errorMessage: status,
      endedAt: new Date() });
    process.stdout.write('ready\\n');
    await new Promise((resolve) => process.stdin.once('data', resolve));
    ${ops}
    await store.close();
    process.stdout.write(JSON.stringify(outcomes) + '\\n');
    process.exit(0);
  `;
  // A file, not --eval: the store's integrity-check worker inherits the process's flags.
  const file = join(dir, `store-process-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, script);
  const child = spawn(process.execPath, ['--conditions=@training-callbacks/source', file], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  let onReady: () => void;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.startsWith('ready\n')) onReady();
  });
  const done = new Promise<Array<{ ok: boolean; kind?: string }>>((resolve, reject) => {
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.split('\n')[1]!)) : reject(new Error(`exit ${code}: ${out}`)),
    );
  });
  return { go: () => void ready.then(() => child.stdin.end('go\n')), done };
}

describe('stores in several processes on one file (sidecars sharing a database)', () => {
  it('ends a job once when several processes end it at the same moment', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('job-race'));
    const outcomes = ['completed', 'failed', 'cancelled'] as const;
    const children = outcomes.map((status) => storeProcess(`await run(() => end('${status}'));`));
    for (const child of children) child.go();
    const results = (await Promise.all(children.map((c) => c.done))).map(([r]) => r!);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok).map((r) => r.kind)).toEqual(['ended', 'ended']);
    const winner = outcomes[results.findIndex((r) => r.ok)];
    expect(await store.getJob('job-race')).toMatchObject({ status: winner, errorMessage: winner });
    expect(
      inspect("SELECT count(*) AS n FROM store_change WHERE job_id = 'job-race' AND kind = 'job'"),
    ).toEqual([{ n: 2 }]);
  }, 60_000);

  it('stores no batch block after the end another process committed; every refused one is gone', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('job-race'));
    // Writes until twenty have been refused (the end lands while it writes).
    const writer = storeProcess(`
      for (let step = 0; step < 3000 && outcomes.filter((o) => !o.ok).length < 20; step++)
        await run(() => store.appendBatchBlocks('job-race', [block(step)]));`);
    // Ends the job once the writer has stored ten blocks.
    const ender = storeProcess(`
      while ((await store.listBatchBlocks('job-race', undefined, { limit: 10 })).length < 10)
        await new Promise((resolve) => setTimeout(resolve, 2));
      await run(() => end('completed'));`);
    writer.go();
    ender.go();
    const [writes, [ended]] = await Promise.all([writer.done, ender.done]);
    expect(ended).toEqual({ ok: true });
    // The writes stored before the end, then only refusals: none interleaved after the end.
    const stored = writes.findIndex((w) => !w.ok);
    expect(stored).toBeGreaterThanOrEqual(10);
    expect(writes.slice(stored).every((w) => !w.ok && w.kind === 'ended')).toBe(true);
    expect(inspect("SELECT count(*) AS n FROM batch_metric_block WHERE job_id = 'job-race'")).toEqual([
      { n: stored },
    ]);
    const [end] = inspect<{ seq: number }>(
      "SELECT max(seq) AS seq FROM store_change WHERE job_id = 'job-race' AND kind = 'job'",
    );
    expect(
      inspect(
        "SELECT count(*) AS n FROM store_change WHERE job_id = 'job-race' AND kind = 'batch' AND seq > ?",
        end!.seq,
      ),
    ).toEqual([{ n: 0 }]);
  }, 60_000);
});

describe('outbox claims', () => {
  const item = (n: number) => ({ kind: 'epoch_metrics', payload: { epoch: n, metrics: { loss: n } } });
  const terms = (owner: string, nowMs: number, leaseMs = 1000) => ({ owner, nowMs, leaseMs });

  /** Jobs with one due entry each (due at 1000), in two stores on one file: two sidecars. */
  async function twoSidecars(jobIds: readonly string[]): Promise<[Store, Store]> {
    const first = await openTestStore();
    const second = await openTestStore();
    for (const jobId of jobIds) {
      await first.createOrGetJob(newJob(jobId));
      await first.enqueueOutbox(jobId, [item(0), item(1)], 1000);
    }
    return [first, second];
  }

  it('gives each job to one store of two on one file, also when both claim at once', async () => {
    const jobs = Array.from({ length: 12 }, (_, i) => `c${i}`);
    const [a, b] = await twoSidecars(jobs);
    const [byA, byB] = await Promise.all([
      a.claimOutboxJobs(terms('A', 2000), 8),
      b.claimOutboxJobs(terms('B', 2000), 8),
    ]);
    expect(byA.filter((job) => byB.includes(job))).toEqual([]);
    expect(byA.length + byB.length).toBe(12);
    // What either holds, the other cannot claim while the claim lives; claiming its own again renews it.
    expect((await b.claimOutboxJobs(terms('B', 2500), 100)).sort()).toEqual([...byB].sort());
    expect((await a.claimOutboxJobs(terms('A', 2500), 100)).sort()).toEqual([...byA].sort());
    expect(inspect<{ n: number }>('select count(*) n from outbox_claim')[0]!.n).toBe(12);
  });

  it('lets another store take over a job whose claim ran out, and the first then holds nothing', async () => {
    const [a, b] = await twoSidecars(['t']);
    expect(await a.claimOutboxJobs(terms('A', 2000, 500), 10)).toEqual(['t']);
    // Renewed before it ran out: still A's.
    expect(await a.renewOutboxClaims(terms('A', 2400, 500), ['t'])).toEqual(['t']);
    expect(await b.claimOutboxJobs(terms('B', 2899), 10)).toEqual([]);
    // A stopped renewing (killed mid-send): B takes the job when the lease runs out.
    expect(await b.claimOutboxJobs(terms('B', 2900), 10)).toEqual(['t']);
    expect(await a.renewOutboxClaims(terms('A', 2950, 500), ['t'])).toEqual([]);
    expect(await a.claimOutboxJobs(terms('A', 2950), 10)).toEqual([]);
    expect(inspect('select job_id, claimed_by, claim_expires_at_ms from outbox_claim')).toEqual([
      { job_id: 't', claimed_by: 'B', claim_expires_at_ms: 3900 },
    ]);
  });

  it('hands a released job over at once; releasing everyone’s claims clears the table', async () => {
    const [a, b] = await twoSidecars(['r1', 'r2']);
    expect((await a.claimOutboxJobs(terms('A', 2000), 10)).sort()).toEqual(['r1', 'r2']);
    await b.releaseOutboxClaims('B'); // not B's: nothing changes
    await a.releaseOutboxClaims('A', ['r1']);
    expect(await b.claimOutboxJobs(terms('B', 2001), 10)).toEqual(['r1']);
    await b.releaseOutboxClaims(undefined);
    expect(inspect<{ n: number }>('select count(*) n from outbox_claim')[0]!.n).toBe(0);
  });

  it('gives up only the claims of jobs with nothing left to send', async () => {
    const [a] = await twoSidecars(['empty', 'parked', 'waiting']);
    expect((await a.claimOutboxJobs(terms('A', 2000), 10)).sort()).toEqual(['empty', 'parked', 'waiting']);
    await a.completeOutbox((await a.peekOutbox('empty', 10)).map((i) => i.id));
    const [parked] = await a.peekOutbox('parked', 1);
    await a.parkOutboxItem(parked!.id, 'bad request');
    const [waiting] = await a.peekOutbox('waiting', 1);
    await a.rescheduleOutboxItem(waiting!.id, { attempts: 1, nextAttemptAtMs: 9000, lastError: 'x' });
    expect((await a.releaseIdleOutboxClaims('B', ['empty', 'parked', 'waiting'])).sort()).toEqual([]);
    expect((await a.releaseIdleOutboxClaims('A', ['empty', 'parked', 'waiting'])).sort()).toEqual([
      'empty',
      'parked',
    ]);
    expect(inspect('select job_id, claimed_by from outbox_claim')).toEqual([
      { job_id: 'waiting', claimed_by: 'A' },
    ]);
  });

  it('claims due jobs only, and leaves other owners’ jobs out of the next due time', async () => {
    const [a, b] = await twoSidecars(['due', 'later', 'parked']);
    const [later] = await a.peekOutbox('later', 1);
    await a.rescheduleOutboxItem(later!.id, { attempts: 1, nextAttemptAtMs: 5000, lastError: 'x' });
    const [parked] = await a.peekOutbox('parked', 1);
    await a.parkOutboxItem(parked!.id, 'bad request');
    expect(await a.claimOutboxJobs(terms('A', 2000), 10)).toEqual(['due']);
    expect(await b.outboxNextDueAtMs({ owner: 'B', nowMs: 2000 })).toBe(5000);
    expect(await a.outboxNextDueAtMs({ owner: 'A', nowMs: 2000 })).toBe(1000);
    expect(await b.outboxNextDueAtMs()).toBe(1000);
    // Once A's claim ran out, the job is B's to take again.
    expect(await b.outboxNextDueAtMs({ owner: 'B', nowMs: 3000 })).toBe(1000);
  });

  it('never gives a job to two owners while three stores claim, renew and release in rounds', async () => {
    const jobs = Array.from({ length: 20 }, (_, i) => `j${i}`);
    const [a, b] = await twoSidecars(jobs);
    const stores = [a, b, await openTestStore()];
    for (let round = 0; round < 10; round++) {
      const nowMs = 2000 + round * 300; // leases of 1000: some run out between rounds
      const held = await Promise.all(
        stores.map((store, i) => store.claimOutboxJobs(terms(`S${i}`, nowMs), 7)),
      );
      const all = held.flat();
      expect(new Set(all).size).toBe(all.length);
      // The database agrees: each job claimed this round is its claimer's until the lease ends.
      const owners = new Map(
        inspect<{ job_id: string; claimed_by: string }>(
          'select job_id, claimed_by from outbox_claim where claim_expires_at_ms > ?',
          nowMs,
        ).map((row) => [row.job_id, row.claimed_by]),
      );
      held.forEach((mine, i) => {
        for (const job of mine) expect(owners.get(job)).toBe(`S${i}`);
      });
      // Each gives back half of what it holds, as a sidecar whose job's outbox ran empty.
      await Promise.all(
        stores.map((store, i) =>
          store.releaseOutboxClaims(
            `S${i}`,
            held[i]!.filter((_, k) => k % 2 === 1),
          ),
        ),
      );
    }
  });
});

describe('artifacts', () => {
  it('upserts by artifact path and lists them', async () => {
    let store = await openTestStore();
    await store.createOrGetJob(newJob('job-a'));
    const loggedAt = new Date('2026-06-01T00:00:00.001Z');
    const best = {
      artifactPath: 'checkpoints/best.pt',
      sizeBytes: 5_000_000_000,
      sha256: 'a'.repeat(64),
      sourcePath: '/shared/run/best.pt',
      storedPath: '/data/artifacts/job-a/checkpoints/best.pt',
      loggedAt,
    };
    const config = { ...best, artifactPath: 'config.yaml', sizeBytes: 120, sourcePath: '' };
    await store.putArtifacts('job-a', [best, config]);
    const newer = { ...best, sizeBytes: 6, sha256: 'b'.repeat(64) };
    await store.putArtifacts('job-a', [newer]);
    store = await reopen(store);
    expect(await store.listArtifacts('job-a')).toMatchObject([newer, config]);
    // Logging order, not path order; a path logged again keeps its place.
    const early = { ...best, artifactPath: 'a-first-by-name.txt' };
    await store.putArtifacts('job-a', [early]);
    await store.putArtifacts('job-a', [{ ...config, sizeBytes: 7 }]);
    const listed = await store.listArtifacts('job-a');
    expect(listed.map((a) => a.artifactPath)).toEqual([
      'checkpoints/best.pt',
      'config.yaml',
      'a-first-by-name.txt',
    ]);
    expect(listed[1]!.sizeBytes).toBe(7);
    const page = await store.listArtifacts('job-a', { afterId: listed[0]!.id, limit: 1 });
    expect(page.map((a) => a.artifactPath)).toEqual(['config.yaml']);
    // One artifact by its path (the download route's lookup), of this job only.
    expect(await store.listArtifacts('job-a', { artifactPath: 'config.yaml' })).toMatchObject([
      { artifactPath: 'config.yaml', sizeBytes: 7, id: listed[1]!.id },
    ]);
    expect(await store.listArtifacts('job-a', { artifactPath: 'checkpoints' })).toEqual([]);
    expect(await store.listArtifacts('other')).toEqual([]);
    await expect(store.putArtifacts('ghost', [best])).rejects.toMatchObject({ kind: 'not_found' });
  });
});

describe('outbox', () => {
  const item = (n: number) => ({ kind: 'epoch_metrics', payload: { epoch: n, metrics: { loss: 'NaN' } } });

  it('writes entries in the same transaction as the data, in order, and only when something changed', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('o1'), { outbox: [{ kind: 'job_begun', payload: { a: 1 } }] });
    // An existing job: nothing written.
    await store.createOrGetJob(newJob('o1'), { outbox: [{ kind: 'job_begun', payload: { a: 2 } }] });
    const epoch = (e: number, loss: number) => ({
      jobId: 'o1',
      epoch: e,
      metrics: { loss },
      columns: { loss },
      timestamp: new Date(1000 + e),
      best: null,
      outbox: [item(e)],
    });
    await store.saveEpoch(epoch(0, 0.5));
    await store.saveEpoch(epoch(0, 0.5)); // resent unchanged: nothing new to mirror
    await store.saveEpoch(epoch(0, 0.4)); // changed: mirrored again
    await store.appendBatchBlocks('o1', [block(0, ['loss', 'lr'], 10n, 3)], {
      outboxKind: 'batch_metrics',
      receivedAtMs: 5000,
    });
    // Resent unchanged: its points are stored (and mirrored) once already, so no second reference.
    await store.appendBatchBlocks('o1', [block(0, ['loss', 'lr'], 10n, 3)], {
      outboxKind: 'batch_metrics',
      receivedAtMs: 6000,
    });
    // A new point: a reference of its own.
    await store.appendBatchBlocks('o1', [block(0, ['loss', 'lr'], 13n, 1)], {
      outboxKind: 'batch_metrics',
      receivedAtMs: 7000,
    });
    await store.putArtifacts(
      'o1',
      [
        {
          artifactPath: 'a.txt',
          sizeBytes: 1,
          sha256: 'x',
          sourcePath: '/s',
          storedPath: '/t',
          loggedAt: new Date(),
        },
      ],
      { outbox: [{ kind: 'artifact', payload: { filePath: '/t' } }] },
    );
    await store.endJob({
      jobId: 'o1',
      status: 'failed',
      finalMetrics: {},
      errorMessage: 'boom',
      endedAt: new Date(),
      outbox: [{ kind: 'job_ended', payload: { status: 'FAILED' } }],
    });
    await store.reopenJob('o1', { startEpoch: 1, outbox: [{ kind: 'job_begun', payload: { a: 3 } }] });

    const items = await store.peekOutbox('o1', 100);
    expect(items.map((i) => i.kind)).toEqual([
      'job_begun',
      'epoch_metrics',
      'epoch_metrics',
      'batch_metrics',
      'batch_metrics',
      'artifact',
      'job_ended',
      'job_begun',
    ]);
    expect(items[0]!.payload).toEqual({ a: 1 });
    expect(items[1]!.payload).toEqual({ epoch: 0, metrics: { loss: 'NaN' } });
    const b = items[3]!;
    expect(b.payload).toBeNull();
    expect(b.block?.names).toEqual(['loss', 'lr']);
    expect([...b.block!.steps]).toEqual([10n, 11n, 12n]);
    expect(b.block?.receivedAtMs).toBe(5000);
    expect(items[4]!.block?.receivedAtMs).toBe(7000);
    expect([...items[4]!.block!.steps]).toEqual([13n]);
    // Block references hold no copy of the points.
    expect(
      inspect<{ n: number }>(
        'select count(*) n from outbox_item where block_id is not null and payload is not null',
      )[0]!.n,
    ).toBe(0);
    // A peek stops once the blocks it resolved reach the point budget.
    expect((await store.peekOutbox('o1', 100, 1)).map((i) => i.kind)).toEqual([
      'job_begun',
      'epoch_metrics',
      'epoch_metrics',
      'batch_metrics',
    ]);
  });

  it('writes many epoch entries in order, and none when the job is unknown', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('o2'));
    const many = Array.from({ length: 19 }, (_, i) => ({ kind: `k${i}`, payload: i % 3 ? { i } : null }));
    const report = (jobId: string) => ({
      jobId,
      epoch: 0,
      metrics: { loss: Number.NaN },
      columns: { loss: Number.NaN },
      timestamp: new Date(),
      best: null,
      outbox: many,
    });
    await store.saveEpoch(report('o2'));
    const items = await store.peekOutbox('o2', 100);
    expect(items.map((i) => [i.kind, i.payload])).toEqual(many.map((m) => [m.kind, m.payload]));
    expect(items.every((i) => i.attempts === 0 && i.nextAttemptAtMs === i.createdAtMs)).toBe(true);
    await expect(store.saveEpoch(report('ghost'))).rejects.toMatchObject({ kind: 'not_found' });
    expect(inspect<{ n: number }>('select count(*) n from outbox_item')[0]!.n).toBe(19);
  });

  it('schedules, parks, retries now, completes and reports status per job', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('a'));
    await store.createOrGetJob(newJob('b'));
    await store.enqueueOutbox('a', [item(0), item(1)], 1000);
    await store.enqueueOutbox('b', [item(0)], 2000);
    expect(await store.outboxDueJobs(999, 10)).toEqual([]);
    expect(await store.outboxDueJobs(5000, 10)).toEqual(['a', 'b']);
    expect(await store.outboxNextDueAtMs()).toBe(1000);
    const [a0] = await store.peekOutbox('a', 1);
    await store.rescheduleOutboxItem(a0!.id, { attempts: 1, nextAttemptAtMs: 9000, lastError: 'refused' });
    expect((await store.peekOutbox('a', 1))[0]).toMatchObject({
      attempts: 1,
      nextAttemptAtMs: 9000,
      lastError: 'refused',
    });
    expect(await store.outboxDueJobs(5000, 10)).toEqual(['b']);
    expect(await store.outboxNextDueAtMs()).toBe(2000);
    const [b0] = await store.peekOutbox('b', 1);
    await store.parkOutboxItem(b0!.id, 'bad request');
    expect(await store.outboxDueJobs(10_000, 10)).toEqual(['a']);
    let status = await store.outboxStatus(['a', 'b', 'c']);
    expect(status.get('a')).toEqual({
      pendingItems: 2,
      oldestCreatedAtMs: 1000,
      parkedError: '',
    });
    expect(status.get('b')?.parkedError).toBe('bad request');
    expect(status.has('c')).toBe(false);
    // Retry now, one job: its parked head is due again; the other job keeps waiting for 9000.
    expect(await store.retryOutboxNow('b', 3000)).toBe(1);
    expect(await store.outboxDueJobs(3000, 10)).toEqual(['b']);
    // Retry now, every job: the wait of a's head ends too (b's due entry is left as it is).
    expect(await store.retryOutboxNow(undefined, 3500)).toBe(1);
    expect(await store.outboxDueJobs(3500, 10)).toEqual(['b', 'a']);
    expect(await store.retryOutboxNow(undefined, 3500)).toBe(0);
    await store.completeOutbox([a0!.id, b0!.id]);
    status = await store.outboxStatus(['a', 'b']);
    expect(status.get('a')?.pendingItems).toBe(1);
    expect(status.has('b')).toBe(false);
    await expect(store.enqueueOutbox('nope', [item(0)], 1)).rejects.toMatchObject({ kind: 'not_found' });
  });

  it('counts jobs by status, outbox depth and oldest entry, and parked jobs for monitoring', async () => {
    const store = await openTestStore();
    expect(await store.operationalCounts()).toEqual({
      jobsByStatus: { running: 0, completed: 0, failed: 0, cancelled: 0 },
      outboxPending: 0,
      parkedJobs: 0,
      outboxParkedItems: 0,
    });
    for (const id of ['a', 'b', 'c']) await store.createOrGetJob(newJob(id));
    await store.endJob({
      jobId: 'c',
      status: 'failed',
      finalMetrics: {},
      errorMessage: 'oom',
      endedAt: new Date(),
    });
    await store.enqueueOutbox('a', [item(0), item(1)], 1500);
    await store.enqueueOutbox('b', [item(0), item(1)], 1200);
    const [b0, b1] = await store.peekOutbox('b', 2);
    await store.parkOutboxItem(b0!.id, 'bad request');
    expect(await store.operationalCounts()).toEqual({
      jobsByStatus: { running: 2, completed: 0, failed: 1, cancelled: 0 },
      outboxPending: 4,
      outboxOldestCreatedAtMs: 1200,
      parkedJobs: 1,
      // b's second entry waits behind its parked head.
      outboxParkedItems: 2,
    });
    await store.completeOutbox([b0!.id, b1!.id]);
    expect(await store.operationalCounts()).toMatchObject({
      outboxPending: 2,
      outboxOldestCreatedAtMs: 1500,
      parkedJobs: 0,
      outboxParkedItems: 0,
    });
  });

  it('keeps the mirror state in the job row', async () => {
    let store = await openTestStore();
    await store.createOrGetJob(newJob('m'));
    expect(await store.getMirrorState('m')).toEqual({});
    const before = (await store.getJob('m'))!.updatedAt;
    await store.saveMirrorState('m', {
      experimentId: '7',
      runId: 'r1',
      artifactUri: 'mlflow-artifacts:/7/r1/artifacts',
      metricKeys: { 'mAP50(B)': 'mAP50B' },
    });
    store = await reopen(store);
    expect(await store.getMirrorState('m')).toEqual({
      experimentId: '7',
      runId: 'r1',
      artifactUri: 'mlflow-artifacts:/7/r1/artifacts',
      metricKeys: { 'mAP50(B)': 'mAP50B' },
    });
    const job = (await store.getJob('m'))!;
    expect([job.mlflowExperimentId, job.mlflowRunId]).toEqual(['7', 'r1']);
    expect(job.updatedAt).toEqual(before);
    expect(await store.getMirrorState('none')).toBeUndefined();
  });

  it("replaces a job's outbox with a copy of the job built from what is stored, forgetting the mirror state", async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('rm'), { outbox: [{ kind: 'job_begun', payload: { a: 1 } }] });
    for (const e of [1, 0]) {
      await store.saveEpoch({
        jobId: 'rm',
        epoch: e,
        metrics: { loss: e === 0 ? Number.NaN : 0.5 },
        columns: {},
        timestamp: new Date(1000 + e),
        best: null,
        outbox: [item(e)],
      });
    }
    await store.appendBatchBlocks('rm', [block(0, ['loss'], 0n, 2), block(1, ['loss'], 2n, 2)], {
      outboxKind: 'batch_metrics',
    });
    await store.putArtifacts('rm', [
      {
        artifactPath: 'w.pt',
        sizeBytes: 1,
        sha256: 'x',
        sourcePath: '/s',
        storedPath: '/t',
        loggedAt: new Date(),
      },
    ]);
    await store.saveMirrorState('rm', { experimentId: '7', runId: 'gone', metricKeys: { a: 'a' } });
    await store.parkOutboxItem((await store.peekOutbox('rm', 1))[0]!.id, 'run gone');
    await store.endJob({
      jobId: 'rm',
      status: 'completed',
      finalMetrics: { loss: Number.NaN },
      errorMessage: 'done',
      endedAt: new Date(5000),
    });
    const stored = await store.getJob('rm');
    const storedEpochs = await store.listEpochs('rm');

    const result = await store.replaceOutbox(
      'rm',
      ({ job, epochs, artifacts }) => {
        // The snapshot, read inside the replacing transaction, is the job as stored, every field.
        expect(job).toEqual(stored);
        expect(epochs).toEqual(storedEpochs);
        return {
          before: [
            { kind: 'job_begun', payload: { job: job.jobId } },
            ...epochs.map((e) => ({
              kind: 'epoch_metrics',
              payload: { epoch: e.epoch, nan: Number.isNaN(e.metrics.loss), at: e.timestamp.getTime() },
            })),
          ],
          blockKind: 'batch_metrics',
          after: artifacts.map((a) => ({ kind: 'artifact', payload: { path: a.artifactPath } })),
        };
      },
      42,
    );
    expect(result).toMatchObject({ dropped: 5, queued: 6, job: { jobId: 'rm', mlflowRunId: '' } });
    const items = await store.peekOutbox('rm', 100);
    expect(items.map((i) => [i.kind, i.payload, i.block?.steps[0]])).toEqual([
      ['job_begun', { job: 'rm' }, undefined],
      ['epoch_metrics', { epoch: 0, nan: true, at: 1000 }, undefined],
      ['epoch_metrics', { epoch: 1, nan: false, at: 1001 }, undefined],
      ['batch_metrics', null, 0n],
      ['batch_metrics', null, 2n],
      ['artifact', { path: 'w.pt' }, undefined],
    ]);
    expect(items.every((i) => i.parkedError === null && i.nextAttemptAtMs === 42 && i.attempts === 0)).toBe(
      true,
    );
    expect(await store.getMirrorState('rm')).toEqual({});
    await expect(
      store.replaceOutbox('nope', () => ({ before: [], blockKind: 'x', after: [] }), 1),
    ).rejects.toMatchObject({
      kind: 'not_found',
    });
  });
});
