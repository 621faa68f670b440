// The sidecar's footprint as deploy/base runs it, for the manifest's requests and limits. Run:
//   npm run bench:footprint            (add `-- --quick` for a smoke run)
// Prints a markdown section (it does not write docs/benchmarks.md).
//
// The built sidecar with the manifest's flags (HTTP listener, health-only port, tokens, JSON logs,
// --shutdown-drain) mirroring into a real MLflow server (one worker, nice 19: it stands for a server
// elsewhere), measured three ways: idle (after start-up settled), a training job at a steady pace
// (one TS client: 1 000 steps/s × 10 metrics, EndEpoch every second) and a burst (100 k points/s) —
// the sidecar's CPU (/proc/<pid>/stat, all threads) and RSS sampled every 250 ms (peak).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { TrainingCallbacks } from '@training-callbacks/client';
import { startMlflowServer } from '@training-callbacks/mlflow-bridge/testing';
import { startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { cpuSeconds, rssMiB } from './proc-stats.ts';

const quick = process.argv.includes('--quick');
const IDLE_MS = quick ? 3000 : 20_000;
const PHASE_MS = quick ? 5000 : 30_000;

/** Runs `work` for `ms`, sampling the sidecar: CPU in cores over the phase, peak and last RSS. */
async function measure(pid: number, ms: number, work: (until: number) => Promise<unknown>) {
  const cpu0 = await cpuSeconds(pid);
  const t0 = performance.now();
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await rssMiB(pid));
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const result = await work(t0 + ms);
  const seconds = (performance.now() - t0) / 1000;
  const cores = ((await cpuSeconds(pid)) - cpu0) / seconds;
  sampling = false;
  await sampler;
  return { cores, peak, last: await rssMiB(pid), points: typeof result === 'number' ? result / seconds : 0 };
}

/** One trainer reporting `stepsPerSecond` steps of 10 metrics, ending an epoch every second, until `until`. */
async function train(
  address: string,
  token: string,
  jobId: string,
  stepsPerSecond: number,
  until: number,
): Promise<number> {
  const callbacks = new TrainingCallbacks({ jobId, taskType: 'image_classification', address, token });
  await callbacks.onTrainBegin();
  const metrics: Record<string, number> = {};
  const names = Array.from({ length: 10 }, (_, i) => (i === 0 ? 'loss' : `m${i}`));
  const t0 = performance.now();
  let step = 0;
  let epoch = 0;
  while (performance.now() < until) {
    const elapsed = performance.now() - t0;
    const due = Math.floor((elapsed / 1000) * stepsPerSecond);
    for (; step < due; step++) {
      for (const [i, name] of names.entries()) metrics[name] = (step % 1000) / 1000 + i;
      callbacks.onBatchEnd(step, metrics, { epoch });
    }
    if (elapsed >= (epoch + 1) * 1000) await callbacks.onEpochEnd(epoch++, { accuracy: 0.5 + epoch / 1e4 });
    await new Promise((r) => setTimeout(r, 5));
  }
  await callbacks.onTrainEnd();
  const { pointsAccepted } = callbacks.stats();
  await callbacks.close();
  return pointsAccepted;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tc-footprint-'));
  await using mlflow = await startMlflowServer({ niceness: 19 });
  const token = randomBytes(32).toString('hex');
  const tokens = path.join(dir, 'tokens');
  await writeFile(tokens, `write ${token}\n`);
  try {
    await using sidecar = await startSidecarProcess({
      entry: 'dist',
      dataDir: dir,
      // deploy/base/job.yaml's flags (ports on loopback, any free one).
      args: [
        '--health-listen',
        '127.0.0.1:0',
        '--http',
        '127.0.0.1:0',
        '--auth-token-file',
        tokens,
        '--log-format',
        'json',
        '--shutdown-drain',
        '25',
        '--quiet',
      ],
      env: { MLFLOW_TRACKING_URI: mlflow.url, MLFLOW_HTTP_REQUEST_TIMEOUT: '120' },
      timeoutMs: 120_000,
    });
    const pid = sidecar.child.pid!;
    await new Promise((r) => setTimeout(r, 2000));
    const idle = await measure(
      pid,
      IDLE_MS,
      (until) => new Promise((r) => setTimeout(r, until - performance.now())),
    );
    console.error(`idle: ${idle.cores.toFixed(3)} cores, RSS ${idle.last.toFixed(0)} MiB`);
    const steady = await measure(pid, PHASE_MS, (until) =>
      train(sidecar.address, token, 'steady', 1000, until),
    );
    console.error(
      `steady: ${Math.round(steady.points)} points/s, ${steady.cores.toFixed(2)} cores, peak RSS ${steady.peak.toFixed(0)} MiB`,
    );
    const burst = await measure(pid, PHASE_MS, (until) =>
      train(sidecar.address, token, 'burst', 10_000, until),
    );
    console.error(
      `burst: ${Math.round(burst.points)} points/s, ${burst.cores.toFixed(2)} cores, peak RSS ${burst.peak.toFixed(0)} MiB`,
    );
    const after = await rssMiB(pid);
    const date = new Date().toISOString().slice(0, 10);
    console.log(`<!-- footprint:start -->
## Sidecar footprint as deploy/base runs it (requests and limits)

Command: \`npm run bench:footprint\` (script: \`tools/bench/footprint-bench.ts\`${quick ? ', --quick' : ''}).
Measured ${date} on ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}.
The built sidecar with the manifest's flags, mirroring into a real MLflow server; one TS client in the bench process.

| phase | points/s acknowledged | sidecar CPU (cores) | RSS (peak) |
|---|---|---|---|
| idle, ${IDLE_MS / 1000} s after start-up | – | ${idle.cores.toFixed(3)} | ${idle.last.toFixed(0)} MiB |
| a job at 1 000 steps/s × 10 metrics, EndEpoch every second, ${PHASE_MS / 1000} s | ${Math.round(steady.points).toLocaleString('en')} | ${steady.cores.toFixed(2)} | ${steady.peak.toFixed(0)} MiB |
| a burst at 10 000 steps/s × 10 metrics, ${PHASE_MS / 1000} s | ${Math.round(burst.points).toLocaleString('en')} | ${burst.cores.toFixed(2)} | ${burst.peak.toFixed(0)} MiB |
| after both | | | ${after.toFixed(0)} MiB |
<!-- footprint:end -->`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
