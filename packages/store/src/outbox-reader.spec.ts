import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BatchBlock, type NewJob, openStore, type Store } from './index.ts';
import { type OutboxReader, type OutboxReaderPlan, openOutboxReader } from './outbox-reader.ts';
import { sampleJob } from './testing.ts';

let dir: string;
let dbPath: string;
let store: Store;
const readers: OutboxReader[] = [];

function openReader(plan: OutboxReaderPlan = store.outboxReaderPlan(), path = dbPath): OutboxReader {
  const reader = openOutboxReader({ dbPath: path, plan });
  readers.push(reader);
  return reader;
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'outbox-reader-spec-'));
  dbPath = join(dir, 'store.db');
  store = await openStore({ dbPath });
});

afterEach(async () => {
  for (const reader of readers.splice(0)) reader.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A raw write beside the store (with the store's own better-sqlite3), for rows no API writes. */
function rawWrite(sql: string, ...params: unknown[]): void {
  const driver = createRequire(createRequire(import.meta.url).resolve('@mikro-orm/sqlite/package.json'));
  const Database = driver('better-sqlite3') as new (
    path: string,
  ) => { prepare(sql: string): { run(...p: unknown[]): unknown }; close(): void };
  const db = new Database(dbPath);
  try {
    db.prepare(sql).run(...params);
  } finally {
    db.close();
  }
}

function newJob(jobId: string): NewJob {
  return sampleJob(jobId, {
    modelConfig: { arch: 'resnet50' },
    trainingConfig: { epochs: 10 },
    params: { lr: '0.001' },
  });
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

const epochItem = (epoch: number, metrics: Record<string, unknown>) => ({
  kind: 'epoch_metrics',
  payload: { epoch, metrics, timestampMs: 1_760_000_000_000 + epoch },
});

/** Jobs with every kind of entry: payloads, block references (resent too), rescheduled and parked heads. */
async function fill(): Promise<void> {
  // alpha: the life of a job, with batch blocks by reference.
  await store.createOrGetJob(newJob('alpha'), {
    outbox: [{ kind: 'job_begun', payload: { runName: 'alpha', params: { lr: '0.001' } } }],
  });
  for (let e = 0; e < 3; e++) {
    await store.saveEpoch({
      jobId: 'alpha',
      epoch: e,
      metrics: { loss: e === 1 ? Number.NaN : 1 / (e + 1), accuracy: 0.5 + e / 10 },
      columns: { loss: 1 / (e + 1), accuracy: 0.5 + e / 10 },
      timestamp: new Date(1_760_000_000_000 + e),
      best: { epoch: e, value: 0.5 + e / 10 },
      outbox: [epochItem(e, { loss: e === 1 ? 'NaN' : 1 / (e + 1), accuracy: 0.5 + e / 10, neg: '-0' })],
    });
    const special = block(e, ['loss', 'lr'], BigInt(e * 100) + 2n ** 40n, 50, e);
    special.values[0] = Number.NaN;
    special.values[1] = Number.NEGATIVE_INFINITY;
    special.values[2] = -0;
    await store.appendBatchBlocks('alpha', [special, block(e, ['grad_norm'], BigInt(e * 100), 30, e)], {
      outboxKind: 'batch_metrics',
      receivedAtMs: 1_760_000_001_000 + e,
    });
  }
  // A block resent with one point changed: the stored block loses that point (its entry then sends
  // the rest), the new value gets an entry of its own.
  const resent = block(0, ['grad_norm'], 0n, 30, 0);
  resent.values[5] = 99;
  await store.appendBatchBlocks('alpha', [resent], {
    outboxKind: 'batch_metrics',
    receivedAtMs: 1_760_000_009_999,
  });
  await store.putArtifacts(
    'alpha',
    [
      {
        artifactPath: 'checkpoints/best.pt',
        sizeBytes: 5_000_000_000,
        sha256: 'a'.repeat(64),
        sourcePath: '/runs/best.pt',
        storedPath: '/data/alpha/best.pt',
        loggedAt: new Date(1_760_000_002_000),
      },
    ],
    {
      outbox: [
        { kind: 'artifact', payload: { filePath: '/data/alpha/best.pt', artifactPath: 'checkpoints' } },
      ],
    },
  );
  await store.endJob({
    jobId: 'alpha',
    status: 'completed',
    finalMetrics: { accuracy: 0.7 },
    finalAccuracy: 0.7,
    errorMessage: '',
    endedAt: new Date(1_760_000_003_000),
    outbox: [{ kind: 'job_ended', payload: { status: 'FINISHED' } }],
  });
  await store.saveMirrorState('alpha', {
    experimentId: '7',
    runId: 'r-alpha',
    artifactUri: 'mlflow-artifacts:/7/r-alpha/artifacts',
    metricKeys: { 'mAP50(B)': 'mAP50B', loss: 'train_loss' },
  });
  // A block stored before receipt times existed.
  const firstBlock = (await store.peekOutbox('alpha', 100)).find((i) => i.blockId !== undefined);
  rawWrite('update batch_metric_block set received_at_ms = null where id = ?', firstBlock!.blockId);

  // beta: payload entries (some null), the head rescheduled after failures.
  await store.createOrGetJob(newJob('beta'));
  await store.enqueueOutbox(
    'beta',
    Array.from({ length: 12 }, (_, i) => ({ kind: `k${i}`, payload: i % 3 ? { i, text: 'é "q"' } : null })),
    1_000,
  );
  const [betaHead] = await store.peekOutbox('beta', 1);
  await store.rescheduleOutboxItem(betaHead!.id, {
    attempts: 3,
    nextAttemptAtMs: 9_000,
    lastError: 'ECONNREFUSED',
  });

  // gamma: parked head; delta: due later; epsilon: no entries but mirrored; zeta: nothing at all.
  await store.createOrGetJob(newJob('gamma'));
  await store.enqueueOutbox('gamma', [epochItem(0, { loss: 1 }), epochItem(1, { loss: 2 })], 2_000);
  const [gammaHead] = await store.peekOutbox('gamma', 1);
  await store.parkOutboxItem(gammaHead!.id, 'HTTP 400: INVALID_PARAMETER_VALUE');
  await store.createOrGetJob(newJob('delta'));
  await store.enqueueOutbox('delta', [epochItem(0, { loss: 1 })], 5_000);
  await store.createOrGetJob(newJob('epsilon'));
  await store.saveMirrorState('epsilon', { experimentId: '8' });
  await store.createOrGetJob(newJob('zeta'));
}

const JOBS = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'unknown'];

/** Every read of the reader equals the full store's, for many arguments. */
async function expectSameAnswers(reader: OutboxReader): Promise<void> {
  for (const nowMs of [0, 1_000, 1_999, 2_000, 5_000, 9_000, Date.now() + 1e9]) {
    for (const limit of [0.5, 1, 2, 3, 100]) {
      expect(await reader.outboxDueJobs(nowMs, limit)).toStrictEqual(await store.outboxDueJobs(nowMs, limit));
    }
  }
  expect(await reader.outboxNextDueAtMs()).toStrictEqual(await store.outboxNextDueAtMs());
  for (const jobId of JOBS) {
    for (const limit of [1, 2, 5, 100]) {
      for (const maxBlockPoints of [undefined, 1, 100, 101, 250, 10_000]) {
        const expected = await store.peekOutbox(jobId, limit, maxBlockPoints);
        expect(await reader.peekOutbox(jobId, limit, maxBlockPoints)).toStrictEqual(expected);
      }
    }
    expect(await reader.getMirrorState(jobId)).toStrictEqual(await store.getMirrorState(jobId));
    expect(await reader.outboxStatus([jobId])).toStrictEqual(await store.outboxStatus([jobId]));
  }
  expect(await reader.outboxStatus(JOBS)).toStrictEqual(await store.outboxStatus(JOBS));
  expect(await reader.outboxStatus([])).toStrictEqual(await store.outboxStatus([]));
}

describe('outbox reader', () => {
  it('reads what the store reads, on the same file, as the writer changes it', async () => {
    await fill();
    const reader = openReader();
    // The data is what the test meant to build.
    const alpha = await store.peekOutbox('alpha', 100);
    expect(alpha.filter((i) => i.block).length).toBe(7);
    expect(alpha.flatMap((i) => (i.block?.values.includes(99) ? [i.block.steps] : []))).toEqual([
      BigInt64Array.from([5n]),
    ]);
    expect(alpha.some((i) => i.block?.receivedAtMs === i.createdAtMs)).toBe(true);
    expect((await store.outboxStatus(['gamma'])).get('gamma')?.parkedError).toMatch(/INVALID_PARAMETER/);
    await expectSameAnswers(reader);

    // The writer moves on; the reader sees every commit.
    const [first, second] = await store.peekOutbox('alpha', 2);
    await store.completeOutbox([first!.id, second!.id]);
    await store.rescheduleOutboxItem(alpha[2]!.id, {
      attempts: 1,
      nextAttemptAtMs: 3_000,
      lastError: 'HTTP 503',
    });
    await store.retryOutboxNow('gamma', 4_000);
    await store.saveMirrorState('beta', { runId: 'r-beta', metricKeys: {} });
    await store.enqueueOutbox('zeta', [epochItem(9, { loss: 'Infinity' })], 100);
    await expectSameAnswers(reader);
  });

  it('hands over a plan of plain data (structured-cloneable), compiled once per store', async () => {
    const plan = store.outboxReaderPlan();
    expect(store.outboxReaderPlan()).toBe(plan);
    expect(structuredClone(plan)).toStrictEqual(plan);
    expect(plan.dueJobs.sql).toMatch(/^select .* from "outbox_item" .* limit \?$/);
    await fill();
    // A plan that went through a thread boundary reads the same.
    await expectSameAnswers(openReader(structuredClone(plan)));
  });

  it('cannot write: it has no write, refuses a statement that writes, and its connection is read-only', async () => {
    await fill();
    const reader = openReader();
    expect(Object.keys(reader).sort()).toEqual([
      'close',
      'getMirrorState',
      'outboxDueJobs',
      'outboxNextDueAtMs',
      'outboxStatus',
      'peekOutbox',
    ]);
    const plan = store.outboxReaderPlan();
    const withMirrorSql = (sql: string): OutboxReaderPlan => ({
      ...plan,
      mirrorState: { ...plan.mirrorState, sql },
    });
    expect(() =>
      openReader(withMirrorSql('update "training_job" set "mlflow_run_id" = \'x\' where "job_id" = ?')),
    ).toThrow(/does not read/);
    // A write that returns rows passes for a read; SQLite refuses it on this connection.
    const sneaky = openReader(
      withMirrorSql(
        'update "training_job" set "mlflow_run_id" = \'x\' where "job_id" = ? returning "mlflow_run_id"',
      ),
    );
    await expect(sneaky.getMirrorState('alpha')).rejects.toThrow(/readonly/i);
    expect((await store.getMirrorState('alpha'))?.runId).toBe('r-alpha');
  });

  it('refuses a file that does not exist or that the store never migrated', async () => {
    const plan = store.outboxReaderPlan();
    expect(() => openReader(plan, join(dir, 'missing.db'))).toThrow(/unable to open|does not exist/i);
    const empty = join(dir, 'empty.db');
    writeFileSync(empty, '');
    expect(() => openReader(plan, empty)).toThrow(/no such table/);
  });

  it('loads neither MikroORM nor Kysely', async () => {
    await fill();
    const readerUrl = new URL('./outbox-reader.ts', import.meta.url).href;
    const code = `
      import { registerHooks } from 'node:module';
      import { parentPort, workerData } from 'node:worker_threads';
      const loaded = [];
      registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); loaded.push(r.url); return r; } });
      const { openOutboxReader } = await import(${JSON.stringify(readerUrl)});
      const reader = openOutboxReader(workerData);
      const items = await reader.peekOutbox('alpha', 100);
      reader.close();
      parentPort.postMessage({ loaded, items: items.length });
    `;
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), {
      workerData: { dbPath, plan: store.outboxReaderPlan() },
    });
    const { loaded, items } = await new Promise<{ loaded: string[]; items: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(items).toBe((await store.peekOutbox('alpha', 100)).length);
    expect(loaded.some((url) => url.includes('/better-sqlite3/'))).toBe(true);
    // Only better-sqlite3 is found through the SQLite driver's package.json; no module of it is loaded.
    const heavy = loaded.filter(
      (url) => /@mikro-orm|kysely|knex/.test(url) && !url.endsWith('/package.json'),
    );
    expect(heavy).toEqual([]);
  });
});
