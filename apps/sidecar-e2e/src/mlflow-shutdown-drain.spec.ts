// SIGTERM with a non-empty outbox: the sidecar keeps mirroring for at most --shutdown-drain seconds;
// when it cannot finish in time it exits on time anyway, says what is left and keeps it in the
// database for the next start. (The drain that empties the outbox: mlflow-pod-rehearsal.spec.ts.)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startTcpFaultProxy } from '@training-callbacks/mlflow-bridge/testing';
import { describe, expect, it } from 'vitest';
import { ON_POSTGRES, queryDatabase } from './database.ts';
import { mlflowUrl, startMirroredSidecar, TaskType, uniqueJobId } from './mlflow-helpers.ts';

describe('the shutdown drain', () => {
  it('is bounded: with MLflow away it exits after --shutdown-drain, names what is left and keeps it', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'tc-drain-'));
    try {
      await using proxy = await startTcpFaultProxy(mlflowUrl());
      await proxy.setMode('refuse');
      const { sidecar, rpc } = await startMirroredSidecar(proxy.url, {
        dataDir,
        args: ['--quiet', '--shutdown-drain', '3'],
      });
      await using _ = sidecar;
      const jobId = uniqueJobId('undrained');
      await rpc.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
      await rpc.endEpoch({ jobId, epoch: 0, metrics: { accuracy: 0.5 } });
      rpc.close();
      const stopAt = Date.now();
      expect(await sidecar.stop('SIGTERM')).toBe(0);
      const stopMs = Date.now() - stopAt;
      // The drain's 3 s include the time kept back to stop the thread and close the database.
      expect(stopMs).toBeGreaterThanOrEqual(900);
      expect(stopMs).toBeLessThan(6000);
      expect(sidecar.output.join('\n')).toMatch(
        new RegExp(
          `MLflow: 2 outbox item\\(s\\) not delivered within the 3 s shutdown drain; they stay in ${ON_POSTGRES ? 'postgres://\\S+' : '.*training-callbacks\\.sqlite'} and are sent when a sidecar starts on it again`,
        ),
      );
      expect(
        (await queryDatabase<{ n: number }>(sidecar.dbPath, 'select count(*) n from outbox_item'))[0]!.n,
      ).toBe(2);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
