// The watch benchmark (issue 11): what 100 watchers (WatchJob / WatchJobs over gRPC) cost a sidecar
// that ingests 100 k batch points/s for 50 live jobs, side by side in one run. Run:
//   npm run bench:watch                 (add `-- --quick` for a smoke run, `-- --pin MODE` for the CPU
//                                        layout (below), `-- --profile DIR` for a V8 CPU profile of
//                                        the sidecar, written when it exits)
// Prints a markdown section for docs/benchmarks.md (it does not write the file).
//
// One sidecar (the built dist, as `npm start` runs it), a load generator here (50 TS clients, each
// streaming 2 000 points/s with onBatchEnd — 10 metrics a step), the jobs' EndEpoch calls in a process
// of their own (watch-bench-epochs.ts: once a second per job, staggered, round trip timed), and the
// watchers in another (watch-bench-watchers.ts: 80 WatchJob streams over the 50 jobs and 20 WatchJobs,
// from the head, read as raw bytes). With two cores or more (and taskset), the layout is the same in
// both phases (`--pin split`, the default): the sidecar and the EndEpoch process on CPU 0, the load
// generator (this process) and the watchers on CPU 1 — the clients' work never takes the sidecar's
// core, so the on/off difference is what the watch streams cost the sidecar. `--pin loose` leaves the
// load generator unpinned (the layout before 2026-12-02: the scheduler could move it onto the
// sidecar's core while the watchers kept CPU 1 busy, in the watcher phase only); `--pin none` pins
// nothing.
// Phases alternate, watchers off / on, ROUNDS times; each phase measures, after a settling second, the
// sidecar's CPU time (/proc/<pid>/stat), the EndEpoch latencies, the points acknowledged, the events
// the watchers received (by kind) and the messages that carried them, and the client side's CPU. The
// result: the median over rounds of each phase and their on/off ratio, and the median of the rounds'
// own ratios. Last, the yardstick (watch-bench-floor.ts): a bare grpc-js server writes the same
// messages to as many watchers.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { TrainingCallbacks } from '@training-callbacks/client';
import { startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { cpuSeconds, rssMiB, stealSeconds } from './proc-stats.ts';

const quick = process.argv.includes('--quick');
/** `--profile DIR`: the sidecar writes a V8 CPU profile there (open it in Chrome DevTools). */
const profileDir = process.argv.includes('--profile')
  ? process.argv[process.argv.indexOf('--profile') + 1]
  : undefined;
const JOBS = 50;
const WATCHERS = 100;
const POINTS_PER_SECOND = 100_000;
const METRICS_PER_STEP = 10;
const EPOCH_MS = 1000;
const ROUNDS = quick ? 1 : 5;
const PHASE_MS = quick ? 4000 : 12_000;
const SETTLE_MS = quick ? 1000 : 2000;
const TICK_MS = 5;

const stepsPerJobPerSecond = POINTS_PER_SECOND / METRICS_PER_STEP / JOBS;

/** `--pin split` (default), `loose` or `none`: see the header. */
const pinMode = process.argv.includes('--pin') ? process.argv[process.argv.indexOf('--pin') + 1] : 'split';
if (pinMode !== 'split' && pinMode !== 'loose' && pinMode !== 'none') {
  throw new Error(`--pin ${pinMode}: expected split, loose or none`);
}

/**
 * CPUs for the sidecar (and the EndEpoch timer, a light load alike in both phases), and for the
 * watchers and the load generator: on separate cores, the watchers' decoding does not take the
 * sidecar's core. Undefined (no pinning) on one core, without taskset (util-linux) or with --pin none.
 */
const pinning = (() => {
  if (pinMode === 'none' || cpus().length < 2) return undefined;
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  return { sidecar: '0', watchers: '1', load: pinMode === 'split' ? '1' : undefined };
})();

/** Pins every thread of `pid` (and the threads it starts later) to `cpuList`. */
function pin(pid: number, cpuList: string | undefined): void {
  if (cpuList !== undefined)
    execFileSync('taskset', ['--all-tasks', '--cpu-list', '--pid', cpuList, String(pid)], {
      stdio: 'ignore',
    });
}

const kindsText = (kinds: ReadonlyMap<string, number>) =>
  [...kinds]
    .sort((a, b) => b[1] - a[1])
    .map(([kind, n]) => `${kind} ${Math.round(n)}/s`)
    .join(', ');

const percentile = (sorted: readonly number[], p: number) =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const median = (values: readonly number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

/** Every helper process started, for a stop after the sidecar is gone. */
const helpers: ChildProcess[] = [];

/** A helper process of the bench: commands on its stdin, one answer line each on its stdout. */
async function startHelper(script: string, args: readonly string[]) {
  const child = spawn(
    process.execPath,
    ['--conditions=@training-callbacks/source', path.join(import.meta.dirname, script), ...args],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  helpers.push(child);
  const lines: Array<(line: string) => void> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => lines.shift()?.(line));
  const next = () => new Promise<string>((resolve) => lines.push(resolve));
  await next(); // "ready"
  return {
    send: (command: string) => child.stdin!.write(`${command}\n`),
    async ask(command: string): Promise<string> {
      const answer = next();
      child.stdin!.write(`${command}\n`);
      return answer;
    },
    pid: child.pid!,
    stop: () => child.kill('SIGKILL'),
  };
}

/** The watchers' process: `send('on' | 'off')`, `events()` = events received so far. */
async function startWatchers(address: string, jobIds: readonly string[]) {
  const helper = await startHelper('watch-bench-watchers.ts', [address, String(WATCHERS), ...jobIds]);
  pin(helper.pid, pinning?.watchers);
  return {
    send: (command: 'on' | 'off') => helper.send(command),
    /**
     * Events and the messages that carried them so far; `byKind`: the events' count, `bytes`: their
     * bytes, by stream and kind; `messagesByRpc`, `messageBytes`: the messages', by stream.
     */
    async events(): Promise<{
      events: number;
      messages: number;
      errors: number;
      byKind: Map<string, number>;
      bytes: Map<string, number>;
      messagesByRpc: Map<string, number>;
      messageBytes: Map<string, number>;
    }> {
      const [, events, , messages, , errors, ...kinds] = (await helper.ask('report')).trim().split(' ');
      const pairs = kinds.map((pair) => {
        const [kind, counts] = pair.split('=');
        const [n, bytes] = counts!.split('/');
        return { kind: kind!, n: Number(n), bytes: Number(bytes) };
      });
      const ofEvents = pairs.filter((p) => !p.kind.startsWith('msg.'));
      const ofMessages = pairs.filter((p) => p.kind.startsWith('msg.'));
      return {
        events: Number(events),
        messages: Number(messages),
        errors: Number(errors),
        byKind: new Map(ofEvents.map((p) => [p.kind, p.n])),
        bytes: new Map(ofEvents.map((p) => [p.kind, p.bytes])),
        messagesByRpc: new Map(ofMessages.map((p) => [p.kind.slice(4), p.n])),
        messageBytes: new Map(ofMessages.map((p) => [p.kind.slice(4), p.bytes])),
      };
    },
    pid: helper.pid,
    stop: helper.stop,
  };
}

/** The trainers' EndEpoch calls: `latencies()` = the round trips (ms) since the last call. */
async function startEpochs(address: string, jobIds: readonly string[]) {
  const helper = await startHelper('watch-bench-epochs.ts', [address, ...jobIds]);
  pin(helper.pid, pinning?.sidecar);
  return {
    async latencies(): Promise<number[]> {
      const { latencies, failed } = JSON.parse(await helper.ask('report')) as {
        latencies: number[];
        failed: number;
      };
      if (failed > 0) throw new Error(`${failed} EndEpoch call(s) failed`);
      return latencies;
    },
    stop: helper.stop,
  };
}

/** Streams of each RPC among the watchers (watch-bench-watchers.ts: every fifth one WatchJobs). */
const STREAMS = { jobs: WATCHERS / 5, job: WATCHERS - WATCHERS / 5 };

/**
 * The yardstick (watch-bench-floor.ts): a bare grpc-js server, pinned as the sidecar is, writes the
 * messages the sidecar's streams carried (median rate per stream, mean size and mean events per
 * message, over the phases with watchers) to as many watchers; its CPU over one phase, in cores.
 */
async function measureFloor(
  phases: readonly PhaseResult[],
): Promise<{ cpuCores: number; eventsPerSecond: number; messagesPerSecond: number }> {
  const spec: Record<string, [rate: number, bytes: number, events: number]> = {};
  for (const rpc of ['job', 'jobs'] as const) {
    const rate = median(phases.map((r) => r.messagesByRpc.get(rpc) ?? 0));
    const messages = phases.reduce((sum, r) => sum + (r.messagesByRpc.get(rpc) ?? 0), 0);
    const bytes = phases.reduce((sum, r) => sum + (r.messageBytesByRpc.get(rpc) ?? 0), 0);
    const events = phases.reduce(
      (sum, r) =>
        sum + [...r.eventsByKind].reduce((n, [kind, rate]) => n + (kind.startsWith(`${rpc}.`) ? rate : 0), 0),
      0,
    );
    if (messages > 0) spec[rpc] = [rate / STREAMS[rpc], Math.round(bytes / messages), events / messages];
  }
  const child = spawn(
    process.execPath,
    [
      '--conditions=@training-callbacks/source',
      path.join(import.meta.dirname, 'watch-bench-floor.ts'),
      JSON.stringify(spec),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const address = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const match = /listening on (\S+)/.exec(line);
        if (match) resolve(match[1]!);
      });
      child.once('exit', (code) => reject(new Error(`floor server exited ${code}`)));
    });
    pin(child.pid!, pinning?.sidecar);
    const watchers = await startWatchers(address, ['floor']);
    try {
      watchers.send('on');
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      const cpu0 = await cpuSeconds(child.pid!);
      const before = await watchers.events();
      const started = performance.now();
      await new Promise((r) => setTimeout(r, PHASE_MS));
      const seconds = (performance.now() - started) / 1000;
      const cpuCores = ((await cpuSeconds(child.pid!)) - cpu0) / seconds;
      const after = await watchers.events();
      const eventsPerSecond = (after.events - before.events) / seconds;
      const messagesPerSecond = (after.messages - before.messages) / seconds;
      console.error(
        `yardstick (bare grpc-js, same messages): ${(cpuCores * 100).toFixed(1)} % CPU, ${Math.round(eventsPerSecond)} events/s in ${Math.round(messagesPerSecond)} messages/s`,
      );
      return { cpuCores, eventsPerSecond, messagesPerSecond };
    } finally {
      watchers.stop();
    }
  } finally {
    child.kill('SIGKILL');
  }
}

interface PhaseResult {
  watchers: boolean;
  cpuCores: number;
  p50: number;
  p99: number;
  epochs: number;
  pointsPerSecond: number;
  eventsPerSecond: number;
  /** Watch events per second by stream and kind ('jobs.job', 'job.batch', …). */
  eventsByKind: Map<string, number>;
  /** Their bytes per second, by stream and kind. */
  bytesByKind: Map<string, number>;
  /** The gRPC messages that carried them, per second: in all, and with their bytes by stream. */
  messagesPerSecond: number;
  messagesByRpc: Map<string, number>;
  messageBytesByRpc: Map<string, number>;
  rssMiB: number;
  /** The watchers' process and the load generator (this process), in cores: the client side. */
  watchersCores: number;
  loadCores: number;
  /** CPU time stolen by the hypervisor during the phase, in cores (all CPUs). */
  steal: number;
}

async function main(): Promise<void> {
  await using sidecar = await startSidecarProcess({
    entry: 'dist',
    args: ['--quiet', '--http', 'off'],
    ...(profileDir && { nodeFlags: ['--cpu-prof', '--cpu-prof-dir', profileDir] }),
    timeoutMs: 120_000,
  });
  const pid = sidecar.child.pid!;
  pin(pid, pinning?.sidecar);
  // A sidecar gone mid-run would otherwise show only as the clients' UNAVAILABLE: say why, and stop.
  let stopping = false;
  void sidecar.exited.then((how) => {
    if (stopping) return;
    console.error(
      `the sidecar exited (${how}) during the run; its last output:\n${sidecar.output.slice(-20).join('\n')}`,
    );
    for (const helper of helpers) helper.kill('SIGKILL');
    // Not process.exit: the clients' exit path would try to end each of the 50 jobs on the gone
    // sidecar, one exit-flush timeout after another.
    process.kill(process.pid, 'SIGKILL');
  });
  try {
    const jobIds = Array.from({ length: JOBS }, (_, i) => `watch-bench-${i}`);
    const jobs = await Promise.all(
      jobIds.map(async (jobId) => {
        const callbacks = new TrainingCallbacks({
          jobId,
          taskType: 'image_classification',
          address: sidecar.address,
          deadlineMs: 30_000,
        });
        await callbacks.onTrainBegin();
        return { jobId, callbacks, step: 0, metrics: {} as Record<string, number> };
      }),
    );
    const watchers = await startWatchers(sidecar.address, jobIds);
    const epochs = await startEpochs(sidecar.address, jobIds);
    // After every child has been started (they would inherit it) and pinned.
    pin(process.pid, pinning?.load);

    // The load: runs through every phase, never paused.
    let running = true;
    const t0 = performance.now();
    const metricNames = Array.from({ length: METRICS_PER_STEP }, (_, i) => (i === 0 ? 'loss' : `m${i}`));
    const load = (async () => {
      while (running) {
        const elapsed = performance.now() - t0;
        const epoch = Math.floor(elapsed / EPOCH_MS);
        for (const job of jobs) {
          const due = Math.floor((elapsed / 1000) * stepsPerJobPerSecond);
          for (; job.step < due; job.step++) {
            // One object per job, refilled: onBatchEnd copies the values into its blocks.
            for (const [i, name] of metricNames.entries()) job.metrics[name] = (job.step % 1000) / 1000 + i;
            job.callbacks.onBatchEnd(job.step, job.metrics, { epoch });
          }
        }
        await new Promise((r) => setTimeout(r, TICK_MS));
      }
    })();
    const accepted = () => jobs.reduce((sum, j) => sum + j.callbacks.stats().pointsAccepted, 0);

    await new Promise((r) => setTimeout(r, SETTLE_MS * 2)); // warm-up: streams open, JIT warm
    const results: PhaseResult[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const on of round % 2 === 0 ? [false, true] : [true, false]) {
        watchers.send(on ? 'on' : 'off');
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        const cpu0 = await cpuSeconds(pid);
        const watchersCpu0 = await cpuSeconds(watchers.pid);
        const loadCpu0 = process.cpuUsage();
        const steal0 = await stealSeconds();
        const points0 = accepted();
        const report0 = await watchers.events();
        const { events: events0, byKind: kinds0, bytes: bytes0 } = report0;
        await epochs.latencies(); // drops the settling time's
        const started = performance.now();
        await new Promise((r) => setTimeout(r, PHASE_MS));
        const seconds = (performance.now() - started) / 1000;
        const cpu = (await cpuSeconds(pid)) - cpu0;
        const watchersCpu = (await cpuSeconds(watchers.pid)) - watchersCpu0;
        const loadCpu = process.cpuUsage(loadCpu0);
        const steal = (await stealSeconds()) - steal0;
        const report = await watchers.events();
        const sorted = (await epochs.latencies()).sort((a, b) => a - b);
        const result: PhaseResult = {
          watchers: on,
          cpuCores: cpu / seconds,
          p50: percentile(sorted, 50),
          p99: percentile(sorted, 99),
          epochs: sorted.length,
          pointsPerSecond: (accepted() - points0) / seconds,
          eventsPerSecond: (report.events - events0) / seconds,
          eventsByKind: new Map(
            [...report.byKind].map(([kind, n]) => [kind, (n - (kinds0.get(kind) ?? 0)) / seconds] as const),
          ),
          bytesByKind: new Map(
            [...report.bytes].map(([kind, n]) => [kind, (n - (bytes0.get(kind) ?? 0)) / seconds] as const),
          ),
          messagesPerSecond: (report.messages - report0.messages) / seconds,
          messagesByRpc: new Map(
            [...report.messagesByRpc].map(
              ([rpc, n]) => [rpc, (n - (report0.messagesByRpc.get(rpc) ?? 0)) / seconds] as const,
            ),
          ),
          messageBytesByRpc: new Map(
            [...report.messageBytes].map(
              ([rpc, n]) => [rpc, (n - (report0.messageBytes.get(rpc) ?? 0)) / seconds] as const,
            ),
          ),
          rssMiB: await rssMiB(pid),
          steal: steal / seconds,
          watchersCores: watchersCpu / seconds,
          loadCores: (loadCpu.user + loadCpu.system) / 1e6 / seconds,
        };
        results.push(result);
        if (report.errors > 0) throw new Error(`${report.errors} watch stream(s) failed`);
        console.error(
          `round ${round + 1}/${ROUNDS} watchers ${on ? 'on ' : 'off'}: sidecar ${(result.cpuCores * 100).toFixed(0)} % CPU, ` +
            `EndEpoch p50 ${result.p50.toFixed(2)} ms p99 ${result.p99.toFixed(2)} ms (${result.epochs}), ` +
            `${Math.round(result.pointsPerSecond)} points/s acked, ${Math.round(result.eventsPerSecond)} watch events/s in ${Math.round(result.messagesPerSecond)} messages/s, ` +
            `RSS ${result.rssMiB.toFixed(0)} MiB, load generator ${(result.loadCores * 100).toFixed(0)} % / watchers ${(result.watchersCores * 100).toFixed(0)} % CPU, host steal ${(result.steal * 100).toFixed(0)} %` +
            (on ? ` (${kindsText(result.eventsByKind)}; messages ${kindsText(result.messagesByRpc)})` : ''),
        );
      }
    }
    watchers.send('off');
    const floor = await measureFloor(results.filter((r) => r.watchers));
    epochs.stop();
    running = false;
    await load;
    for (const job of jobs) await job.callbacks.onTrainEnd();
    watchers.stop();
    // A graceful stop: the CPU profile (--profile) is written as the process exits.
    stopping = true;
    await sidecar.stop('SIGTERM');

    const summary = (on: boolean) => {
      const phase = results.filter((r) => r.watchers === on);
      return {
        cpu: median(phase.map((r) => r.cpuCores)),
        p50: median(phase.map((r) => r.p50)),
        p99: median(phase.map((r) => r.p99)),
        points: median(phase.map((r) => r.pointsPerSecond)),
        events: median(phase.map((r) => r.eventsPerSecond)),
        messages: median(phase.map((r) => r.messagesPerSecond)),
        messagesByRpc: new Map(
          (['jobs', 'job'] as const).map(
            (rpc) => [rpc, median(phase.map((r) => r.messagesByRpc.get(rpc) ?? 0))] as const,
          ),
        ),
        byKind: new Map(
          [...new Set(phase.flatMap((r) => [...r.eventsByKind.keys()]))].map(
            (kind) => [kind, median(phase.map((r) => r.eventsByKind.get(kind) ?? 0))] as const,
          ),
        ),
        rss: Math.max(...phase.map((r) => r.rssMiB)),
        load: median(phase.map((r) => r.loadCores)),
        watchersCpu: median(phase.map((r) => r.watchersCores)),
      };
    };
    const off = summary(false);
    const on = summary(true);
    const signedPct = (change: number) => `${change >= 0 ? '+' : ''}${(change * 100).toFixed(1)} %`;
    const pct = (a: number, b: number) => signedPct(a / b - 1);
    const rounds = Array.from({ length: ROUNDS }, (_, i) => {
      const [a, b] = results.slice(i * 2, i * 2 + 2);
      const [withW, without] = a!.watchers ? [a!, b!] : [b!, a!];
      return {
        cpuChange: withW.cpuCores / without.cpuCores - 1,
        p99Change: withW.p99 / without.p99 - 1,
        cpu: pct(withW.cpuCores, without.cpuCores),
        p99: pct(withW.p99, without.p99),
        steal: `${(Math.max(withW.steal, without.steal) * 100).toFixed(0)} %`,
      };
    });
    const date = new Date().toISOString().slice(0, 10);
    const section = `<!-- watch:start -->
## Watchers: 100 watch streams on 50 live jobs at 100 k points/s

Command: \`npm run bench:watch${quick || pinMode !== 'split' ? ' --' : ''}${quick ? ' --quick' : ''}${pinMode !== 'split' ? ` --pin ${pinMode}` : ''}\` (script: \`tools/bench/watch-bench.ts\`).
Measured ${date} on ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; load average (1 min) at the end ${loadavg()[0]!.toFixed(1)}.
One sidecar (built dist, \`--quiet\`) ingests ${POINTS_PER_SECOND.toLocaleString('en')} batch points/s from ${JOBS} TS clients in the bench
process (${METRICS_PER_STEP} metrics a step, \`onBatchEnd\`); each job sends EndEpoch once a second from a process of its own
(staggered; round trip timed there, away from the generator's busy event loop). ${WATCHERS} watchers in a process of their own (${(WATCHERS * 4) / 5} \`WatchJob\` over the ${JOBS} jobs, ${WATCHERS / 5} \`WatchJobs\`, from the
head) are connected in one phase and not in the other; phases alternate ${ROUNDS} times (${PHASE_MS / 1000} s each, measured after
${SETTLE_MS / 1000} s of settling); medians over rounds. CPU is the sidecar process's (all threads), in cores.
${pinning ? `Pinned with \`taskset\` (\`--pin ${pinMode}\`), alike in both phases: the sidecar and the EndEpoch process on CPU ${pinning.sidecar}, the watchers on CPU ${pinning.watchers}, ${pinning.load === undefined ? 'the load generator not pinned' : `the load generator on CPU ${pinning.load}`}.` : `No CPU pinning (${pinMode === 'none' ? '--pin none' : 'one core, or no taskset'}).`}
Watch events/s with watchers (median): ${kindsText(on.byKind)}; the gRPC messages that carried them (several events to a message, one per ~100 ms window): ${kindsText(on.messagesByRpc)}, per stream ${((on.messagesByRpc.get('jobs') ?? 0) / STREAMS.jobs).toFixed(1)}/s (\`WatchJobs\`) and ${((on.messagesByRpc.get('job') ?? 0) / STREAMS.job).toFixed(1)}/s (\`WatchJob\`). Client side (median, cores): load generator ${off.load.toFixed(2)} without watchers, ${on.load.toFixed(2)} with; watchers ${on.watchersCpu.toFixed(2)}.
Yardstick (\`tools/bench/watch-bench-floor.ts\`, ${pinning ? 'pinned as the sidecar, ' : ''}while the load ran): a bare grpc-js server writing ready-made bytes at the same rates and sizes to ${WATCHERS} such watchers took ${floor.cpuCores.toFixed(3)} cores for ${Math.round(floor.messagesPerSecond).toLocaleString('en')} messages/s (${Math.round(floor.eventsPerSecond).toLocaleString('en')} events/s) — ${pct(off.cpu + floor.cpuCores, off.cpu)} of the sidecar's CPU without watchers: what the gRPC writes alone cost, which no change to the watch code removes.

| | sidecar CPU | EndEpoch p50 | EndEpoch p99 | points/s acknowledged | watch events/s | watch messages/s | peak RSS |
|---|---|---|---|---|---|---|---|
| no watchers | ${off.cpu.toFixed(2)} | ${off.p50.toFixed(2)} ms | ${off.p99.toFixed(2)} ms | ${Math.round(off.points).toLocaleString('en')} | – | – | ${off.rss.toFixed(0)} MiB |
| ${WATCHERS} watchers | ${on.cpu.toFixed(2)} (${pct(on.cpu, off.cpu)}) | ${on.p50.toFixed(2)} ms | ${on.p99.toFixed(2)} ms (${pct(on.p99, off.p99)}) | ${Math.round(on.points).toLocaleString('en')} | ${Math.round(on.events).toLocaleString('en')} | ${Math.round(on.messages).toLocaleString('en')} | ${on.rss.toFixed(0)} MiB |

Target (issue 11): ≤ +10 % CPU and ≤ +10 % EndEpoch p99. Median of the rounds' own changes (each round's two phases side by side, less exposed to the host's load drifting between rounds): CPU ${signedPct(median(rounds.map((r) => r.cpuChange)))}, p99 ${signedPct(median(rounds.map((r) => r.p99Change)))}. Per round (CPU change / p99 change / host steal, the larger of the two phases'): ${rounds.map((r) => `${r.cpu} / ${r.p99} / ${r.steal}`).join('; ')}.
<!-- watch:end -->`;
    console.log(section);
  } catch (error) {
    // Said before the sidecar goes (the `exited` handler above would kill this process first).
    stopping = true;
    console.error(error);
    for (const helper of helpers) helper.kill('SIGKILL');
    await sidecar.stop('SIGKILL');
    process.kill(process.pid, 'SIGKILL');
  }
}

await main();
