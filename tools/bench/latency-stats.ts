// Shared by the benchmarks that compare a server with its yardstick (sidecar-bench.ts, pg-bench.ts,
// pg-save-epoch-profile.ts): percentiles, starting a yardstick server process, and summing a
// --cpu-prof profile by what ran.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** p50 and p99 (ms) of latency samples. */
export function latencyStats(values: readonly number[]): { p50: number; p99: number; n: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), n: sorted.length };
}

/**
 * Starts a yardstick server (a script of this folder printing "listening on ADDR": bare-server.ts for
 * SQLite, bare-server-postgres.ts for PostgreSQL) with `database` as its argument.
 */
export async function startBare(
  dbPath: string,
  script = 'bare-server.ts',
): Promise<{ address: string; pid: number; kill(): void }> {
  const child = spawn(
    process.execPath,
    ['--conditions=@training-callbacks/source', path.join(import.meta.dirname, script), dbPath],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const address = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /listening on (\S+)/.exec(line);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`bare server exited ${code}`)));
  });
  return { address, pid: child.pid!, kill: () => child.kill('SIGKILL') };
}

export /** Where a CPU-profile sample's time goes, by the code it ran in (self time, not inclusive). */
function categoryOf(url: string, fn: string): string | undefined {
  if (fn === '(idle)') return undefined;
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === '(program)') return 'V8 internals (program)';
  if (
    /esm\/(loader|module_job|utils|translators)|cjs\/loader|compileSourceTextModule|wrapSafe/.test(url + fn)
  )
    return 'start-up';
  // The store's dialect module calls the native statements; their time is SQLite's own work.
  if (/better-sqlite3|store\/(src|dist)\/sqlite-dialect/.test(url))
    return 'SQLite statements and commit (better-sqlite3)';
  if (/node_modules\/(pg|pg-protocol|pg-pool)\//.test(url)) return 'PostgreSQL driver (pg)';
  if (/packages\/store|@mikro-orm|kysely/.test(url)) return 'store (MikroORM / Kysely)';
  if (/@bufbuild\/protobuf/.test(url)) return 'protobuf encode / decode';
  if (/@grpc\/grpc-js|internal\/http2|grpc-adapter/.test(url))
    return 'gRPC + HTTP/2 (grpc-js, node:http2, adapter)';
  if (/apps\/sidecar|metric-catalog/.test(url))
    return 'sidecar logic (validation, catalog, best epoch, response)';
  return 'Node runtime (streams, events, microtasks, timers)';
}

interface CallFrame {
  url: string;
  functionName: string;
  lineNumber: number;
}

/** Per bundle file: the first line of each bundled module and that module's path. */
const bundles = new Map<string, { starts: number[]; modules: string[] }>();

/**
 * The module a frame's code is from. The sidecar as `npm start` runs it is one rolldown bundle
 * (apps/sidecar/dist/bundle/), which opens every module it holds with a `// <path>` line (relative to
 * apps/sidecar, where rolldown runs): a bundled frame is given the path of the module its line is in.
 */
function moduleUrlOf(frame: CallFrame): string {
  if (!/\/dist\/bundle\/[^/]+\.js$/.test(frame.url)) return frame.url;
  let bundle = bundles.get(frame.url);
  if (!bundle) {
    const file = fileURLToPath(frame.url);
    const root = path.resolve(path.dirname(file), '../..');
    bundle = { starts: [], modules: [] };
    const lines = readFileSync(file, 'utf8').split('\n');
    for (const [i, line] of lines.entries()) {
      const marker = /^\/\/ ((?:\.\.\/)*(?:node_modules|packages|dist)\/\S+\.[cm]?js)$/.exec(line);
      if (!marker) continue;
      bundle.starts.push(i);
      bundle.modules.push(path.resolve(root, marker[1]!));
    }
    bundles.set(frame.url, bundle);
  }
  let low = 0;
  let high = bundle.starts.length - 1;
  if (high < 0 || frame.lineNumber < bundle.starts[0]!) return frame.url;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (bundle.starts[mid]! <= frame.lineNumber) low = mid;
    else high = mid - 1;
  }
  return bundle.modules[low]!;
}

/** Sums a .cpuprofile's self time per category, start-up excluded, as shares of busy time. */
export async function profileShares(file: string): Promise<[string, number][]> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as {
    nodes: { id: number; callFrame: CallFrame }[];
    samples: number[];
    timeDeltas: number[];
  };
  const nodes = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const totals = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const frame = nodes.get(id)!;
    const category = categoryOf(moduleUrlOf(frame), frame.functionName);
    if (category && category !== 'start-up')
      totals.set(category, (totals.get(category) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const busy = [...totals.values()].reduce((a, b) => a + b, 0);
  return [...totals].map(([k, v]) => [k, v / busy] as [string, number]).sort((a, b) => b[1] - a[1]);
}

/** Busy (non-idle) milliseconds in a .cpuprofile, start-up excluded. */
export async function profileBusyMs(file: string): Promise<number> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as {
    nodes: { id: number; callFrame: CallFrame }[];
    samples: number[];
    timeDeltas: number[];
  };
  const nodes = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const frame = nodes.get(id)!;
    const category = categoryOf(moduleUrlOf(frame), frame.functionName);
    if (category && category !== 'start-up') busy += profile.timeDeltas[i] ?? 0;
  });
  return busy / 1000;
}
