// The TypeScript client's onBatchEnd while the sidecar restarts. Run: `npm run bench:client-restarts`
// (add `-- --append docs/benchmarks.md` to record it; `-- --seconds 10 --restarts 1` for a smoke run).
//
// A trainer reports for 60 s (every 8 steps it yields 1 ms to the event loop, as an awaited GPU step
// does) while the real sidecar is restarted 3 times on the same port and database: SIGKILL (a crash),
// SIGTERM (a rolling update), SIGKILL. Each onBatchEnd call is timed; the GC pauses of the process are
// recorded, to say which slow calls a collection explains. At the end onTrainEnd reports the losses.
//
// `-- --pin` (needs taskset, util-linux, and at least 2 CPUs) mirrors production, where the trainer has
// its own cores and the sidecar container others, and is the placement of the Python client's benchmark
// (bench_on_batch_end.py --pin): the training thread (here the main thread, which runs the event loop,
// so the client's sending too) alone on the last CPU; the sidecar, each of its restarts and this
// process's helper threads (V8's compiler and GC workers, libuv's pool) on CPU 0. Without it the OS
// places them anywhere, so a restarting sidecar's start-up — or V8 compiling the trainer's code on a
// helper thread — competes with the training thread for its core.
//
// Start-up is in the numbers: the first calls run before V8 has compiled onBatchEnd, as a trainer's
// first batches do. The table gives the max over every call and, beside it, the max after the first
// WARM_CALLS (1000) calls, and the first call's time, so that the two causes can be told apart.
import { execFileSync } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { TrainingCallbacks } from '@training-callbacks/client';
import { type SidecarProcess, startSidecarProcess } from '@training-callbacks/sidecar/testing';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    restarts: { type: 'string', default: '3' },
    append: { type: 'string' },
    pin: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const restarts = Number(values.restarts);
const pin = values.pin;
const TRAINER_CPU = availableParallelism() - 1;
const SIDECAR_CPU = 0;
/** Calls counted as start-up in "max after start-up". */
const WARM_CALLS = 1000;

/** Sets the CPU affinity of one thread (`-p` without `-a`) or of every thread of a process (`all`). */
function setAffinity(pid: number, cpu: number, all = false): void {
  execFileSync('taskset', [...(all ? ['-a'] : []), '-p', '-c', String(cpu), String(pid)], {
    stdio: 'ignore',
  });
}

/** The CPUs a process or thread may run on, as /proc says ("0", "1", "0-1"). */
function allowedCpus(pid: number, tid = pid): string {
  const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
  return /Cpus_allowed_list:\s*(\S+)/.exec(status)?.[1] ?? '?';
}

/**
 * --pin: the main thread alone on the trainer's CPU, every other thread of this process on the
 * sidecar's. Called again right before the timed loop: threads started since (libuv's pool starts
 * lazily, and inherits the main thread's CPU) move too. Returns how many helper threads moved.
 */
function pinHelperThreads(): number {
  const helpers = readdirSync(`/proc/${process.pid}/task`)
    .map(Number)
    .filter((tid) => tid !== process.pid);
  for (const tid of helpers) setAffinity(tid, SIDECAR_CPU);
  setAffinity(process.pid, TRAINER_CPU);
  return helpers.length;
}

/**
 * Starts a sidecar; with --pin on CPU 0. A child inherits the affinity of the thread that forks it,
 * so the main thread moves to CPU 0 for the spawn alone: startSidecarProcess spawns synchronously
 * when it is given a dataDir, before its first await, and the main thread moves back right after.
 */
function startSidecar(options: Parameters<typeof startSidecarProcess>[0]): Promise<SidecarProcess> {
  if (!pin) return startSidecarProcess(options);
  setAffinity(process.pid, SIDECAR_CPU);
  try {
    return startSidecarProcess(options);
  } finally {
    setAffinity(process.pid, TRAINER_CPU);
  }
}

/**
 * (steal, total) jiffies of all CPUs from /proc/stat. Steal is time the hypervisor ran other guests:
 * a thread's clock counts it as its own CPU time.
 */
function hostCpuTimes(): [number, number] {
  const fields = readFileSync('/proc/stat', 'utf8')
    .split('\n', 1)[0]!
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  return [fields[7] ?? 0, fields.reduce((a, b) => a + b, 0)];
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

async function main(): Promise<void> {
  if (pin) {
    if (TRAINER_CPU === SIDECAR_CPU) throw new Error('--pin needs at least 2 CPUs');
    pinHelperThreads();
  }
  const dataDir = await mkdtemp(path.join(tmpdir(), 'tc-restarts-'));
  let sidecar: SidecarProcess = await startSidecar({ dataDir, args: ['--quiet'] });
  const address = sidecar.address;
  const callbacks = new TrainingCallbacks({
    address,
    jobId: 'bench-ts-restarts',
    taskType: 'image_classification',
    flushTimeoutMs: 120_000,
  });
  await callbacks.onTrainBegin();

  const gcPauses: { start: number; end: number }[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcPauses.push({ start: e.startTime, end: e.startTime + e.duration });
  });
  observer.observe({ entryTypes: ['gc'] });

  const helperThreads = pin ? pinHelperThreads() : 0;
  const placement = pin
    ? `pinned: the main thread on CPU ${allowedCpus(process.pid)}, its ${helperThreads} helper threads and the sidecar on CPU ${allowedCpus(sidecar.child.pid!)} (taskset)`
    : 'not pinned';
  const restartLog: string[] = [];
  const hostBefore = hostCpuTimes();
  const started = performance.now();
  const restarting = (async () => {
    for (let i = 1; i <= restarts; i++) {
      const at = started + (i * seconds * 1000) / (restarts + 1);
      await new Promise((r) => setTimeout(r, Math.max(0, at - performance.now())));
      const how = i % 2 ? 'SIGKILL' : 'SIGTERM';
      const down = performance.now();
      await sidecar.stop(how);
      sidecar = await startSidecar({ dataDir, args: ['--quiet'], listen: address });
      if (pin && allowedCpus(sidecar.child.pid!) !== String(SIDECAR_CPU)) {
        throw new Error(`the restarted sidecar is not on CPU ${SIDECAR_CPU}`);
      }
      restartLog.push(
        `${how} at ${((down - started) / 1000).toFixed(1)} s, back after ${((performance.now() - down) / 1000).toFixed(2)} s`,
      );
    }
  })();

  const samples: number[] = [];
  const slow: { at: number; ms: number; cpuMs: number; gc: boolean }[] = [];
  const end = started + seconds * 1000;
  const metrics = { loss: 0, lr: 0.1 };
  let step = 0;
  while (performance.now() < end) {
    metrics.loss = step * 0.5;
    const c0 = process.threadCpuUsage(); // outside the timed window: the call's CPU time, for slow calls
    const t0 = performance.now();
    callbacks.onBatchEnd(step, metrics);
    const t1 = performance.now();
    samples.push(t1 - t0);
    if (t1 - t0 > 0.2) {
      const cpu = process.threadCpuUsage(c0);
      slow.push({ at: t0, ms: t1 - t0, cpuMs: (cpu.user + cpu.system) / 1000, gc: false });
    }
    step++;
    if (step % 8 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  await restarting;
  const hostAfter = hostCpuTimes();
  const steal = ((hostAfter[0] - hostBefore[0]) / Math.max(1, hostAfter[1] - hostBefore[1])) * 100;
  const ended = await callbacks.onTrainEnd();
  observer.disconnect();
  for (const s of slow) s.gc = gcPauses.some((g) => g.start < s.at + s.ms && g.end > s.at);
  callbacks.close();
  await sidecar.stop();

  const sorted = Float64Array.from(samples).sort();
  const warm = Float64Array.from(samples.slice(WARM_CALLS)).sort();
  const us = (ms: number) => `${(ms * 1000).toFixed(2)} µs`;
  const over = slow.filter((s) => s.ms > 1);
  const max = sorted.at(-1) ?? 0;
  const warmMax = warm.at(-1) ?? 0;
  const stats = callbacks.stats();
  const load = loadavg()
    .map((x) => x.toFixed(1))
    .join(', ');
  const section = `
### TypeScript client: onBatchEnd while the sidecar restarts (${new Date().toISOString().slice(0, 10)})

Command: \`npm run bench:client-restarts -- ${pin ? '--pin ' : ''}--append docs/benchmarks.md\` (\`tools/bench/client-restart-bench.ts\`,
${seconds} s, ${restarts} restarts, ${placement}): the real sidecar restarted on the same port and database (${restartLog.join('; ')});
every 8 steps the trainer yields 1 ms to the event loop (an awaited GPU step). Node ${process.version}, load average ${load};
the hypervisor's steal time during the run ${steal.toFixed(1)} % of the host's CPU (it counts as the thread's CPU time).

| onBatchEnd, 2 metrics/step, ${samples.length.toLocaleString('en')} calls | median | p99 | p99.9 | max | max after the first ${WARM_CALLS} calls | first call | calls > 1 ms |
|---|---|---|---|---|---|---|---|
| sidecar restarting ${restarts}× | ${us(percentile(sorted, 0.5))} | ${us(percentile(sorted, 0.99))} | ${us(percentile(sorted, 0.999))} | ${us(max)} | ${us(warmMax)} | ${us(samples[0] ?? 0)} | ${over.length} |

onBatchEnd is synchronous on the event loop: nothing can make it wait for another thread; of the ${slow.length} calls over
200 µs, ${slow.filter((s) => s.gc).length} overlapped a garbage collection${over.length ? ` (calls over 1 ms: ${over.map((s) => `${s.ms.toFixed(2)} ms (${s.cpuMs.toFixed(2)} ms CPU) at ${((s.at - started) / 1000).toFixed(1)} s${s.gc ? ' in a GC' : ''}`).join(', ')})` : ''}; the thread's CPU time in them was at most
${Math.max(0, ...slow.map((s) => s.cpuMs)).toFixed(2)} ms: the rest of their wall time the OS ran other work (this machine's load).
Delivered: ${stats.pointsAccepted.toLocaleString('en')} of ${stats.pointsBuffered.toLocaleString('en')} points acknowledged;
onTrainEnd: ${ended.lossSummary || 'nothing lost'}. Target: max ≤ 1 ms.

SUMMARY typescript onBatchEnd, sidecar restarting ${restarts}x: max ${us(max)}, max after the first ${WARM_CALLS} calls ${us(warmMax)}, p99.9 ${us(percentile(sorted, 0.999))}, p99 ${us(percentile(sorted, 0.99))}, ${over.length} of ${samples.length.toLocaleString('en')} calls > 1 ms; target max <= 1 ms ${max <= 1 ? 'met' : 'NOT met'}; ${pin ? 'pinned' : 'not pinned'}; load average ${load}; steal ${steal.toFixed(1)} %
`;
  console.log(section);
  if (values.append) appendFileSync(values.append, section);
}

await main();
