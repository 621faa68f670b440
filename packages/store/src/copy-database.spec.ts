// Moving a store from its SQLite file to PostgreSQL (and back): every row arrives as it was — epochs
// with NaN and -0, batch blocks bit for bit, artifacts, the outbox and the change feed by their ids —
// and the copy goes on working: new rows get new ids, not the copied ones.
import { afterEach, describe, expect, it } from 'vitest';
import { CopyRefusedError, copyDatabase, openStore, type Store } from './index.ts';
import { testDatabases } from './spec/databases.ts';
import { sampleJob } from './testing.ts';

const databases = testDatabases();
const open: Store[] = [];
async function store(dbPath: string): Promise<Store> {
  const s = await openStore({ dbPath });
  open.push(s);
  return s;
}
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

/** Everything a reader of the store sees of a job. */
async function snapshot(s: Store, jobId: string) {
  const { lastSeenAt: _seen, leaseExpiresAt: _lease, ...job } = (await s.getJob(jobId))!;
  return {
    job,
    epochs: await s.listEpochs(jobId),
    blocks: await s.listBatchBlocks(jobId),
    artifacts: await s.listArtifacts(jobId),
    outbox: await s.peekOutbox(jobId, 100),
    feed: await s.readChanges({ afterSeq: 0, jobId, limit: 1000 }),
  };
}

async function fill(s: Store): Promise<void> {
  for (const jobId of ['a', 'b']) {
    await s.createOrGetJob(sampleJob(jobId, { params: { lr: '0.1' }, tags: { team: 'vision' } }), {
      outbox: [{ kind: 'run_begin', payload: { name: jobId } }],
    });
    for (let epoch = 0; epoch < 3; epoch++) {
      await s.saveEpoch({
        jobId,
        epoch,
        metrics: { accuracy: 0.5 + epoch / 10, loss: epoch === 1 ? Number.NaN : -0 },
        columns: { accuracy: 0.5 + epoch / 10 },
        timestamp: new Date(Date.UTC(2026, 0, 1, 0, epoch)),
        best: { epoch, value: 0.5 + epoch / 10 },
        outbox: [{ kind: 'epoch_metrics', payload: { epoch } }],
      });
    }
    await s.appendBatchBlocks(
      jobId,
      [
        {
          epoch: 2,
          names: ['loss'],
          steps: BigInt64Array.from([7n, 2n ** 50n]),
          values: Float64Array.from([Number.NEGATIVE_INFINITY, 0.25]),
        },
      ],
      { outboxKind: 'batch' },
    );
    await s.putArtifacts(jobId, [
      {
        artifactPath: 'weights/best.pt',
        sizeBytes: 2 ** 33,
        sha256: 'ab'.repeat(32),
        sourcePath: '/in/best.pt',
        storedPath: `${jobId}/best.pt`,
        loggedAt: new Date(Date.UTC(2026, 0, 2)),
      },
    ]);
  }
  await s.endJob({
    jobId: 'a',
    status: 'completed',
    finalMetrics: { accuracy: 0.7 },
    errorMessage: '',
    endedAt: new Date(Date.UTC(2026, 0, 3)),
  });
}

describe('copyDatabase', () => {
  it('moves an SQLite store into PostgreSQL row for row, and the copy takes new writes', async () => {
    const from = await databases.fresh('sqlite');
    const to = await databases.fresh('postgresql');
    const source = await store(from);
    await fill(source);
    const before = { a: await snapshot(source, 'a'), b: await snapshot(source, 'b') };
    await source.close();
    open.splice(open.indexOf(source), 1);

    const progress: string[] = [];
    const copied = await copyDatabase(from, to, (p) => p.done && progress.push(`${p.table} ${p.rows}`));
    expect(copied).toMatchObject({ training_job: 2, training_metric: 6, batch_metric_block: 2, artifact: 2 });
    expect(progress[0]).toBe('training_job 2');

    const target = await store(to);
    expect({ a: await snapshot(target, 'a'), b: await snapshot(target, 'b') }).toEqual(before);
    expect(Object.is((await target.listEpochs('b'))[0]!.metrics.loss, -0)).toBe(true);
    // New rows after the copied ones: no id is handed out twice.
    await target.createOrGetJob(sampleJob('c'));
    await target.appendBatchBlocks(
      'b',
      [{ epoch: 2, names: ['loss'], steps: BigInt64Array.from([8n]), values: Float64Array.from([1]) }],
      { outboxKind: 'batch' },
    );
    await target.saveEpoch({
      jobId: 'c',
      epoch: 0,
      metrics: {},
      columns: {},
      timestamp: new Date(),
      best: null,
      outbox: [{ kind: 'x', payload: null }],
    });
    const feed = await target.readChanges({ afterSeq: 0, limit: 1000 });
    expect(new Set(feed.map((c) => c.seq)).size).toBe(feed.length);
    expect((await target.listBatchBlocks('b')).length).toBe(2);
  });

  it('copies between PostgreSQL databases; the feed of the copy goes on after the copied seqs', async () => {
    // The source's seqs follow its transactions, so they are far above a new database's first ones.
    const from = await databases.fresh('postgresql');
    const source = await store(from);
    await fill(source);
    const copiedFeed = await source.readChanges({ afterSeq: 0, limit: 1000 });
    await source.close();
    open.splice(open.indexOf(source), 1);
    const to = await databases.fresh('postgresql');
    await copyDatabase(from, to);

    const target = await store(to);
    expect(await target.readChanges({ afterSeq: 0, limit: 1000 })).toEqual(copiedFeed);
    const head = await target.headSeq();
    expect(head).toBeGreaterThanOrEqual(copiedFeed.at(-1)!.seq);
    await target.createOrGetJob(sampleJob('c'));
    const added = await target.readChanges({ afterSeq: head, limit: 10 });
    expect(added.map((c) => [c.jobId, c.kind])).toEqual([['c', 'job']]);
    expect(added[0]!.seq).toBeGreaterThan(copiedFeed.at(-1)!.seq);
  });

  it('refuses a destination that already holds jobs, and changes nothing there', async () => {
    const from = await databases.fresh('sqlite');
    const to = await databases.fresh('postgresql');
    await fill(await store(from));
    const target = await store(to);
    await target.createOrGetJob(sampleJob('a'));
    await expect(copyDatabase(from, to)).rejects.toThrow(CopyRefusedError);
    await expect(copyDatabase(from, to)).rejects.toThrow(
      /already holds 1 job\(s\): copy into an empty database/,
    );
    expect((await target.listJobs({ limit: 10 })).jobs.map((j) => j.jobId)).toEqual(['a']);
  });
});
