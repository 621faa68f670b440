// The store's rules on both dialects, with several stores on one database — what several sidecars
// sharing a database do: migrations applied once when they all start together, a report after the
// end refused whichever store ended the job, the best epoch decided from the database when reports
// of one job race on two stores, and a change feed in which no reader ever misses a committed write.
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store, StoreError } from './index.ts';
import { openPostgresqlOrm } from './postgresql-dialect.ts';
import { highest } from './spec/best-rules.ts';
import { DIALECTS, testDatabases } from './spec/databases.ts';
import { openSqliteOrm } from './sqlite-dialect.ts';
import { sampleJob } from './testing.ts';

const databases = testDatabases();

/**
 * Runs the writes concurrently on PostgreSQL; one after the other on SQLite, where two connections of
 * one process cannot both wait: better-sqlite3's BEGIN IMMEDIATE blocks the thread in SQLite's busy
 * handler while the connection holding the lock waits for that very thread. (A file is one sidecar's.)
 */
async function race(dialect: string, writes: Array<() => Promise<unknown>>): Promise<void> {
  if (dialect === 'postgresql') await Promise.all(writes.map((write) => write()));
  else for (const write of writes) await write();
}
const open: Store[] = [];

/**
 * `n` stores on one database: opened all at once on PostgreSQL (sidecars starting together); one
 * after the other on SQLite, where a file is one sidecar's (lockDatabase) and two first opens of a
 * new file would both create its tables.
 */
async function stores(dbPath: string, n: number): Promise<Store[]> {
  const opened: Store[] = [];
  if (dbPath.startsWith('postgres')) {
    opened.push(...(await Promise.all(Array.from({ length: n }, () => openStore({ dbPath })))));
  } else {
    for (let i = 0; i < n; i++) opened.push(await openStore({ dbPath }));
  }
  open.push(...opened);
  return opened;
}

afterEach(async () => {
  for (const store of open.splice(0)) await store.close();
});

function report(store: Store, jobId: string, epoch: number, accuracy: number) {
  return store.saveEpoch({
    jobId,
    epoch,
    metrics: { accuracy, loss: Number.NaN },
    columns: { accuracy, loss: Number.NaN },
    timestamp: new Date(),
    best: highest(epoch, accuracy),
    outbox: [{ kind: 'epoch_metrics', payload: { epoch } }],
  });
}

describe.each(DIALECTS)('%s', (dialect) => {
  it('has committed migrations that match the entities (no schema drift)', async () => {
    const dbPath = await databases.fresh(dialect);
    const orm =
      dialect === 'postgresql' ? await openPostgresqlOrm({ url: dbPath }) : await openSqliteOrm({ dbPath });
    try {
      expect((await orm.schema.getUpdateSchemaSQL({ wrap: false })).trim()).toBe('');
    } finally {
      await orm.close(true);
    }
  });

  it('opens three stores at once on an empty database; the schema is created once', async () => {
    const dbPath = await databases.fresh(dialect);
    const [a, b, c] = await stores(dbPath, dialect === 'postgresql' ? 3 : 1).then((s) => [
      s[0]!,
      s.at(1),
      s.at(2),
    ]);
    await a!.createOrGetJob(sampleJob('j'));
    for (const other of [b, c]) if (other) expect((await other.getJob('j'))?.status).toBe('running');
  });

  it('round-trips an epoch with NaN, ±Infinity and -0, and the job counters', async () => {
    const [store] = await stores(await databases.fresh(dialect), 1);
    await store!.createOrGetJob(sampleJob('j'));
    await store!.beginEpoch('j', 0, new Date('2026-01-01T00:00:00.123Z'));
    const metrics = {
      accuracy: 0.5,
      loss: Number.NaN,
      top5: Number.POSITIVE_INFINITY,
      m: Number.NEGATIVE_INFINITY,
      z: -0,
    };
    const saved = await store!.saveEpoch({
      jobId: 'j',
      epoch: 0,
      metrics,
      columns: { accuracy: 0.5 },
      timestamp: new Date(),
      best: highest(0, 0.5),
    });
    expect(saved).toEqual({ best: { epoch: 0, value: 0.5 }, epochsReported: 1, isNew: true });
    const [epoch] = await store!.listEpochs('j');
    expect(Object.is(epoch!.metrics.z, -0)).toBe(true);
    expect(epoch!.metrics).toEqual(metrics);
    expect(epoch!.nonFinite.sort()).toEqual(['loss', 'm', 'top5']);
    expect(epoch!.beganAt?.toISOString()).toBe('2026-01-01T00:00:00.123Z');
    // The table view's reads (getJob, getEpoch) give what the entity reads give.
    expect(await store!.getEpoch('j', 0)).toEqual(epoch);
    const [listed] = (await store!.listJobs({ limit: 1 })).jobs;
    expect(await store!.getJob('j')).toEqual(listed);
    expect(listed?.createdAt).toBeInstanceOf(Date);
    const again = await store!.saveEpoch({
      jobId: 'j',
      epoch: 0,
      metrics,
      columns: {},
      timestamp: new Date(),
      best: highest(0, 0.5),
    });
    expect(again).toEqual({ best: { epoch: 0, value: 0.5 }, epochsReported: 1, isNew: false });
  });

  it('refuses a report, a begin and a batch after another store ended the job, until it is reopened', async () => {
    const [a, b] = await stores(await databases.fresh(dialect), 2);
    await a!.createOrGetJob(sampleJob('j'));
    await report(a!, 'j', 0, 0.5);
    await b!.endJob({
      jobId: 'j',
      status: 'failed',
      finalMetrics: {},
      errorMessage: 'boom',
      endedAt: new Date(),
    });
    const refused = (p: Promise<unknown>) =>
      expect(p).rejects.toSatisfy((e) => e instanceof StoreError && e.kind === 'ended');
    await refused(report(a!, 'j', 1, 0.6));
    await refused(a!.beginEpoch('j', 1, new Date()));
    expect((await a!.listEpochs('j')).map((e) => e.epoch)).toEqual([0]);
    await a!.reopenJob('j', { startEpoch: 1 });
    await report(b!, 'j', 1, 0.6);
    expect((await a!.getJob('j'))?.epochsReported).toBe(2);
  });

  it('decides the best epoch from the database when reports of one job race on two stores', async () => {
    const [a, b] = await stores(await databases.fresh(dialect), 2);
    await a!.createOrGetJob(sampleJob('j'));
    // 40 epochs with shuffled values, each store reporting half of them concurrently; then the best
    // epoch is re-reported lower, which makes the store compare every stored epoch again.
    const values = Array.from({ length: 40 }, (_, i) => ((i * 37) % 40) / 40);
    await race(
      dialect,
      values.map((v, epoch) => () => report(epoch % 2 ? a! : b!, 'j', epoch, v)),
    );
    const top = values.indexOf(Math.max(...values));
    let job = await b!.getJob('j');
    expect([job?.bestEpoch, job?.bestValue, job?.epochsReported]).toEqual([top, values[top], 40]);
    await report(a!, 'j', top, 0);
    const second = values.indexOf([...values].sort((x, y) => y - x)[1]!);
    job = await b!.getJob('j');
    expect([job?.bestEpoch, job?.epochsReported]).toEqual([second, 40]);
    // Every report wrote its outbox entry once: 40 + the re-report.
    expect((await b!.peekOutbox('j', 100)).length).toBe(41);
  });

  it('keeps the count and the best epoch right, and stores no epoch after the end, when reports of one job race an end on three stores', async () => {
    const [a, b, c] = await stores(await databases.fresh(dialect), 3);
    await a!.createOrGetJob(sampleJob('j'));
    // Each reporting store has reported the job before: on PostgreSQL its next reports are decided
    // from the job row it wrote then (no transaction), the other store's reports making it stale.
    await report(a!, 'j', 0, 0.1);
    await report(b!, 'j', 1, 0.2);
    const values = Array.from({ length: 60 }, (_, i) => ((i * 37) % 60) / 60);
    const accuracyOf = (epoch: number) => (epoch < 2 ? [0.1, 0.2][epoch]! : values[epoch - 2]!);
    const stored: number[] = [];
    const refused: number[] = [];
    const reportAt = (epoch: number) => () =>
      report(epoch % 2 ? a! : b!, 'j', epoch, accuracyOf(epoch)).then(
        () => stored.push(epoch),
        (e: unknown) => {
          if (!(e instanceof StoreError && e.kind === 'ended')) throw e;
          refused.push(epoch);
        },
      );
    const end = () =>
      c!.endJob({ jobId: 'j', status: 'cancelled', finalMetrics: {}, errorMessage: '', endedAt: new Date() });
    const writes: Array<() => Promise<unknown>> = values.map((_, i) => reportAt(i + 2));
    writes.splice(30, 0, end);
    await race(dialect, writes);
    expect(stored.length + refused.length).toBe(60);
    const job = await c!.getJob('j');
    const kept = [0, 1, ...stored];
    const top = kept.reduce((x, y) =>
      accuracyOf(y) > accuracyOf(x) || (accuracyOf(y) === accuracyOf(x) && y < x) ? y : x,
    );
    expect([job?.epochsReported, job?.bestEpoch, job?.bestValue]).toEqual([
      kept.length,
      top,
      accuracyOf(top),
    ]);
    expect((await c!.listEpochs('j')).map((e) => e.epoch)).toEqual([...kept].sort((x, y) => x - y));
    // Every stored epoch committed before the end (the feed's seq order is commit order).
    const changes = await c!.readChanges({ afterSeq: 0, jobId: 'j', limit: 1000 });
    const endSeq = changes.filter((change) => change.kind === 'job').at(-1)!.seq;
    expect(changes.filter((change) => change.kind === 'epoch' && change.seq > endSeq)).toEqual([]);
    expect((await c!.peekOutbox('j', 1000)).filter((item) => item.kind === 'epoch_metrics').length).toBe(
      kept.length,
    );
  });

  it('ends a job once when three stores end it at once; the others meet ended', async () => {
    const all = await stores(await databases.fresh(dialect), 3);
    await all[0]!.createOrGetJob(sampleJob('j'));
    const outcomes = ['completed', 'failed', 'cancelled'] as const;
    const results: Array<'ok' | string> = [];
    await race(
      dialect,
      outcomes.map(
        (status, i) => () =>
          all[i]!.endJob({
            jobId: 'j',
            status,
            finalMetrics: {},
            errorMessage: status,
            endedAt: new Date(),
          }).then(
            () => results.push(status),
            (e: unknown) => results.push(e instanceof StoreError ? e.kind : String(e)),
          ),
      ),
    );
    const winners = results.filter((r) => (outcomes as readonly string[]).includes(r));
    expect(winners).toHaveLength(1);
    expect(results.filter((r) => r === 'ended')).toHaveLength(2);
    expect(await all[1]!.getJob('j')).toMatchObject({ status: winners[0], errorMessage: winners[0] });
  });

  it('stores batch blocks and artifacts racing an end before it or not at all', async () => {
    const [a, b] = await stores(await databases.fresh(dialect), 2);
    await a!.createOrGetJob(sampleJob('j'));
    const block = (step: number) => ({
      epoch: 0,
      names: ['loss'],
      steps: BigInt64Array.from([BigInt(step)]),
      values: Float64Array.from([step]),
    });
    const artifact = (path: string) => ({
      artifactPath: path,
      sizeBytes: 1,
      sha256: '0'.repeat(64),
      sourcePath: '/s',
      storedPath: `/t/${path}`,
      loggedAt: new Date(),
    });
    const refusals: string[] = [];
    const refused = (e: unknown) => refusals.push(e instanceof StoreError ? e.kind : String(e));
    await race(dialect, [
      ...Array.from(
        { length: 30 },
        (_, i) => () =>
          (i % 3 ? a!.appendBatchBlocks('j', [block(i)]) : a!.putArtifacts('j', [artifact(`f${i}`)])).catch(
            refused,
          ),
      ),
      () =>
        b!.endJob({
          jobId: 'j',
          status: 'completed',
          finalMetrics: {},
          errorMessage: '',
          endedAt: new Date(),
        }),
      ...Array.from(
        { length: 30 },
        (_, i) => () =>
          (i % 3
            ? b!.appendBatchBlocks('j', [block(100 + i)])
            : b!.putArtifacts('j', [artifact(`g${i}`)])
          ).catch(refused),
      ),
    ]);
    // Whatever was refused was refused as `ended`; whatever was stored committed before the end.
    expect(refusals.filter((r) => r !== 'ended')).toEqual([]);
    const changes = await a!.readChanges({ afterSeq: 0, jobId: 'j', limit: 1000 });
    const end = changes.filter((c) => c.kind === 'job').at(-1)!.seq;
    expect(changes.filter((c) => c.kind !== 'job' && c.seq > end)).toEqual([]);
    const stored = (await a!.listBatchBlocks('j')).length + (await a!.listArtifacts('j')).length;
    expect(stored + refusals.length).toBe(60);
    if (dialect === 'sqlite') expect(refusals).toHaveLength(30);
  });

  it('creates a job once when three stores create it at once', async () => {
    const all = await stores(await databases.fresh(dialect), 3);
    const created: boolean[] = [];
    await race(
      dialect,
      all.map((store) => () => store.createOrGetJob(sampleJob('j')).then((r) => created.push(r.created))),
    );
    expect(created.sort()).toEqual([false, false, true]);
  });

  it('resumes a job only from the state the caller decided on, whichever store changed it', async () => {
    const [a, b] = await stores(await databases.fresh(dialect), 2);
    await a!.createOrGetJob(sampleJob('j'));
    const failed = await a!.endJob({
      jobId: 'j',
      status: 'failed',
      finalMetrics: {},
      errorMessage: 'x',
      endedAt: new Date(),
    });
    const results: string[] = [];
    // Two resumes decided on "failed" at once: one resumes, the other is told the job changed.
    await race(
      dialect,
      [a!, b!].map(
        (store, i) => () =>
          store.reopenJob('j', { startEpoch: i + 1, from: failed }).then(
            () => results.push('resumed'),
            (e: unknown) => results.push(e instanceof StoreError ? e.kind : String(e)),
          ),
      ),
    );
    expect(results.sort()).toEqual(['conflict', 'resumed']);
    expect((await b!.getJob('j'))?.status).toBe('running');
  });

  it('records a metric source once when two stores see it at once', async () => {
    const [a, b] = await stores(await databases.fresh(dialect), 2);
    await a!.createOrGetJob(sampleJob('j'));
    const source = { name: 'batch/accuracy', reported: 'acc%', scale: 0.01 };
    const write = (store: Store, step: number) =>
      store.appendBatchBlocks(
        'j',
        [
          {
            epoch: 0,
            names: ['loss'],
            steps: BigInt64Array.from([BigInt(step)]),
            values: Float64Array.from([1]),
          },
        ],
        {
          metricSources: { sources: [source], item: (added) => ({ kind: 'metric_sources', payload: added }) },
        },
      );
    await race(dialect, [() => write(a!, 0), () => write(b!, 1), () => write(a!, 2), () => write(b!, 3)]);
    const items = await a!.peekOutbox('j', 100);
    expect(items.map((i) => [i.kind, i.payload])).toEqual([['metric_sources', [source]]]);
  });

  it('gives the change feed in commit order: a reader never sees a seq after it saw a later one', async () => {
    // SQLite serialises its one writer anyway; PostgreSQL's seqs come from a sequence (see hot-path.ts).
    const writers = await stores(await databases.fresh(dialect), dialect === 'postgresql' ? 3 : 1);
    const reader = writers[0]!;
    for (let j = 0; j < 3; j++) await reader.createOrGetJob(sampleJob(`j${j}`));
    let after = await reader.headSeq();
    const seen: number[] = [];
    let writing = true;
    const reading = (async () => {
      for (;;) {
        // Whether the writes were all committed is read before the page's query: a page read while
        // the last commit was still under way may be empty, and only an empty page read after every
        // commit says the feed is done.
        const allCommitted = !writing;
        const page = await reader.readChanges({ afterSeq: after, limit: 50 });
        for (const change of page) seen.push(change.seq);
        if (page.length) after = page.at(-1)!.seq;
        if (allCommitted && page.length === 0) break;
        if (page.length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        report(writers[i % writers.length]!, `j${i % 3}`, Math.floor(i / 3), i / 120),
      ),
    );
    writing = false;
    await reading;
    // Everything committed was seen, once, in increasing order: none was skipped and seen late.
    const all = (await reader.readChanges({ afterSeq: 0, limit: 1000 }))
      .map((c) => c.seq)
      .filter((s) => s > seen[0]! - 1);
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(all.filter((s) => s >= seen[0]!));
    expect(seen.length).toBe(120);
  });

  it('gives each job’s outbox to one claimer at a time, and a job whose claim ran out to another', async () => {
    const [a, b, c] = await stores(await databases.fresh(dialect), 3);
    const jobs = Array.from({ length: 15 }, (_, i) => `q${i}`);
    for (const jobId of jobs) {
      await a!.createOrGetJob(sampleJob(jobId));
      await a!.enqueueOutbox(jobId, [{ kind: 'epoch_metrics', payload: { epoch: 0 } }], 1000);
    }
    const terms = (owner: string, nowMs: number) => ({ owner, nowMs, leaseMs: 1000 });
    // Claimers at the same moment (on PostgreSQL each picks past the others' locked rows).
    const held: string[][] = [[], [], []];
    await race(
      dialect,
      [a!, b!, c!].map((store, i) => async () => {
        held[i] = await store.claimOutboxJobs(terms(`S${i}`, 2000), 6);
      }),
    );
    const all = held.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(15);
    // Nobody takes a live claim; once it ran out (its owner died), another does.
    expect(await b!.claimOutboxJobs(terms('S1', 2500), 100)).toEqual(expect.not.arrayContaining(held[0]!));
    await b!.renewOutboxClaims(terms('S1', 2900), held[1]!);
    await c!.renewOutboxClaims(terms('S2', 2900), held[2]!);
    expect((await b!.claimOutboxJobs(terms('S1', 3000), 100)).sort()).toEqual(
      [...held[0]!, ...held[1]!].sort(),
    );
    expect(await a!.renewOutboxClaims(terms('S0', 3001), held[0]!)).toEqual([]);
    expect(await a!.outboxNextDueAtMs({ owner: 'S0', nowMs: 3001 })).toBeUndefined();
    await b!.releaseOutboxClaims('S1');
    expect((await a!.claimOutboxJobs(terms('S0', 3002), 100)).sort()).toEqual(
      [...held[0]!, ...held[1]!].sort(),
    );
  });

  it('stores NUL: faithfully on SQLite, as U+FFFD on PostgreSQL (which cannot store it), never failing the write', async () => {
    const [store] = await stores(await databases.fresh(dialect), 1);
    const nul = dialect === 'postgresql' ? '\uFFFD' : '\0';
    await store!.createOrGetJob(
      sampleJob('j', { modelConfig: { note: 'a\0b', keep: 'literal \\u0000 text' }, params: { p: 'x\0' } }),
      { outbox: [{ kind: 'k', payload: { text: 'c\0d' } }] },
    );
    await store!.endJob({
      jobId: 'j',
      status: 'failed',
      finalMetrics: {},
      errorMessage: 'Trace\0back \\u0000',
      endedAt: new Date(),
    });
    const job = await store!.getJob('j');
    expect(job?.modelConfig).toEqual({ note: `a${nul}b`, keep: 'literal \\u0000 text' });
    expect(job?.params).toEqual({ p: `x${nul}` });
    expect(job?.errorMessage).toBe(`Trace${nul}back \\u0000`);
    expect((await store!.peekOutbox('j', 10))[0]?.payload).toEqual({ text: `c${nul}d` });
  });

  it('keeps batch blocks bit for bit, compacts the feed and commits a probe write', async () => {
    const [store] = await stores(await databases.fresh(dialect), 1);
    await store!.createOrGetJob(sampleJob('j'));
    const values = Float64Array.from([0.1, Number.NaN, -0, Number.NEGATIVE_INFINITY]);
    await store!.appendBatchBlocks(
      'j',
      [{ epoch: 0, names: ['a', 'b'], steps: BigInt64Array.from([1n, 2n ** 40n]), values }],
      { outboxKind: 'batch' },
    );
    await store!.appendBatchBlocks('j', [
      { epoch: 0, names: ['a', 'b'], steps: BigInt64Array.from([1n]), values: Float64Array.from([0.2, 0.3]) },
    ]);
    const blocks = await store!.listBatchBlocks('j');
    const points = blocks.flatMap((b) =>
      [...b.steps].map((s, i) => [s, b.values[i * 2], b.values[i * 2 + 1]]),
    );
    expect(points).toEqual([
      [1n, 0.2, 0.3],
      [2n ** 40n, -0, Number.NEGATIVE_INFINITY],
    ]);
    const head = await store!.headSeq();
    expect(await store!.compactChanges({ fromSeq: 0, toSeq: head + 1 })).toBeGreaterThan(0);
    const changes = await store!.readChanges({ afterSeq: 0, limit: 100 });
    expect(changes.filter((c) => c.kind === 'job')).toHaveLength(1);
    const block = await store!.getBatchBlock(changes.find((c) => c.kind === 'batch')!.ref!);
    expect(block?.names).toEqual(['a', 'b']);
    await store!.probeWrite();
  });
});
