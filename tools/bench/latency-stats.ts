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
 * SQLite, bare-server-postgres.ts for PostgreSQL) with `database` as its argument, `nodeFlags` before it.
 */
export async function startBare(
  dbPath: string,
  script = 'bare-server.ts',
  nodeFlags: string[] = [],
): Promise<{ address: string; pid: number; kill(): void; stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    [...nodeFlags, '--conditions=@training-callbacks/source', path.join(import.meta.dirname, script), dbPath],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  // Listened for from the start: a yardstick that exits before stop() must not leave stop() waiting.
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /listening on (\S+)/.exec(line);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`bare server exited ${code}`)));
  });
  return {
    address,
    pid: child.pid!,
    kill: () => child.kill('SIGKILL'),
    /** SIGTERM and wait: the yardstick exits normally, so a `--cpu-prof` in `nodeFlags` writes its profile. */
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const SQLITE_WORK = 'SQLite statements and commit (better-sqlite3)';
const SOCKET_WRITES = 'socket writes (writev; on loopback TCP the receiving side runs in the call)';
/** Frames that are V8's own states, not code. */
const V8_STATES = new Set(['(idle)', '(garbage collector)', '(program)', '(root)']);
/** Native writes to a socket (libuv stream wraps): the system call's time, not JavaScript's. */
const SOCKET_WRITE_CALLS = new Set([
  'writev',
  'writeBuffer',
  'writeUtf8String',
  'writeLatin1String',
  'writeAsciiString',
]);
/**
 * SQLite's own work: V8 counts a native binding's time to the JavaScript that called it, so the time of
 * better-sqlite3's statements is the self time of the functions that call them — Kysely's SQLite driver
 * (its connection's executeQuery, which the store's statements end in), the store's SQLite dialect and
 * the SQLite yardstick.
 */
const SQLITE_CODE =
  /better-sqlite3|kysely\/dist\/dialect\/sqlite\/sqlite-driver|store\/(src|dist)\/sqlite-dialect|tools\/bench\/bare-server\.ts$/;

/** Where a CPU-profile sample's time goes, by the code it ran in (self time, not inclusive). */
export function categoryOf(url: string, fn: string): string | undefined {
  if (fn === '(idle)') return undefined;
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === '(program)') return 'V8 internals (program)';
  if (
    /esm\/(loader|module_job|utils|translators)|cjs\/loader|compileSourceTextModule|wrapSafe/.test(url + fn)
  )
    return 'start-up';
  if (SQLITE_CODE.test(url)) return SQLITE_WORK;
  if (/node_modules\/(pg|pg-[a-z-]+|postgres-[a-z-]+)\//.test(url)) return 'PostgreSQL driver (pg)';
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

/**
 * The category of a profile node's self time. Native code that has a frame of its own (a builtin or a
 * binding without a URL) counts where the JavaScript that called it belongs, except socket writes, whose
 * system call is its own line.
 */
function nodeCategory(id: number, nodes: Map<number, CallFrame>, parents: Map<number, number>) {
  const frame = nodes.get(id)!;
  if (frame.url !== '' || V8_STATES.has(frame.functionName))
    return categoryOf(moduleUrlOf(frame), frame.functionName);
  if (SOCKET_WRITE_CALLS.has(frame.functionName)) return SOCKET_WRITES;
  for (let up = parents.get(id); up !== undefined; up = parents.get(up)) {
    const caller = nodes.get(up)!;
    if (caller.url === '') continue;
    return categoryOf(moduleUrlOf(caller), caller.functionName);
  }
  return categoryOf('', frame.functionName);
}

/** A time window on the monotonic clock, in µs: `process.hrtime.bigint() / 1000n` on this host. */
export interface ProfileWindow {
  fromUs: number;
  toUs: number;
}

/**
 * A .cpuprofile's self time per category in ms, start-up excluded; with `window`, only the samples taken
 * in it. V8 stamps samples with the same monotonic clock as `process.hrtime` (CLOCK_MONOTONIC on Linux),
 * so another process's hrtime marks the window: the calls a benchmark timed, not the warm-up before them.
 */
export async function profileTotals(file: string, window?: ProfileWindow): Promise<Map<string, number>> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as {
    nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
    startTime: number;
    samples: number[];
    timeDeltas: number[];
  };
  const nodes = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  const categories = new Map<number, string | undefined>();
  const categoryOfNode = (id: number) => {
    if (!categories.has(id)) categories.set(id, nodeCategory(id, nodes, parents));
    return categories.get(id);
  };
  const totals = new Map<string, number>();
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (window && (at < window.fromUs || at > window.toUs)) return;
    const category = categoryOfNode(id);
    if (category && category !== 'start-up') totals.set(category, (totals.get(category) ?? 0) + delta / 1000);
  });
  if (window && totals.size === 0)
    throw new Error(`no samples of ${file} in the window ${window.fromUs}–${window.toUs} µs: another clock?`);
  return totals;
}

/** Sums a .cpuprofile's self time per category, start-up excluded, as shares of busy time. */
export async function profileShares(file: string): Promise<[string, number][]> {
  const totals = await profileTotals(file);
  const busy = [...totals.values()].reduce((a, b) => a + b, 0);
  return [...totals].map(([k, v]) => [k, v / busy] as [string, number]).sort((a, b) => b[1] - a[1]);
}

/** Busy (non-idle) milliseconds in a .cpuprofile, start-up excluded. */
export async function profileBusyMs(file: string): Promise<number> {
  return [...(await profileTotals(file)).values()].reduce((a, b) => a + b, 0);
}
