// Verdicts reach MLflow (docs/verdicts.md), against the run's real MLflow server: a partition longer
// than the lease (the TCP fault proxy between trainer and sidecar) ends the run FAILED at the last sign
// of life with the cause in `training_callbacks.end_cause`; the healed trainer's heartbeat revives it
// (RUNNING again) and its EndTraining ends it FINISHED. A sidecar stopped (SIGTERM) after its trainer
// died gives the verdict, and MLflow has the FAILED run, before it exits.
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { startTcpFaultProxy } from '@training-callbacks/mlflow-bridge/testing';
import { EndCause, JobStatus } from '@training-callbacks/proto';
import { describe, expect, it } from 'vitest';
import { queryDatabase } from './database.ts';
import {
  getJob,
  mlflowReader,
  mlflowUrl,
  onlyRunOf,
  startMirroredSidecar,
  uniqueJobId,
  until,
  waitInSync,
} from './mlflow-helpers.ts';
import { startTrainer } from './trainer-processes.ts';

const END_CAUSE_TAG = 'training_callbacks.end_cause';

describe('verdicts in MLflow', () => {
  it('a partition longer than the lease: FAILED with the cause, RUNNING again when it heals, then FINISHED', async () => {
    const { sidecar, rpc } = await startMirroredSidecar(mlflowUrl(), {
      args: ['--quiet', '--trainer-lease', '3'],
    });
    await using _sidecar = sidecar;
    await using proxy = await startTcpFaultProxy(sidecar.address);
    const jobId = uniqueJobId('partitioned');
    const { trainer, send } = await startTrainer(proxy.address, jobId, [
      '--boot-id',
      '00000000-0000-4000-8000-00000000000a',
    ]);
    await using _trainer = trainer;
    send('epoch 0');
    await trainer.waitFor(/^reported /);
    await waitInSync(rpc, jobId);
    const mlflow = mlflowReader();
    expect((await onlyRunOf(mlflow, jobId)).info.status).toBe('RUNNING');

    // The cable is pulled: nothing gets through, nothing is refused either.
    await proxy.setMode('blackhole');
    await until(
      async () => (await getJob(rpc, jobId)).endCause === EndCause.LEASE_EXPIRED,
      20_000,
      'the lease verdict',
    );
    const lost = await waitInSync(rpc, jobId);
    expect(lost.status).toBe(JobStatus.FAILED);
    const failed = await onlyRunOf(mlflow, jobId);
    expect(failed.info.status).toBe('FAILED');
    expect(failed.info.endTime).toBe(timestampDate(lost.lastSeenAt!).getTime());
    expect(failed.data.tags[END_CAUSE_TAG]).toBe(lost.endReason);
    expect(lost.endReason).toMatch(/^lost: no heartbeat from the trainer for \d+ s; last sign of life at /);

    // Healed: the trainer's next heartbeat revives the job and its run.
    await proxy.setMode('pass');
    await trainer.waitFor(/^heartbeat \{"status":"RUNNING","revived":true\}$/, 30_000);
    const revived = await waitInSync(rpc, jobId);
    expect(revived).toMatchObject({
      status: JobStatus.RUNNING,
      endCause: EndCause.UNSPECIFIED,
      endReason: '',
    });
    const running = await onlyRunOf(mlflow, jobId);
    expect(running.info.status).toBe('RUNNING');
    expect(running.data.tags[END_CAUSE_TAG]).toMatch(
      new RegExp(`^revived at \\d{4}-.+Z after: ${lost.endReason.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`),
    );

    send('epoch 1');
    await trainer.waitFor(/^reported \{"epoch":1\}/);
    send('end');
    expect((await trainer.waitFor(/^ended (.*)$/))[1]).toContain('COMPLETED');
    const ended = await waitInSync(rpc, jobId);
    expect(ended).toMatchObject({ status: JobStatus.COMPLETED, endCause: EndCause.REPORTED });
    const finished = await onlyRunOf(mlflow, jobId);
    expect(finished.info.status).toBe('FINISHED');
    expect(finished.info.endTime).toBe(timestampDate(ended.endedAt!).getTime());
    // Both epochs reached the one run: the revival continued it, no second run was made.
    expect(
      (await mlflow.getMetricHistory(finished.info.runId, 'accuracy')).map((m) => m.step).sort(),
    ).toEqual([0, 1]);
    rpc.close();
  });

  it('SIGTERM after the trainer died: the verdict and the FAILED run reach MLflow before the sidecar exits', async () => {
    const { sidecar, rpc } = await startMirroredSidecar(mlflowUrl(), {
      args: ['--quiet', '--trainer-lease', '600', '--shutdown-drain', '20'],
    });
    await using _sidecar = sidecar;
    const jobId = uniqueJobId('trainer-gone');
    const { trainer, begun, send } = await startTrainer(sidecar.address, jobId);
    await using _trainer = trainer;
    expect(begun.processWatched).toBe(true);
    send('epoch 0');
    await trainer.waitFor(/^reported /);
    await waitInSync(rpc, jobId);
    rpc.close();
    // Kubernetes stops a native sidecar after its trainer exited: the trainer first, then SIGTERM.
    trainer.child.kill('SIGKILL');
    await trainer.exited;
    expect(await sidecar.stop('SIGTERM')).toBe(0);

    const [row] = await queryDatabase<{ status: string; end_cause: string; end_reason: string }>(
      sidecar.dbPath,
      'select status, end_cause, end_reason from training_job where job_id = ?',
      jobId,
    );
    expect(row).toMatchObject({ status: 'failed', end_cause: 'process_exited' });
    expect(row!.end_reason).toMatch(new RegExp(`^lost: trainer process ${begun.pid} on host .+ exited`));
    expect(
      (await queryDatabase<{ n: number }>(sidecar.dbPath, 'select count(*) n from outbox_item'))[0]!.n,
    ).toBe(0);
    const run = await onlyRunOf(mlflowReader(), jobId);
    expect(run.info.status).toBe('FAILED');
    expect(run.data.tags[END_CAUSE_TAG]).toBe(row!.end_reason);
  });
});
