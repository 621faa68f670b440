// The pod rehearsal: the training pod of deploy/base run here the way the kubelet runs it (pod.ts) —
// the sidecar from the image's ENTRYPOINT with the manifest's args, env (the MLflow ConfigMap) and
// volumes, as the pod's user; the trainer started only once the sidecar's startup probe passes,
// finding the sidecar, its token and its job id through the manifest's env alone; the readiness and
// liveness probes running at their periods. The trainer reports a job (epochs, batch points,
// checkpoints logged by path from the shared volume) and exits; the sidecar then gets SIGTERM as the
// kubelet sends it to a native sidecar once the main container has exited, and SIGKILL at
// terminationGracePeriodSeconds. The sidecar must exit by itself within the grace period, and every
// epoch, batch point, artifact and the final status must be in the real MLflow server.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createTestDatabase } from '@training-callbacks/postgres-testing';
import { TEST_POSTGRES_ENV } from '@training-callbacks/sidecar/testing';
import { describe, expect, it } from 'vitest';
import { ON_POSTGRES, queryDatabase } from './database.ts';
import { mlflowReader, mlflowUrl, onlyRunOf, sha256, uniqueJobId } from './mlflow-helpers.ts';
import { type Probe, preparePod, runProbe, waitForStartup } from './pod.ts';
import { batchLoss, checkpointBytes, epochMetrics, learningRate } from './pod-workload.ts';

const TRAINER = path.join(import.meta.dirname, 'pod-trainer.ts');
/**
 * The job, reported as fast as the client goes (well under a second): all of it is still in the
 * outbox when the trainer exits, so the drain after SIGTERM has the whole job to deliver — 12 000
 * batch points, 20 epochs, 5 checkpoints. Sized for what MLflow's test server (one worker) ingests on
 * this 2-core machine while other work runs: 20 000 points took the drain 5 s at a load average of 9
 * and 19 s at 17; 60 000 did not fit in the drain (23 s at ≈ 2 300 points/s, the sidecar's two
 * requests in flight all along). A real trainer reports over hours, and what is left at its exit is
 * its last moments (README "Deploy": what the drain can hold).
 */
const EPOCHS = 20;
const STEPS_PER_EPOCH = 300;
const ARTIFACT_EVERY = 4;

const flag = (args: readonly string[], name: string) => args[args.indexOf(name) + 1];

describe('the pod of deploy/base, rehearsed', () => {
  it('starts the trainer after the sidecar is ready; after the trainer exits and SIGTERM, the sidecar drains everything into MLflow and exits within the grace period', async () => {
    const token = randomBytes(32).toString('hex');
    await using pod = await preparePod({
      jobName: uniqueJobId('training'),
      // The cluster's MLflow is the test's server; nothing else of the manifest is changed but, in the
      // PostgreSQL run, the database: a PostgreSQL database of the run's server, as an overlay would name.
      envOverrides: { MLFLOW_TRACKING_URI: mlflowUrl() },
      argOverrides: ON_POSTGRES ? { '--db': await createTestDatabase(process.env[TEST_POSTGRES_ENV]!) } : {},
      secrets: { 'training-callbacks-tokens': { tokens: `write ${token}\n`, 'trainer-token': token } },
    });
    const { sidecar, trainer } = pod;
    // Wired as the manifest says: the trainer's address is the sidecar's --listen, both mount the same
    // shared volume, the trainer's token file holds a token of the sidecar's token file.
    expect(trainer.env.TRAINING_CALLBACKS_ADDRESS).toBe(flag(sidecar.args, '--listen'));
    const sharedMount = trainer.spec.volumeMounts!.find((m) => m.name === 'shared')!.mountPath;
    expect(trainer.hostPath(sharedMount)).toBe(sidecar.hostPath(flag(sidecar.args, '--artifact-root')!));
    expect(trainer.env.TRAINING_CALLBACKS_JOB_ID).toBe(pod.jobName);
    // The sidecar's database: the emptyDir's SQLite file, or the PostgreSQL database.
    const database = sidecar.hostPath(flag(sidecar.args, '--db')!);

    const sidecarProcess = pod.startSidecar();
    await using _sidecar = sidecarProcess;
    const probes = sidecar.spec as { startupProbe: Probe; readinessProbe: Probe; livenessProbe: Probe };
    const startupMs = await waitForStartup(sidecar, probes.startupProbe, sidecarProcess);
    const readiness = runProbe(sidecar, probes.readinessProbe);
    const liveness = runProbe(sidecar, probes.livenessProbe);

    const trainerProcess = pod.startTrainer([
      process.execPath,
      '--conditions=@training-callbacks/source',
      TRAINER,
      trainer.hostPath(sharedMount),
      String(EPOCHS),
      String(STEPS_PER_EPOCH),
      String(ARTIFACT_EVERY),
    ]);
    await using _trainer = trainerProcess;
    const trainerCode = await Promise.race([
      trainerProcess.exited,
      new Promise((r) => setTimeout(() => r('still running after 240 s'), 240_000)),
    ]);
    expect(trainerCode, trainerProcess.output.join('\n')).toBe(0);
    const done = JSON.parse(trainerProcess.output.find((line) => line.includes('"trainer_done"'))!) as {
      artifacts: number;
      accepted: number;
      losses: Record<string, unknown>;
    };
    const points = EPOCHS * STEPS_PER_EPOCH * 2;
    expect(done.accepted).toBe(points);

    // The kubelet: the main container has exited, so the native sidecar gets SIGTERM, and SIGKILL
    // when terminationGracePeriodSeconds have passed.
    const backlog = (await queryDatabase<{ n: number }>(database, 'select count(*) n from outbox_item'))[0]!
      .n;
    expect(backlog, 'nothing left for the drain to do: the rehearsal would prove nothing').toBeGreaterThan(0);
    // The kubelet stops liveness probes of a terminating pod; readiness goes on.
    const live = await liveness.stop();
    const sigtermAt = Date.now();
    sidecarProcess.child.kill('SIGTERM');
    let killed = false;
    const watchdog = setTimeout(() => {
      killed = true;
      sidecarProcess.child.kill('SIGKILL');
    }, pod.graceSeconds * 1000);
    const sidecarCode = await sidecarProcess.exited;
    clearTimeout(watchdog);

    const exitMs = Date.now() - sigtermAt;
    const ready = await readiness.stop();
    const readyBeforeSigterm = ready.records.filter((r) => r.at < sigtermAt);
    const events = sidecarProcess.output.flatMap((line) => {
      try {
        return [JSON.parse(line) as { event?: string; msg?: string }];
      } catch {
        return [];
      }
    });
    const drain = events.find(
      (e) => e.event === 'shutdown_drained' || e.event === 'shutdown_drain_incomplete',
    );
    console.log(
      `pod rehearsal: startup probe passed after ${startupMs} ms; ${points} batch points, ${EPOCHS} epochs, ` +
        `${done.artifacts} checkpoints; ${backlog} outbox item(s) at SIGTERM; sidecar exited ${sidecarCode} ` +
        `${exitMs} ms after SIGTERM (grace ${pod.graceSeconds} s): ${drain?.msg}; before SIGTERM readiness probes ` +
        `failed ${readyBeforeSigterm.filter((r) => !r.ok).length}/${readyBeforeSigterm.length}, liveness ` +
        `${live.records.filter((r) => !r.ok).length}/${live.records.length}; after it readiness answered ` +
        `${ready.records
          .filter((r) => r.at >= sigtermAt)
          .map((r) => r.detail.split('\n')[0])
          .join(' | ')}`,
    );
    expect(killed, 'the sidecar was still running at the end of the grace period (SIGKILL)').toBe(false);
    expect(sidecarCode, sidecarProcess.output.slice(-20).join('\n')).toBe(0);
    expect(drain?.event, drain?.msg).toBe('shutdown_drained');
    expect(events.at(-1)?.event).toBe('stopped');
    // The kubelet would not have restarted the sidecar while the trainer ran.
    expect(live.tripped, JSON.stringify(live.tripped)).toBeUndefined();
    expect(done.losses).toMatchObject({ droppedPoints: 0, refusedPoints: 0, failedWrites: 0 });
    const left = (await queryDatabase<{ n: number }>(database, 'select count(*) n from outbox_item'))[0]!.n;
    expect(left).toBe(0);

    // Everything is in MLflow, read back through its REST API.
    const mlflow = mlflowReader();
    try {
      const run = await onlyRunOf(mlflow, pod.jobName);
      expect(run.info.status).toBe('FINISHED');
      const missing: string[] = [];
      const expectSeries = async (key: string, steps: number[], value: (step: number) => number) => {
        const history = await mlflow.getMetricHistory(run.info.runId, key);
        const got = new Map(history.map((m) => [m.step, m.value]));
        const absent = steps.filter((s) => !got.has(s));
        const wrong = steps.filter((s) => got.has(s) && Math.abs(got.get(s)! - value(s)) > 1e-9);
        if (absent.length || wrong.length || history.length !== steps.length)
          missing.push(
            `${key}: ${absent.length} of ${steps.length} steps missing (first ${absent.slice(0, 5).join(', ')}), ` +
              `${wrong.length} with a wrong value, ${history.length} points in all`,
          );
      };
      const epochs = Array.from({ length: EPOCHS }, (_, e) => e);
      for (const key of ['accuracy', 'train_loss', 'val_loss'] as const)
        await expectSeries(key, epochs, (e) => epochMetrics(e)[key]);
      const steps = Array.from({ length: EPOCHS * STEPS_PER_EPOCH }, (_, s) => s);
      await expectSeries('batch/train_loss', steps, batchLoss);
      await expectSeries('batch/learning_rate', steps, learningRate);
      await expectSeries('final_accuracy', [EPOCHS - 1], () => epochMetrics(EPOCHS - 1).accuracy);
      const listed = await mlflow.listArtifacts(run.info.runId, 'checkpoints');
      const wanted = epochs.filter((e) => e % ARTIFACT_EVERY === ARTIFACT_EVERY - 1);
      expect(done.artifacts).toBe(wanted.length);
      for (const e of wanted) {
        const artifactPath = `checkpoints/epoch-${e}.pt`;
        if (!listed.some((f) => f.path === artifactPath)) {
          missing.push(`artifact ${artifactPath} missing`);
          continue;
        }
        const back = await mlflow.downloadArtifact(run.info.artifactUri, artifactPath);
        if (sha256(back) !== sha256(checkpointBytes(e))) missing.push(`artifact ${artifactPath} differs`);
      }
      expect(missing, `not in MLflow after the sidecar exited:\n${missing.join('\n')}`).toEqual([]);
    } finally {
      await mlflow.close();
    }
  }, 400_000);
});
