// "Acknowledged = committed": SIGKILL the sidecar right after acknowledged reports, start it again on
// the same database, and every acknowledged epoch and batch block must be there.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient } from '@training-callbacks/grpc-adapter';
import { TaskType, TrainingCallbacks } from '@training-callbacks/proto';
import { startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { expect, it } from 'vitest';
import { queryDatabase } from './database.ts';

it('keeps every acknowledged epoch and batch point across a SIGKILL', async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'tc-durability-'));
  const acknowledged: number[] = [];
  {
    await using sidecar = await startSidecarProcess({ dataDir, args: ['--quiet'] });
    const client = createClient(TrainingCallbacks, sidecar.address);
    await client.beginTraining({ jobId: 'crash-me', taskType: TaskType.IMAGE_CLASSIFICATION });
    // Fire many reports concurrently, so some are in flight when the kill lands.
    const inFlight = Array.from({ length: 200 }, (_, epoch) =>
      client
        .endEpoch({
          jobId: 'crash-me',
          epoch,
          metrics: { accuracy: epoch / 200, train_loss: 1 / (epoch + 1) },
        })
        .then(
          () => acknowledged.push(epoch),
          () => undefined,
        ),
    );
    const batch = client.reportBatchMetrics([
      {
        jobId: 'crash-me',
        blocks: [{ epoch: 0, names: ['loss'], steps: [1n, 2n, 3n], values: [0.3, 0.2, Number.NaN] }],
      },
    ]);
    await batch;
    // Kill as soon as the first fifty epochs are acknowledged, with the rest still in flight.
    while (acknowledged.length < 50) await new Promise((r) => setTimeout(r, 1));
    expect(await sidecar.stop('SIGKILL')).toBe('SIGKILL');
    await Promise.all(inFlight);
    client.close();
  }
  expect(acknowledged.length).toBeGreaterThanOrEqual(50);

  await using restarted = await startSidecarProcess({ dataDir, args: ['--quiet'] });
  const client = createClient(TrainingCallbacks, restarted.address);
  // ListEpochs pages (100 epochs a page by default): read every page.
  const epochs = [];
  let pageToken = '';
  do {
    const page = await client.listEpochs({ jobId: 'crash-me', pageToken });
    epochs.push(...page.epochs);
    pageToken = page.nextPageToken;
  } while (pageToken);
  const stored = new Set(epochs.map((e) => e.epoch));
  for (const epoch of acknowledged)
    expect(stored.has(epoch), `acknowledged epoch ${epoch} was lost`).toBe(true);
  for (const e of epochs) expect(e.metrics.accuracy).toBe(e.epoch / 200);

  const rows = await queryDatabase<{ epoch: number }>(
    restarted.dbPath,
    'select epoch from training_metric where job_id = ?',
    'crash-me',
  );
  expect(new Set(rows.map((r) => r.epoch))).toEqual(stored);

  const { blocks } = await client.listBatchMetrics({ jobId: 'crash-me' });
  expect(blocks).toHaveLength(1);
  expect(blocks[0]!.steps).toEqual([1n, 2n, 3n]);
  expect(blocks[0]!.values.slice(0, 2)).toEqual([0.3, 0.2]);
  expect(blocks[0]!.values[2]).toBeNaN();

  // The job is still running and accepts the next epoch after the restart.
  const next = await client.endEpoch({ jobId: 'crash-me', epoch: 200, metrics: { accuracy: 0.999 } });
  expect(next.isBest).toBe(true);
  client.close();
});
