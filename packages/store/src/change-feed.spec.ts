import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type NewJob, openStore, type Store } from './index.ts';

let dir: string;
let store: Store;

function newJob(jobId: string): NewJob {
  return {
    jobId,
    task: 'image_classification',
    framework: 'timm',
    modelName: 'resnet50',
    modelConfig: {},
    trainingConfig: {},
    params: {},
    customMetrics: [],
    startEpoch: 0,
    primaryMetric: 'accuracy',
  };
}

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
    await store.createOrGetJob(newJob('a'));
    await store.createOrGetJob(newJob('a')); // exists: nothing written, nothing recorded
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
    await store.createOrGetJob(newJob('b'));

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
    await store.createOrGetJob(newJob('a'));
    await store.createOrGetJob(newJob('b'));
    for (let i = 0; i < 5; i++) await store.appendBatchBlocks('a', [block(0, i * 10, 10)]);
    const first = await store.readChanges({ afterSeq: 0, jobId: 'a', limit: 3 });
    expect(first.map((c) => c.kind)).toEqual(['job', 'batch', 'batch']);
    const rest = await store.readChanges({ afterSeq: first.at(-1)!.seq, jobId: 'a', limit: 100 });
    expect(rest.map((c) => c.kind)).toEqual(['batch', 'batch', 'batch']);
    expect(rest.every((c) => c.jobId === 'a')).toBe(true);
  });

  it('points resent with other values: the latest batch change refers to a block holding them', async () => {
    await store.createOrGetJob(newJob('a'));
    await store.appendBatchBlocks('a', [block(0, 0, 10)]);
    await store.appendBatchBlocks('a', [{ ...block(0, 0, 10), values: new Float64Array(10).fill(7) }]);
    const batch = (await store.readChanges({ afterSeq: 0, limit: 10 })).filter((c) => c.kind === 'batch');
    expect(batch.length).toBeGreaterThanOrEqual(2);
    const latest = await store.getBatchBlock(batch.at(-1)!.ref!);
    expect([...latest!.values]).toEqual(new Array(10).fill(7));
  });
});
