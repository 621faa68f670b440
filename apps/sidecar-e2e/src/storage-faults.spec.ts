// Failures of the machine under the sidecar, for real: a full file system (a small tmpfs this test
// mounts), a database another process keeps locked, and undecodable request bytes. Each must answer
// its status from the one failure table (never INTERNAL), readiness must follow the database while
// liveness does not, and nothing acknowledged may be lost.
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { createClient, type RpcError } from '@training-callbacks/grpc-adapter';
import { TaskType, TrainingCallbacks } from '@training-callbacks/proto';
import { startSidecarProcess } from '@training-callbacks/sidecar/testing';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { fillUp, mountTmpfs, unmount } from './filesystems.ts';
import { healthOf } from './health.ts';

/** 200 metrics per epoch: each EndEpoch writes a few KB, so the small file system fills quickly. */
function bigMetrics(epoch: number): Record<string, number> {
  const metrics: Record<string, number> = { accuracy: epoch / 1000 };
  for (let i = 0; i < 200; i++) metrics[`custom_metric_${String(i).padStart(3, '0')}`] = epoch + i / 1000;
  return metrics;
}

/** The four answers a kubelet's probes would get: gRPC readiness and liveness, /readyz and /livez. */
const ALL_WELL = { readiness: 'SERVING', readyz: 200, liveness: 'SERVING', livez: 200 };

function probesOf(httpAddress: string, health: ReturnType<typeof healthOf>) {
  const probes = {
    lastReadyzBody: '',
    async read() {
      const [readiness, liveness, readyz, livez] = await Promise.all([
        health.status('readiness'),
        health.status('liveness'),
        fetch(`http://${httpAddress}/readyz`),
        fetch(`http://${httpAddress}/livez`),
      ]);
      probes.lastReadyzBody = await readyz.text();
      await livez.text();
      return { readiness, readyz: readyz.status, liveness, livez: livez.status };
    },
  };
  return probes;
}

const mounted = mountTmpfs('24m');
const canMount = 'dir' in mounted;
afterAll(() => unmount(mounted));

describe('a full file system (a real tmpfs)', () => {
  it.skipIf(!canMount)(
    'answers UNAVAILABLE naming the database, turns not ready (readiness, /readyz) but stays live (liveness, /livez), and recovers by itself once space is freed, losing nothing acknowledged',
    async () => {
      const dir = (mounted as { dir: string }).dir;
      const dbPath = path.join(dir, 'db', 'training-callbacks.sqlite');
      const acknowledged = new Map<number, number>();
      {
        await using sidecar = await startSidecarProcess({ dataDir: dir, dbPath, args: ['--quiet'] });
        const client = createClient(TrainingCallbacks, sidecar.address);
        const health = healthOf(sidecar.address);
        const probes = probesOf(sidecar.httpAddress!, health);
        await client.beginTraining({ jobId: 'full-disk', taskType: TaskType.IMAGE_CLASSIFICATION });
        for (let epoch = 0; epoch < 5; epoch++) {
          await client.endEpoch({ jobId: 'full-disk', epoch, metrics: bigMetrics(epoch) });
          acknowledged.set(epoch, epoch / 1000);
        }
        expect(await health.status()).toBe('SERVING');
        expect(await probes.read()).toEqual(ALL_WELL);

        const ballast = fillUp(dir);
        let refused: RpcError | undefined;
        let epoch = 5;
        for (; epoch < 5000 && !refused; epoch++) {
          try {
            await client.endEpoch({ jobId: 'full-disk', epoch, metrics: bigMetrics(epoch) });
            acknowledged.set(epoch, epoch / 1000);
          } catch (error) {
            refused = error as RpcError;
          }
        }
        const refusedEpoch = epoch - 1;
        expect(refused, 'no write was refused on a full file system').toBeDefined();
        expect(refused!.codeName).toBe('UNAVAILABLE');
        expect(refused!.message).toContain(dbPath);
        expect(refused!.message).toMatch(/full/);
        expect(refused!.message).toMatch(/free space/i);
        // An upload to the full disk: the same status, naming the artifact store's file.
        const weights = Buffer.alloc(256 * 1024, 7);
        const header = {
          jobId: 'full-disk',
          artifactPath: 'weights.bin',
          sizeBytes: BigInt(weights.length),
          sha256: createHash('sha256').update(weights).digest('hex'),
        };
        const upload = (await client
          .uploadArtifact([
            { part: { case: 'header', value: header } },
            { part: { case: 'chunk', value: weights } },
          ])
          .catch((e: unknown) => e)) as RpcError;
        expect(upload.codeName, upload.message).toBe('UNAVAILABLE');
        expect(upload.message).toMatch(/full/);
        expect(upload.message).toContain(path.join(dir, 'db', 'artifacts'));

        const tookNotServing = await health.waitFor('NOT_SERVING', 10_000);
        expect(await health.status('trainingcallbacks.v1.TrainingCallbacks')).toBe('NOT_SERVING');
        // What Kubernetes probes: not ready (no traffic, no restart), still alive (a restart would
        // not free the disk).
        const full = await probes.read();
        expect(full).toEqual({ readiness: 'NOT_SERVING', readyz: 503, liveness: 'SERVING', livez: 200 });
        expect(probes.lastReadyzBody).toMatch(/^not ready: .*(free|full)/);
        console.log(
          `full disk: refused at epoch ${refusedEpoch}; NOT_SERVING after ${tookNotServing} ms\n` +
            `  EndEpoch: ${refused!.codeName} ${refused!.message}\n  UploadArtifact: ${upload.codeName} ${upload.message}`,
        );

        for (const file of ballast) rmSync(file);
        const tookServing = await health.waitFor('SERVING', 15_000, 'readiness');
        console.log(`space freed: SERVING again after ${tookServing} ms`);
        expect(await probes.read()).toEqual(ALL_WELL);
        // The refused epoch, resent, and later ones are accepted.
        for (let e = refusedEpoch; e < refusedEpoch + 5; e++) {
          await client.endEpoch({ jobId: 'full-disk', epoch: e, metrics: bigMetrics(e) });
          acknowledged.set(e, e / 1000);
        }
        client.close();
        health.close();
        expect(await sidecar.stop('SIGKILL')).toBe('SIGKILL');
      }
      // After a SIGKILL the sidecar starts on the same file (its integrity check passes) and every
      // acknowledged epoch is there, with its value.
      await using restarted = await startSidecarProcess({ dataDir: dir, dbPath, args: ['--quiet'] });
      const client = createClient(TrainingCallbacks, restarted.address);
      const { epochs } = await client.listEpochs({ jobId: 'full-disk' });
      const stored = new Map(epochs.map((e) => [e.epoch, e.metrics.accuracy]));
      for (const [epoch, accuracy] of acknowledged) {
        expect(stored.get(epoch), `acknowledged epoch ${epoch} was lost`).toBe(accuracy);
      }
      client.close();
    },
  );
});

describe('a database another process keeps locked', () => {
  it('answers UNAVAILABLE after the bounded busy wait (not INTERNAL), NOT_SERVING meanwhile, and writes again once the lock is gone', async () => {
    await using sidecar = await startSidecarProcess({ args: ['--quiet'] });
    const client = createClient(TrainingCallbacks, sidecar.address);
    const health = healthOf(sidecar.address);
    await client.beginTraining({ jobId: 'locked', taskType: TaskType.IMAGE_CLASSIFICATION });

    // Another process's writer (as a backup tool or a stray sqlite3 shell would) holds the write lock.
    const other = new Database(sidecar.dbPath);
    other.exec('BEGIN IMMEDIATE');
    const started = Date.now();
    const error = (await client
      .endEpoch({ jobId: 'locked', epoch: 0, metrics: { accuracy: 0.5 } })
      .catch((e: unknown) => e)) as RpcError;
    const waited = Date.now() - started;
    expect(error.codeName).toBe('UNAVAILABLE');
    expect(error.message).toContain(sidecar.dbPath);
    expect(error.message).toMatch(/locked/);
    // The busy wait is bounded (busy_timeout, 5 s), not forever and not an instant refusal.
    expect(waited).toBeGreaterThanOrEqual(4000);
    expect(waited).toBeLessThan(15_000);
    await health.waitFor('NOT_SERVING', 15_000);

    other.exec('ROLLBACK');
    other.close();
    await health.waitFor('SERVING', 15_000);
    await client.endEpoch({ jobId: 'locked', epoch: 0, metrics: { accuracy: 0.5 } });
    const { epochs } = await client.listEpochs({ jobId: 'locked' });
    expect(epochs.map((e) => e.epoch)).toEqual([0]);
    client.close();
    health.close();
  });
});
