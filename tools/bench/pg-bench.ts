// The store benchmark on both dialects (issue 9). Run: `npm run bench:store` (add `-- --quick` for a smoke
// run). One run, side by side, the sidecar and yardsticks as separate processes, the client here:
// - end-epoch round trip p50/p99 on SQLite and on PostgreSQL, each interleaved round by round with its own
//   bare yardstick (grpc-js + one commit on that database: bare-server.ts, bare-server-postgres.ts);
// - sustained batch ingest (points/s, acknowledged) through the TypeScript client on each dialect;
// - 1 and 3 sidecars on one PostgreSQL: aggregate ingest of 3 concurrent trainers;
// - end-epoch p50/p99 under load from 50 concurrent trainers: ONE load-generator process
//   (trainer-load.ts) with 50 channels, 2,000 points/s each and an EndEpoch every 3 s per job (the first
//   one epoch after the trainer's start);
// - idle RSS of the sidecar on each dialect;
// - what limits the targets, in passes of their own after those (the profiler's overhead stays out of
//   them): the main thread's CPU per end-epoch call by what ran, sidecar against yardstick on each dialect,
//   and a profile of a sidecar of each dialect under the 50-trainer load.
// PostgreSQL is a real server (@training-callbacks/postgres-testing: fsync off — so is the comparison:
// both the sidecar and its yardstick commit on it). Results replace the "store" section of docs/benchmarks.md.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { createClient } from '@training-callbacks/grpc-adapter';
import { startPostgres } from '@training-callbacks/postgres-testing';
import { TrainingCallbacks as Service, TaskType } from '@training-callbacks/proto';
import { type SidecarProcess, startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { runIngest } from './ingest-run.ts';
import { latencyStats, profileShares, profileTotals, startBare } from './latency-stats.ts';
import { cpuSeconds, mibAndMb, mibToMb, rssMiB } from './proc-stats.ts';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 2 : 10;
const CALLS_PER_ROUND = quick ? 200 : 500;
const INGEST_STEPS = quick ? 20_000 : 200_000;
const METRICS_PER_STEP = 10;
const LOAD_TRAINERS = 50;
const LOAD_POINTS_PER_S = 2_000;
const LOAD_EPOCH_EVERY_S = 3;
const LOAD_SECONDS = quick ? 8 : 30;
const PROFILE_CALLS = quick ? 500 : 4_000;
const root = path.resolve(import.meta.dirname, '../..');

type Stats = ReturnType<typeof latencyStats>;
const ms = (s: Stats | undefined) => (s ? `${s.p50.toFixed(3)} / ${s.p99.toFixed(3)} ms` : 'not measured');

const epochMetrics = (epoch: number) => ({
  accuracy: 0.5 + (epoch % 1000) / 2500,
  top5_accuracy: 0.9,
  train_loss: 1 / (epoch + 1),
  val_loss: 1.1 / (epoch + 1),
  learning_rate: 1e-3,
});

/** Acknowledged batch points per second of one trainer streaming INGEST_STEPS × 10 metrics. */
async function ingest(address: string, jobId: string): Promise<number> {
  const { pointsPerSecond } = await runIngest({
    address,
    jobId,
    steps: INGEST_STEPS,
    metricsPerStep: METRICS_PER_STEP,
    channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
  });
  return pointsPerSecond;
}

/** What a run of trainer-load.ts measured, and what the sidecars' own EndEpoch histogram counted meanwhile. */
interface LoadResult {
  stats: Stats;
  points: number;
  lost: number;
  loopDelayMs: { p99: number; max: number };
  /** EndEpoch calls the sidecars answered within 10 ms of reaching the handler, of all they answered. */
  handled: { within10ms: number; calls: number };
}

/**
 * The sidecars' `rpc_duration_seconds` histogram of EndEpoch (from a call reaching the handler to its
 * status sent), summed: calls within 10 ms and all. Set against the generator's times, it tells the
 * handler's share of a slow call from the share of the event loops and the scheduler on either side.
 */
async function endEpochHistogram(sidecars: SidecarProcess[]): Promise<{ within10ms: number; calls: number }> {
  let within10ms = 0;
  let calls = 0;
  for (const sidecar of sidecars) {
    const text = await (await fetch(`http://${sidecar.httpAddress}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (!line.startsWith('training_callbacks_rpc_duration_seconds_bucket{')) continue;
      if (!line.includes('method="EndEpoch"')) continue;
      const le = /le="([^"]+)"/.exec(line)?.[1];
      const count = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (le === '0.01') within10ms += count;
      if (le === '+Inf') calls += count;
    }
  }
  return { within10ms, calls };
}

/** Runs trainer-load.ts against `sidecars` and returns its EndEpoch latencies. */
async function underLoad(sidecars: SidecarProcess[]): Promise<LoadResult> {
  const addresses = sidecars.map((s) => s.address);
  const before = await endEpochHistogram(sidecars);
  const child = spawn(
    process.execPath,
    [
      '--conditions=@training-callbacks/source',
      path.join(import.meta.dirname, 'trainer-load.ts'),
      addresses.join(','),
      String(LOAD_TRAINERS),
      String(LOAD_POINTS_PER_S),
      String(LOAD_EPOCH_EVERY_S),
      String(LOAD_SECONDS),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`trainer-load exited ${code}`);
  const result = JSON.parse(out.trim().split('\n').at(-1)!) as {
    endEpochMs: number[];
    points: number;
    lost: number;
    generatorLoopDelayMs: { p99: number; max: number };
  };
  const after = await endEpochHistogram(sidecars);
  return {
    stats: latencyStats(result.endEpochMs),
    points: result.points,
    lost: result.lost,
    loopDelayMs: result.generatorLoopDelayMs,
    handled: { within10ms: after.within10ms - before.within10ms, calls: after.calls - before.calls },
  };
}

/** A server of the end-epoch comparison started with `--cpu-prof`, and how to end it so it writes its profile. */
interface ProfiledServer {
  address: string;
  profileDir: string;
  stop(): Promise<unknown>;
  /** The sidecar, when the server is one (a yardstick has none). */
  sidecar?: SidecarProcess;
}

/**
 * What an end-epoch call costs the server's main thread, by what ran: µs of CPU per call, from a
 * `--cpu-prof` of a fresh server over PROFILE_CALLS sequential calls after as many to warm up (only the
 * timed ones are counted). Set side by side with the yardstick's, it says where the sidecar's p50 gap is.
 */
async function cpuPerCallByCategory(server: ProfiledServer): Promise<Map<string, number>> {
  const client = createClient(Service, server.address);
  let fromUs = 0;
  let toUs = 0;
  try {
    await client
      .beginTraining({ jobId: 'bench-profile', taskType: TaskType.IMAGE_CLASSIFICATION, framework: 'bench' })
      .catch(() => {}); // the yardsticks do not implement it
    let epoch = 0;
    const calls = async () => {
      for (let i = 0; i < PROFILE_CALLS; i++)
        await client.endEpoch({ jobId: 'bench-profile', epoch: epoch++, metrics: epochMetrics(epoch) });
    };
    await calls(); // warm-up
    fromUs = Number(process.hrtime.bigint() / 1000n);
    await calls();
    toUs = Number(process.hrtime.bigint() / 1000n);
  } finally {
    client.close();
    await server.stop();
  }
  const [file] = await readdir(server.profileDir);
  const totals = await profileTotals(path.join(server.profileDir, file!), { fromUs, toUs });
  return new Map([...totals].map(([category, ms]) => [category, (ms * 1000) / PROFILE_CALLS]));
}

/** The table of {@link cpuPerCallByCategory} for the servers given (columns), biggest gap first. */
function cpuByCategoryTable(
  columns: [string, Map<string, number>][],
  gaps: [string, string, string][],
): string {
  const byName = new Map(columns);
  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  /** A gap's µs in one category, or over all of them. */
  const gap = ([, a, b]: [string, string, string], c?: string) => {
    const [x, y] = [byName.get(a)!, byName.get(b)!];
    return c === undefined ? total(x) - total(y) : (x.get(c) ?? 0) - (y.get(c) ?? 0);
  };
  const categories = [...new Set(columns.flatMap(([, m]) => [...m.keys()]))];
  const gapSum = (c: string) => gaps.reduce((sum, g) => sum + gap(g, c), 0);
  categories.sort((a, b) => gapSum(b) - gapSum(a));
  const cell = (m: Map<string, number>, c: string) => (m.get(c) ?? 0).toFixed(0);
  const gapCell = (g: [string, string, string], c?: string) => {
    const d = gap(g, c);
    return `${d >= 0 ? '+' : '−'}${Math.abs(d).toFixed(0)}`;
  };
  const header = [...columns.map(([name]) => name), ...gaps.map(([name]) => name)];
  const rows = categories.map(
    (c) =>
      `| ${c} | ${[...columns.map(([, m]) => cell(m, c)), ...gaps.map((g) => gapCell(g, c))].join(' | ')} |`,
  );
  const all = `| all | ${[...columns.map(([, m]) => total(m).toFixed(0)), ...gaps.map((g) => gapCell(g))].join(' | ')} |`;
  return [
    `| µs of CPU per end-epoch call, by what ran | ${header.join(' | ')} |`,
    `|---|${header.map(() => '---|').join('')}`,
    ...rows,
    all,
  ].join('\n');
}

/** Whether a sidecar started on `url` keeps its tables in PostgreSQL (the dialect exists). */
async function servesPostgres(sidecar: SidecarProcess, sql: (s: string) => Promise<string[][]>) {
  const [[tables] = ['0']] = await sql(
    "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name NOT LIKE 'bare_%'",
  );
  return sidecar.child.exitCode === null && Number(tables) > 0;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tc-store-bench-'));
  await using pg = await startPostgres({ database: 'bench' });
  console.log(`store benchmark${quick ? ' (quick)' : ''}: PostgreSQL ${pg.version} at ${pg.url}`);
  const sidecars: SidecarProcess[] = [];
  /** A built sidecar on `db` (SQLite when undefined) in its own folder `name`, disposed at the end. */
  const start = async (db: string | undefined, name: string, nodeFlags: string[] = []) => {
    const dataDir = path.join(dir, name);
    await mkdir(dataDir);
    // cwd: a sidecar without the dialect takes the URL for a relative file name; keep that in the temp dir.
    const s = await startSidecarProcess({
      dataDir,
      cwd: dataDir,
      dbPath: db,
      args: ['--quiet'],
      entry: 'dist',
      nodeFlags,
    });
    sidecars.push(s); // disposed at the end, also when a pass fails
    return s;
  };
  const bares: { kill(): void }[] = [];
  try {
    const sqlite = await start(undefined, 'sqlite');
    const postgres = await start(pg.url, 'pg');
    const pgServed = await servesPostgres(postgres, (s) => pg.sql(s));
    const pgNote = pgServed
      ? ''
      : `the sidecar does not store in PostgreSQL yet (started with --db ${pg.url} it created no tables there)`;
    if (!pgServed) console.log(`PostgreSQL sidecar rows NOT MEASURED: ${pgNote}`);
    const bareSqlite = await startBare(path.join(dir, 'bare.sqlite'));
    const barePg = await startBare(await pg.createDatabase('bare'), 'bare-server-postgres.ts');
    bares.push(bareSqlite, barePg);

    await new Promise((r) => setTimeout(r, 3000));
    const idle = {
      sqlite: await rssMiB(sqlite.child.pid!),
      postgres: pgServed ? await rssMiB(postgres.child.pid!) : undefined,
    };

    // End-epoch, interleaved over the four servers round by round.
    const servers = [
      ['sqlite', sqlite.address],
      ['bareSqlite', bareSqlite.address],
      ...(pgServed ? [['postgres', postgres.address]] : []),
      ['barePg', barePg.address],
    ] as const;
    const samples: Record<string, number[]> = Object.fromEntries(servers.map(([name]) => [name, []]));
    // CPU time of each server's own process over its timed calls: what the sidecar spends per call
    // beyond its yardstick (a PostgreSQL backend's work is not in it).
    const pids: Record<string, number> = {
      sqlite: sqlite.child.pid!,
      bareSqlite: bareSqlite.pid,
      postgres: postgres.child.pid!,
      barePg: barePg.pid,
    };
    const cpuSecondsOf: Record<string, number> = Object.fromEntries(servers.map(([name]) => [name, 0]));
    const clients = servers.map(([name, address]) => [name, createClient(Service, address)] as const);
    for (const [, client] of clients) {
      await client
        .beginTraining({ jobId: 'bench-epochs', taskType: TaskType.IMAGE_CLASSIFICATION, framework: 'bench' })
        .catch(() => {});
    }
    let epoch = 0;
    for (let round = 0; round < ROUNDS + 1; round++) {
      for (const [name, client] of clients) {
        const times: number[] = [];
        const cpuBefore = await cpuSeconds(pids[name]!);
        for (let i = 0; i < CALLS_PER_ROUND; i++) {
          const request = { jobId: 'bench-epochs', epoch: epoch++, metrics: epochMetrics(epoch) };
          const t = process.hrtime.bigint();
          await client.endEpoch(request);
          times.push(Number(process.hrtime.bigint() - t) / 1e6);
        }
        if (round > 0) {
          // round 0 warms up every server
          samples[name]!.push(...times);
          cpuSecondsOf[name]! += (await cpuSeconds(pids[name]!)) - cpuBefore;
        }
      }
      process.stdout.write(`\rend-epoch round ${round}/${ROUNDS}`);
    }
    process.stdout.write('\n');
    for (const [, client] of clients) client.close();
    const epochs = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, latencyStats(v)]));
    const cpuPerCall = (name: string) =>
      samples[name]?.length ? `${((cpuSecondsOf[name]! / samples[name]!.length) * 1e6).toFixed(0)} µs` : '—';
    for (const [k, v] of Object.entries(epochs))
      console.log(`end-epoch ${k}: ${ms(v)}, CPU ${cpuPerCall(k)}/call`);

    // Sustained ingest, one trainer per dialect.
    const ingestSqlite = await ingest(sqlite.address, 'bench-ingest-sqlite');
    console.log(`ingest sqlite ${(ingestSqlite / 1e6).toFixed(2)} M points/s`);
    let ingestPg: number | undefined;
    let threeOnOne: number | undefined;
    let threeOnThree: number | undefined;
    let loadPg3: LoadResult | undefined;
    let loadPg: LoadResult | undefined;
    if (pgServed) {
      ingestPg = await ingest(postgres.address, 'bench-ingest-pg');
      console.log(`ingest postgres ${(ingestPg / 1e6).toFixed(2)} M points/s`);
      // 1 vs 3 sidecars on one PostgreSQL: three concurrent trainers.
      const sum = (rates: number[]) => rates.reduce((a, b) => a + b, 0);
      threeOnOne = sum(await Promise.all([0, 1, 2].map((i) => ingest(postgres.address, `bench-1x-${i}`))));
      const more = [postgres, await start(pg.url, 'pg2'), await start(pg.url, 'pg3')];
      threeOnThree = sum(await Promise.all(more.map((s, i) => ingest(s.address, `bench-3x-${i}`))));
      console.log(
        `3 trainers: 1 sidecar ${(threeOnOne / 1e6).toFixed(2)}, 3 sidecars ${(threeOnThree / 1e6).toFixed(2)} M points/s`,
      );
      loadPg = await underLoad([postgres]);
      console.log(`50 trainers, postgres, 1 sidecar: ${ms(loadPg.stats)}`);
      loadPg3 = await underLoad(more);
      console.log(`50 trainers, postgres, 3 sidecars: ${ms(loadPg3.stats)}`);
    }
    const loadSqlite = await underLoad([sqlite]);
    console.log(
      `50 trainers, sqlite: ${ms(loadSqlite.stats)} (${loadSqlite.points} points, ${loadSqlite.lost} lost)`,
    );

    // What limits the targets, in passes of their own (the profiler's overhead stays out of the numbers
    // above): fresh servers under --cpu-prof, the end-epoch call by call against the yardsticks, then a
    // sidecar of each dialect under the 50-trainer load; time summed by what ran.
    let profiles = 0;
    const profiling = () => {
      const profileDir = path.join(dir, `profile-${profiles++}`);
      return { profileDir, nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] };
    };
    const profiledSidecar = async (db: string | undefined): Promise<ProfiledServer> => {
      const { profileDir, nodeFlags } = profiling();
      const s = await start(db, `${path.basename(profileDir)}-data`, nodeFlags);
      return { address: s.address, profileDir, stop: () => s.stop('SIGTERM'), sidecar: s };
    };
    const profiledBare = async (db: string, script?: string): Promise<ProfiledServer> => {
      const { profileDir, nodeFlags } = profiling();
      const bare = await startBare(db, script, nodeFlags);
      bares.push(bare);
      return { address: bare.address, profileDir, stop: () => bare.stop() };
    };
    const perCall: [string, Map<string, number>][] = [
      ['SQLite sidecar', await cpuPerCallByCategory(await profiledSidecar(undefined))],
      [
        'SQLite yardstick',
        await cpuPerCallByCategory(await profiledBare(path.join(dir, 'bare-profiled.sqlite'))),
      ],
    ];
    const gaps: [string, string, string][] = [['SQLite gap', 'SQLite sidecar', 'SQLite yardstick']];
    if (pgServed) {
      perCall.push(
        [
          'PostgreSQL sidecar',
          await cpuPerCallByCategory(await profiledSidecar(await pg.createDatabase('profiled'))),
        ],
        [
          'PostgreSQL yardstick',
          await cpuPerCallByCategory(
            await profiledBare(await pg.createDatabase('bare_profiled'), 'bare-server-postgres.ts'),
          ),
        ],
      );
      gaps.push(['PostgreSQL gap', 'PostgreSQL sidecar', 'PostgreSQL yardstick']);
    }
    const perCallTable = cpuByCategoryTable(perCall, gaps);
    console.log(perCallTable);
    const loadProfileLine = async (db: string | undefined) => {
      const profiled = await profiledSidecar(db);
      await underLoad([profiled.sidecar!]);
      await profiled.stop(); // a clean exit writes the profile
      const [file] = await readdir(profiled.profileDir);
      return (await profileShares(path.join(profiled.profileDir, file!)))
        .filter(([, v]) => v >= 0.02)
        .map(([k, v]) => `${k} ${(v * 100).toFixed(0)} %`)
        .join(', ');
    };
    const profileLine = await loadProfileLine(undefined);
    console.log(`profile under load, SQLite: ${profileLine}`);
    const profileLinePg = pgServed
      ? await loadProfileLine(await pg.createDatabase('profiled_load'))
      : undefined;
    if (profileLinePg) console.log(`profile under load, PostgreSQL: ${profileLinePg}`);

    const handledLine = (load: LoadResult) => `${load.handled.within10ms} of ${load.handled.calls} calls`;
    const ratio = (a?: Stats, b?: Stats) =>
      a && b ? `${(a.p50 / b.p50).toFixed(2)}× / ${(a.p99 / b.p99).toFixed(2)}×` : '—';
    const rate = (r?: number) => (r === undefined ? 'not measured' : `${(r / 1e6).toFixed(2)} M points/s`);
    const met = (ok: boolean | undefined) => (ok === undefined ? '—' : ok ? 'met' : '**missed**');
    const cpu = cpus()[0]?.model ?? 'unknown CPU';
    const load = loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ');
    const section = `<!-- store:start -->
## Store on both dialects: SQLite and PostgreSQL side by side

Command: \`npm run bench:store\` (script: \`tools/bench/pg-bench.ts\`). Measured ${new Date().toISOString().slice(0, 10)} on
${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, PostgreSQL ${pg.version}
(a local server from \`@training-callbacks/postgres-testing\`: fsync off, loopback TCP). The sidecars (built, as
\`npm start\` runs them), the yardsticks and the load generator are separate processes; the round-trip client is
the benchmark's own process. End-epoch: ${ROUNDS} interleaved rounds × ${CALLS_PER_ROUND} calls per server. Load
average at the end (1 / 5 / 15 min): ${load} — the machine is shared, so compare within a row, not with other runs.
${pgNote ? `\n**PostgreSQL sidecar rows not measured in this run:** ${pgNote}.\n` : ''}
| measure | SQLite | PostgreSQL | target |
|---|---|---|---|
| end-epoch sidecar, p50 / p99 | ${ms(epochs.sqlite)} | ${ms(epochs.postgres)} | |
| end-epoch yardstick (grpc-js + one commit), p50 / p99 | ${ms(epochs.bareSqlite)} | ${ms(epochs.barePg)} | |
| CPU of the server's own process per end-epoch call, sidecar / yardstick | ${cpuPerCall('sqlite')} / ${cpuPerCall('bareSqlite')} | ${cpuPerCall('postgres')} / ${cpuPerCall('barePg')} | |
| sidecar ÷ yardstick, p50 / p99 | ${ratio(epochs.sqlite, epochs.bareSqlite)} | ${ratio(epochs.postgres, epochs.barePg)} | SQLite p50 ≤ 1.36× (goal 1.25×): ${met(epochs.sqlite && epochs.sqlite.p50 / epochs.bareSqlite!.p50 <= 1.36)}; PostgreSQL p50 ≤ 1.5×: ${met(epochs.postgres && epochs.postgres.p50 / epochs.barePg!.p50 <= 1.5)} |
| sustained batch ingest, one trainer (${INGEST_STEPS.toLocaleString('en')} steps × ${METRICS_PER_STEP} metrics) | ${rate(ingestSqlite)} | ${rate(ingestPg)} | ≥ 1 M points/s: ${met(ingestSqlite >= 1e6)} / ${met(ingestPg === undefined ? undefined : ingestPg >= 1e6)} |
| 3 concurrent trainers: 1 sidecar / 3 sidecars on one PostgreSQL | — | ${rate(threeOnOne)} / ${rate(threeOnThree)} | |
| end-epoch under 50 trainers (1 load process, 50 channels, ${LOAD_POINTS_PER_S.toLocaleString('en')} points/s each, EndEpoch every ${LOAD_EPOCH_EVERY_S} s from one epoch after each trainer's start, ${LOAD_SECONDS} s: ${loadSqlite.stats.n} calls), p50 / p99, 1 sidecar | ${ms(loadSqlite.stats)} | ${ms(loadPg?.stats)} | p99 ≤ 10 ms: ${met(loadSqlite.stats.p99 <= 10)} / ${met(loadPg && loadPg.stats.p99 <= 10)} |
| the same on 3 sidecars sharing the PostgreSQL | — | ${ms(loadPg3?.stats)} | |
| idle RSS of the sidecar | ${mibAndMb(idle.sqlite)} | ${idle.postgres === undefined ? 'not measured' : mibAndMb(idle.postgres)} | ≤ 110 MB: ${met(mibToMb(idle.sqlite) <= 110)} / ${met(idle.postgres === undefined ? undefined : mibToMb(idle.postgres) <= 110)} |

Under load, EndEpoch is a plain unary call of each trainer (own channel) timed in the load generator, while
the trainers stream their batch points as the TypeScript client does (a ReportBatchMetrics stream every 200 ms
per trainer, bytes written by the client's encoder) on raw grpc-js channels — not through 50 clients in one
heap, whose collections would delay the EndEpoch being timed; the sidecar acknowledged ${loadSqlite.points.toLocaleString('en')} points in ${LOAD_SECONDS} s on SQLite
(${((loadSqlite.points / LOAD_SECONDS / (LOAD_TRAINERS * LOAD_POINTS_PER_S)) * 100).toFixed(0)} % of the offered
${(LOAD_TRAINERS * LOAD_POINTS_PER_S).toLocaleString('en')} points/s), ${loadSqlite.lost} lost. The load generator's own event-loop delay (how late it ran its
callbacks, so how late it may have seen an answer): p99 ${loadSqlite.loopDelayMs.p99.toFixed(1)} ms, max ${loadSqlite.loopDelayMs.max.toFixed(1)} ms on SQLite${loadPg ? `, p99 ${loadPg.loopDelayMs.p99.toFixed(1)} ms, max ${loadPg.loopDelayMs.max.toFixed(1)} ms on PostgreSQL` : ''}.
The sidecars' own EndEpoch histogram (\`rpc_duration_seconds\`, from a call reaching the handler to its status
sent) counted ${handledLine(loadSqlite)} within 10 ms on SQLite${loadPg ? `, ${handledLine(loadPg)} on PostgreSQL with 1 sidecar` : ''}${loadPg3 ? ` and ${handledLine(loadPg3)} with 3` : ''}:
what a slow call spends beyond that is outside the handler (the event loops on either side, the scheduler).

What the p50 gaps are made of: the CPU of each server's main thread per end-epoch call, by what ran
(\`--cpu-prof\` of a fresh server, ${PROFILE_CALLS.toLocaleString('en')} sequential calls timed after as many to warm up; self time;
the profiler's sampling makes every column a little slower than the runs above; helper threads and
PostgreSQL's backends are not in it, so the columns add up to less than the CPU row — read the gaps):

${perCallTable}

Profile of a sidecar under the 50-trainer load (\`--cpu-prof\`, self time by what ran), on SQLite: ${profileLine}${profileLinePg ? `; on PostgreSQL: ${profileLinePg}` : ''}.
<!-- store:end -->`;
    const file = path.join(root, 'docs/benchmarks.md');
    const doc = await readFile(file, 'utf8');
    const next = doc.includes('<!-- store:start -->')
      ? doc.replace(/<!-- store:start -->[\s\S]*<!-- store:end -->/, section)
      : `${doc.trimEnd()}\n\n${section}\n`;
    if (!quick) await writeFile(file, next);
    console.log(section);
  } finally {
    for (const bare of bares) bare.kill();
    for (const s of sidecars) await s[Symbol.asyncDispose]();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
