// Two services over one database file stand for two sidecars serving the same job (a retry that lands
// on another replica): what one sidecar remembers must not let a report in that the database refuses.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { Status } from '@training-callbacks/grpc-adapter';
import { EndEpochRequestSchema, EndTrainingRequestSchema, TrainingOutcome } from '@training-callbacks/proto';
import { openStore, type Store } from '@training-callbacks/store';
import { sampleJob } from '@training-callbacks/store/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createArtifactFiles } from '../artifacts.ts';
import { createFailureMapper } from '../failure-status.ts';
import { createTrainingCallbacksService } from '../service.ts';

let dir: string;
let dbPath: string;
const stores: Store[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'shared-database-spec-'));
  dbPath = join(dir, 'training-callbacks.sqlite');
});

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One sidecar's service: its own store connection and caches, the shared file. */
async function sidecar() {
  const store = await openStore({ dbPath });
  stores.push(store);
  const artifacts = createArtifactFiles({ store: join(dir, 'artifacts'), roots: [dir], database: dbPath });
  const { handlers } = createTrainingCallbacksService({ store, artifacts, log: () => {}, bootId: '' });
  return { store, handlers };
}

const call = { peer: 'test', signal: new AbortController().signal } as never;
const endEpoch = (epoch: number, accuracy: number) =>
  create(EndEpochRequestSchema, { jobId: 'job-s', epoch, metrics: { accuracy }, sessionId: 's1' });

describe('two sidecars on one database', () => {
  it('refuses an epoch reported to one sidecar after the other ended the job', async () => {
    const a = await sidecar();
    const b = await sidecar();
    await a.store.createOrGetJob(sampleJob('job-s'));
    // A serves epoch 0 and now remembers the job as running.
    await a.handlers.endEpoch(endEpoch(0, 0.5), call);
    await b.handlers.endTraining(
      create(EndTrainingRequestSchema, { jobId: 'job-s', outcome: TrainingOutcome.COMPLETED }),
      call,
    );
    const refused = await a.handlers.endEpoch(endEpoch(1, 0.9), call).catch((error: unknown) => error);
    const mapped = createFailureMapper({ dbPath, artifactStore: dir })(refused);
    expect(mapped?.code).toBe(Status.FAILED_PRECONDITION);
    expect(mapped?.message).toMatch(/has ended \(completed\); reports after the end are refused/);
    expect((await b.store.listEpochs('job-s')).map((e) => e.epoch)).toEqual([0]);
    expect(await b.store.getJob('job-s')).toMatchObject({ status: 'completed', bestEpoch: 0 });
  });
});
