// A real Prometheus (Debian's package; tools/setup/system-packages.sh installs it) scrapes the sidecar's
// /metrics every second while a job runs, and the series are read back through Prometheus' HTTP API:
// ingested points, the outbox depth (MLflow configured but unreachable, so the outbox fills), and the
// RPC latency histogram as a quantile.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient } from '@training-callbacks/grpc-adapter';
import { freePort } from '@training-callbacks/mlflow-bridge/testing';
import { TaskType, TrainingCallbacks } from '@training-callbacks/proto';
import { startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { expect, it } from 'vitest';
import { spawnLogged } from './processes.ts';

function prometheusBinary(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v prometheus'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(
      'prometheus is not installed: run tools/setup/system-packages.sh (as root) or apt-get install prometheus',
    );
  }
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

it('a real Prometheus scrapes /metrics while a job runs; the series read back through its HTTP API', async () => {
  const binary = prometheusBinary();
  const dir = await mkdtemp(path.join(tmpdir(), 'tc-prometheus-'));
  // MLflow configured at a port nobody listens on: every write is queued and stays queued.
  const nobody = await freePort();
  await using sidecar = await startSidecarProcess({
    args: ['--quiet'],
    env: { MLFLOW_TRACKING_URI: `http://127.0.0.1:${nobody}` },
  });
  try {
    await writeFile(
      path.join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        'scrape_configs:',
        '  - job_name: training-callbacks',
        `    static_configs: [{ targets: ['${sidecar.httpAddress}'] }]`,
        '',
      ].join('\n'),
    );
    const webPort = await freePort();
    await using prometheus = spawnLogged(binary, [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${webPort}`,
    ]);
    await prometheus.waitFor(/Server is ready to receive web requests/, 60_000);
    const api = `http://127.0.0.1:${webPort}/api/v1`;
    const query = async (promql: string): Promise<Sample[]> => {
      const answer = (await (await fetch(`${api}/query?query=${encodeURIComponent(promql)}`)).json()) as {
        status: string;
        data: { result: Sample[] };
      };
      expect(answer.status).toBe('success');
      return answer.data.result;
    };
    const until = async (promql: string, check: (samples: Sample[]) => boolean) => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const samples = await query(promql);
        if (check(samples)) return samples;
        if (Date.now() > deadline) throw new Error(`${promql}: ${JSON.stringify(samples)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    };

    // The job, while Prometheus scrapes.
    const client = createClient(TrainingCallbacks, sidecar.address);
    await client.beginTraining({ jobId: 'scraped', taskType: TaskType.IMAGE_CLASSIFICATION });
    const EPOCHS = 20;
    for (let epoch = 0; epoch < EPOCHS; epoch++) {
      await client.endEpoch({ jobId: 'scraped', epoch, metrics: { accuracy: 0.5 + epoch / 100 } });
      const steps = Array.from({ length: 250 }, (_, i) => BigInt(epoch * 250 + i));
      await client.reportBatchMetrics([
        {
          jobId: 'scraped',
          blocks: [{ epoch, names: ['loss'], steps, values: steps.map((s) => 1 / (1 + Number(s))) }],
        },
      ]);
      await new Promise((r) => setTimeout(r, 100));
    }
    client.close();

    const value = (samples: Sample[]) => Number(samples[0]?.value[1]);
    await until('training_callbacks_batch_points_ingested_total', (s) => value(s) === EPOCHS * 250);
    await until('training_callbacks_epochs_ingested_total', (s) => value(s) === EPOCHS);
    // Begun + one entry per epoch + one per batch block + the record of batch `loss` → `train_loss`
    // (metric_sources), none delivered.
    await until('training_callbacks_outbox_pending_items', (s) => value(s) === 1 + 2 * EPOCHS + 1);
    const oldest = value(await query('training_callbacks_outbox_oldest_pending_timestamp_seconds'));
    expect(oldest).toBeGreaterThan(Date.now() / 1000 - 300);
    const calls = await until(
      'training_callbacks_rpc_duration_seconds_count{service="trainingcallbacks.v1.TrainingCallbacks",method="EndEpoch"}',
      (s) => value(s) === EPOCHS,
    );
    expect(calls).toHaveLength(1);
    const p99 = await until(
      // Over the whole run (the cumulative buckets), not a rate window the calls may have left already.
      'histogram_quantile(0.99, sum by (le) (training_callbacks_rpc_duration_seconds_bucket{method="EndEpoch"}))',
      (s) => s.length === 1 && Number.isFinite(value(s)),
    );
    expect(value(p99)).toBeGreaterThan(0);
    expect(value(p99)).toBeLessThan(10);
    // The MLflow thread's failed attempts arrive too, by outcome.
    await until('training_callbacks_mlflow_requests_total{outcome="unreachable"}', (s) => value(s) >= 1);
    // Every series Prometheus holds from the sidecar: none has a label naming the job.
    const series = (await (
      await fetch(`${api}/series?match[]=${encodeURIComponent('{job="training-callbacks"}')}`)
    ).json()) as { data: Array<Record<string, string>> };
    expect(series.data.length).toBeGreaterThan(20);
    for (const labels of series.data) expect(Object.values(labels)).not.toContain('scraped');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
