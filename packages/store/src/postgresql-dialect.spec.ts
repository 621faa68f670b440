// The PostgreSQL dialect through a server restart: a call whose connection the server closes fails with a
// connection error (the sidecar answers UNAVAILABLE), the process lives on, and the pool reconnects.
import { startPostgres } from '@training-callbacks/postgres-testing';
import { expect, it } from 'vitest';
import { openStore } from './index.ts';
import { postgresCode } from './postgres-code.ts';
import { sampleJob } from './testing.ts';

it('survives a restart of PostgreSQL under a transaction in flight, and reconnects by itself', async () => {
  await using server = await startPostgres();
  const store = await openStore({ dbPath: server.url });
  try {
    await store.createOrGetJob(sampleJob('j'));
    let holding!: () => void;
    const held = new Promise<void>((resolve) => (holding = resolve));
    // The best-epoch rule runs inside the report's transaction: it holds a checked-out connection
    // while the server goes away (the case that once killed the process with an uncaught 57P01).
    const report = store.saveEpoch({
      jobId: 'j',
      epoch: 0,
      metrics: { accuracy: 0.5 },
      columns: {},
      timestamp: new Date(),
      best: async () => {
        holding();
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        return { epoch: 0, value: 0.5 };
      },
    });
    await held;
    const restarted = server.restart({ downMs: 500 });
    const failure = await report.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(postgresCode(failure)).toMatch(/^(57P01|08006|08003)$/);
    await restarted;
    // The pool replaces the broken connection: the next calls work (the report, resent, is stored).
    let listed: unknown;
    for (let i = 0; i < 20 && listed === undefined; i++) {
      listed = await store
        .listEpochs('j')
        .catch(() => new Promise((resolve) => setTimeout(() => resolve(undefined), 250)));
    }
    await store.saveEpoch({
      jobId: 'j',
      epoch: 0,
      metrics: { accuracy: 0.5 },
      columns: {},
      timestamp: new Date(),
      best: null,
    });
    expect((await store.listEpochs('j')).map((e) => e.epoch)).toEqual([0]);
  } finally {
    await store.close();
  }
});
