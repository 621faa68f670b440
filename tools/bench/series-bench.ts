// The series benchmark (issue 11, "a job with 1 M batch points renders its charts within 1 s"): what the
// two reads the dashboard's job page makes cost over gRPC on a job of 1 M batch points —
// ListBatchMetrics(page_size=1) (the batch metric names) and GetMetricSeries of one metric over all
// 1 M points (downsampled to 2 000 buckets). Run:
//   npm run bench:series                          (this checkout only)
//   npm run bench:series -- --baseline /work/main (also another checkout's sidecar, same database,
//                                                  rounds alternating: the before/after ratio)
//   add `--quick` for a smoke run (100 k points), `--profile DIR` for CPU profiles of this checkout's sidecar
// Prints a markdown section for docs/benchmarks.md (it does not write the file).
//
// The job is fed once by the TS client (1 × 1 000 000 steps, as the dashboard's browser test does),
// then each sidecar (source entry, --http off) is started on that database in turn, warmed up, and timed.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { TrainingCallbacks } from '@training-callbacks/client';
import { createClient } from '@training-callbacks/grpc-adapter';
import { TrainingCallbacks as Service } from '@training-callbacks/proto';
import { startSidecarProcess } from '@training-callbacks/sidecar/testing';

const args = process.argv.slice(2);
const baseline = args.includes('--baseline')
  ? path.resolve(args[args.indexOf('--baseline') + 1]!)
  : undefined;
const quick = args.includes('--quick');
/** `--profile DIR`: this checkout's sidecars write V8 CPU profiles there (open them in Chrome DevTools). */
const profileDir = args.includes('--profile')
  ? path.resolve(args[args.indexOf('--profile') + 1]!)
  : undefined;
const STEPS = quick ? 100_000 : 1_000_000;
const ROUNDS = quick ? 2 : 5;
const CALLS = 5;
const JOB = 'series-bench';
const here = path.resolve(import.meta.dirname, '..', '..');

/** A sidecar of checkout `root` on `db`: started from source, stopped with SIGTERM. */
async function sidecarOf(root: string, db: string): Promise<{ address: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    [
      ...(profileDir && root === here ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
      '--conditions=@training-callbacks/source',
      path.join(root, 'apps/sidecar/src/main.ts'),
      '--listen',
      '127.0.0.1:0',
      '--http',
      'off',
      '--trainer-lease',
      '3600',
      '--db',
      db,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: root },
  );
  const output: string[] = [];
  const address = await new Promise<string>((resolve, reject) => {
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        output.push(line);
        const match = /listening on ([^\s"]+)/.exec(line);
        if (match) resolve(match[1]!);
      });
    }
    child.once('exit', (code) =>
      reject(new Error(`sidecar of ${root} exited (${code}):\n${output.join('\n')}`)),
    );
  });
  return { address, child };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

/** The first GetMetricSeries of a fresh sidecar (cold code), then median ms of CALLS calls of each read. */
async function timeReads(
  address: string,
): Promise<{ first: number; series: number; names: number; buckets: number }> {
  const client = createClient(Service, address);
  try {
    const read = () => client.getMetricSeries({ jobId: JOB, name: 'loss' });
    const names = () => client.listBatchMetrics({ jobId: JOB, pageSize: 1 });
    const started = performance.now();
    const first = await read();
    const firstMs = performance.now() - started;
    if (first.totalPoints !== BigInt(STEPS)) throw new Error(`series holds ${first.totalPoints} points`);
    await names();
    const seriesMs: number[] = [];
    const namesMs: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      let t = performance.now();
      await read();
      seriesMs.push(performance.now() - t);
      t = performance.now();
      await names();
      namesMs.push(performance.now() - t);
    }
    return {
      first: firstMs,
      series: median(seriesMs),
      names: median(namesMs),
      buckets: first.buckets.length,
    };
  } finally {
    client.close();
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tc-series-bench-'));
  const db = path.join(dir, 'training-callbacks.sqlite');
  try {
    {
      await using feeder = await startSidecarProcess({ dbPath: db, args: ['--quiet', '--http', 'off'] });
      const cb = new TrainingCallbacks({
        address: feeder.address,
        jobId: JOB,
        taskType: 'object_detection',
        deadlineMs: 60_000,
      });
      await cb.onTrainBegin();
      for (let step = 0; step < STEPS; step++) {
        cb.onBatchEnd(step, { loss: 1 / (step + 1) + (step % 100) / 1000 });
        if (step % 256 === 255) await new Promise((resolve) => setImmediate(resolve));
      }
      await cb.flush();
      if (cb.stats().pointsAccepted !== STEPS) throw new Error(`only ${cb.stats().pointsAccepted} accepted`);
      await cb.close();
    }
    const checkouts = [
      ...(baseline ? [{ label: 'baseline', root: baseline }] : []),
      { label: 'this', root: here },
    ];
    const results = new Map(
      checkouts.map((c) => [
        c.label,
        { first: [] as number[], series: [] as number[], names: [] as number[] },
      ]),
    );
    let buckets = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const checkout of checkouts) {
        const sidecar = await sidecarOf(checkout.root, db);
        try {
          const r = await timeReads(sidecar.address);
          results.get(checkout.label)!.first.push(r.first);
          results.get(checkout.label)!.series.push(r.series);
          results.get(checkout.label)!.names.push(r.names);
          buckets = r.buckets;
        } finally {
          await stop(sidecar.child);
        }
      }
    }
    const lines = [
      '## GetMetricSeries and ListBatchMetrics on 1 M batch points',
      '',
      `\`npm run bench:series${baseline ? ' -- --baseline <checkout>' : ''}\`: one job, 1 × ${STEPS.toLocaleString('en')} ` +
        `steps fed by the TS client; each read over gRPC on loopback, the first call of a fresh sidecar, then the median of ${CALLS} calls, ` +
        `median over ${ROUNDS} rounds (sidecars alternating on one database). ${cpus().length} cores, ` +
        `load ${loadavg()[0]!.toFixed(1)} at the end. GetMetricSeries answered ${buckets} buckets.`,
      '',
      '| sidecar | GetMetricSeries (1 metric, all points), first call | then | ListBatchMetrics(page_size=1) |',
      '|---|---|---|---|',
    ];
    for (const [label, r] of results) {
      lines.push(
        `| ${label} | ${median(r.first).toFixed(0)} ms | ${median(r.series).toFixed(0)} ms | ${median(r.names).toFixed(1)} ms |`,
      );
    }
    if (baseline) {
      const b = results.get('baseline')!;
      const t = results.get('this')!;
      lines.push(
        `| ratio this / baseline | ${(median(t.first) / median(b.first)).toFixed(2)} | ` +
          `${(median(t.series) / median(b.series)).toFixed(2)} | ` +
          `${(median(t.names) / median(b.names)).toFixed(2)} |`,
      );
    }
    console.log(lines.join('\n'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
