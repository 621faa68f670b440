import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from './index.ts';
import { sampleJob } from './testing.ts';

let dir: string;
let store: Store;

function block(epoch: number, first: number, n: number) {
  const steps = BigInt64Array.from({ length: n }, (_, i) => BigInt(first + i));
  return { epoch, names: ['loss'], steps, values: Float64Array.from({ length: n }, (_, i) => i / n) };
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'change-feed-'));
  store = await openStore({ dbPath: join(dir, 'store.db') });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the change feed', () => {
  it('records every write of a job in commit order, with what it refers to', async () => {
    let commits = 0;
    const stop = store.onCommit(() => commits++);
    await store.createOrGetJob(sampleJob('a'));
    await store.createOrGetJob(sampleJob('a')); // exists: nothing written, nothing recorded
    await store.saveEpoch({
      jobId: 'a',
      epoch: 0,
      metrics: { accuracy: 0.5 },
      columns: { accuracy: 0.5 },
      timestamp: new Date(),
      best: { epoch: 0, value: 0.5 },
    });
    await store.appendBatchBlocks('a', [block(0, 0, 10), block(0, 10, 10)]);
    await store.putArtifacts('a', [
      {
        artifactPath: 'w.pt',
        sizeBytes: 3,
        sha256: 'ab',
        sourcePath: '',
        storedPath: '/x',
        loggedAt: new Date(),
      },
    ]);
    await store.endJob({
      jobId: 'a',
      status: 'completed',
      finalMetrics: {},
      errorMessage: '',
      endedAt: new Date(),
    });
    stop();
    await store.createOrGetJob(sampleJob('b'));

    const changes = await store.readChanges({ afterSeq: 0, limit: 100 });
    expect(changes.map((c) => [c.jobId, c.kind])).toEqual([
      ['a', 'job'],
      ['a', 'epoch'],
      ['a', 'batch'],
      ['a', 'batch'],
      ['a', 'artifact'],
      ['a', 'job'],
      ['b', 'job'],
    ]);
    const seqs = changes.map((c) => c.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(await store.headSeq()).toBe(seqs.at(-1));
    // The listener heard the five commits that appended (not the no-op, not after it was removed).
    expect(commits).toBe(5);

    expect(changes[1]!.ref).toBe(0);
    expect((await store.getEpoch('a', 0))?.metrics).toEqual({ accuracy: 0.5 });
    const blocks = await Promise.all(changes.slice(2, 4).map((c) => store.getBatchBlock(c.ref!)));
    expect(blocks.map((b) => [b?.jobId, Number(b?.steps[0])])).toEqual([
      ['a', 0],
      ['a', 10],
    ]);
    expect((await store.getArtifact(changes[4]!.ref!))?.artifactPath).toBe('w.pt');
  });

  it('reads one job in bounded pages after a seq', async () => {
    await store.createOrGetJob(sampleJob('a'));
    await store.createOrGetJob(sampleJob('b'));
    for (let i = 0; i < 5; i++) await store.appendBatchBlocks('a', [block(0, i * 10, 10)]);
    const first = await store.readChanges({ afterSeq: 0, jobId: 'a', limit: 3 });
    expect(first.map((c) => c.kind)).toEqual(['job', 'batch', 'batch']);
    const rest = await store.readChanges({ afterSeq: first.at(-1)!.seq, jobId: 'a', limit: 100 });
    expect(rest.map((c) => c.kind)).toEqual(['batch', 'batch', 'batch']);
    expect(rest.every((c) => c.jobId === 'a')).toBe(true);
  });

  it('points resent with other values: the latest batch change refers to a block holding them', async () => {
    await store.createOrGetJob(sampleJob('a'));
    await store.appendBatchBlocks('a', [block(0, 0, 10)]);
    await store.appendBatchBlocks('a', [{ ...block(0, 0, 10), values: new Float64Array(10).fill(7) }]);
    const batch = (await store.readChanges({ afterSeq: 0, limit: 10 })).filter((c) => c.kind === 'batch');
    expect(batch.length).toBeGreaterThanOrEqual(2);
    const latest = await store.getBatchBlock(batch.at(-1)!.ref!);
    expect([...latest!.values]).toEqual(new Array(10).fill(7));
  });
});

describe('compacting the change feed', () => {
  /** Every change kind, written more than once each: the feed a long-lived job leaves. */
  async function busyJob(jobId: string) {
    await store.createOrGetJob(sampleJob(jobId));
    for (let resend = 0; resend < 3; resend++) {
      for (const epoch of [0, 1]) {
        await store.saveEpoch({
          jobId,
          epoch,
          metrics: { accuracy: 0.5 + resend / 10 },
          columns: { accuracy: 0.5 + resend / 10 },
          timestamp: new Date(),
          best: { epoch, value: 0.5 },
        });
      }
      // The same steps again with other values: the stored block is rewritten or replaced.
      await store.appendBatchBlocks(jobId, [
        { ...block(0, 0, 10), values: new Float64Array(10).fill(resend) },
        block(0, 10 + resend * 10, 10),
      ]);
      await store.putArtifacts(jobId, [
        {
          artifactPath: 'w.pt',
          sizeBytes: 3 + resend,
          sha256: 'ab',
          sourcePath: '',
          storedPath: '/x',
          loggedAt: new Date(),
        },
      ]);
      await store.setMlflowIds(jobId, '1', `run-${resend}`);
    }
    await store.endJob({
      jobId,
      status: 'completed',
      finalMetrics: {},
      errorMessage: '',
      endedAt: new Date(),
    });
  }

  const keyOf = (c: { jobId: string; kind: string; ref: number | null }) => `${c.jobId}/${c.kind}/${c.ref}`;

  /** What a reader resuming after `seq` is told about: each live item's key at its latest seq. */
  async function toldAfter(seq: number): Promise<Map<string, number>> {
    const told = new Map<string, number>();
    for (const c of await store.readChanges({ afterSeq: seq, limit: 10_000 })) {
      const gone =
        (c.kind === 'batch' && !(await store.getBatchBlock(c.ref!))) ||
        (c.kind === 'artifact' && !(await store.getArtifact(c.ref!)));
      if (!gone) told.set(keyOf(c), c.seq);
    }
    return told;
  }

  it('keeps one row per job and kind and per item, and tells a reader resuming from any seq the same', async () => {
    await busyJob('a');
    await busyJob('b');
    const before = await store.readChanges({ afterSeq: 0, limit: 10_000 });
    const head = await store.headSeq();
    const expected = new Map<number, Map<string, number>>();
    for (let seq = 0; seq <= head; seq++) expected.set(seq, await toldAfter(seq));

    // In ranges, as the sidecar walks it.
    let deleted = 0;
    for (let from = 0; from <= head; from += 7)
      deleted += await store.compactChanges({ fromSeq: from, toSeq: from + 7 });
    const after = await store.readChanges({ afterSeq: 0, limit: 10_000 });
    expect(deleted).toBe(before.length - after.length);
    expect(after.length).toBeLessThan(before.length / 2);
    // One row per key, and none of a block or artifact that is gone.
    expect(new Set(after.map(keyOf)).size).toBe(after.length);
    for (const c of after.filter((c) => c.kind === 'batch'))
      expect(await store.getBatchBlock(c.ref!)).toBeDefined();
    for (let seq = 0; seq <= head; seq++)
      expect(await toldAfter(seq), `resuming after ${seq}`).toEqual(expected.get(seq));
    expect(await store.headSeq()).toBe(head);
    // Nothing left to compact.
    expect(await store.compactChanges({ fromSeq: 0, toSeq: head + 1 })).toBe(0);
  });

  it('leaves the rows at and after toSeq alone', async () => {
    await busyJob('a');
    const head = await store.headSeq();
    const tail = await store.readChanges({ afterSeq: head - 5, limit: 100 });
    await store.compactChanges({ fromSeq: 0, toSeq: head - 5 + 1 });
    expect(await store.readChanges({ afterSeq: head - 5, limit: 100 })).toEqual(tail);
    expect(await store.firstSeq()).toBeGreaterThan(0);
    expect(await store.compactChanges({ fromSeq: 10, toSeq: 10 })).toBe(0);
  });
});
