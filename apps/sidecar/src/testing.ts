// Test helpers: start the real sidecar as a child process (the way it runs in production) on a
// free loopback port with a temporary SQLite file — or, when TRAINING_CALLBACKS_TEST_POSTGRES names a
// PostgreSQL server (the e2e suite's PostgreSQL run), a fresh database on it. `await using` ends it even
// when a test fails.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createTestDatabase } from '@training-callbacks/postgres-testing';

export type { CertificateFiles } from './testing-certificates.ts';
export { createCertificateAuthority, issueCertificate } from './testing-certificates.ts';

/** The default entry of the sidecar processes tests start ('source' or 'dist'; see `entry`). */
export const TEST_ENTRY_ENV = 'TRAINING_CALLBACKS_TEST_ENTRY';
const SOURCE_MAIN = path.join(import.meta.dirname, 'main.ts');
const DIST_MAIN = path.join(import.meta.dirname, '..', 'dist', 'bundle', 'main.js');
const LAUNCHER = path.join(import.meta.dirname, '..', 'bin', 'training-callbacks.js');
/**
 * The V8 flags `npm start`, the image and `training-callbacks serve` run the built sidecar with
 * (production-flags.spec.ts holds them to it): a smaller young generation (less idle memory), and garbage collection on the main
 * thread alone — on a node whose cores the trainer, PostgreSQL and the sidecar share, V8's parallel GC
 * helpers waited for a core while the event loop waited for them: the 50-trainer EndEpoch p99 on
 * PostgreSQL went from 8–21 ms (median 18) to 9–12 ms (median 10) side by side (docs/benchmarks.md).
 */
export const PRODUCTION_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--single-threaded-gc'];

const STARTUP_TIMEOUT_MS = 60_000;

/** Options of {@link startSidecarProcess}. */
export interface SidecarProcessOptions {
  /** Directory for the database and artifacts; a fresh temp dir (removed on dispose) when omitted. */
  dataDir?: string;
  /**
   * The database (`--db`): a file, or a `postgres://` URL. Default: a fresh database on the server of
   * `TRAINING_CALLBACKS_TEST_POSTGRES` when that is set, else `<dataDir>/training-callbacks.sqlite`.
   */
  dbPath?: string;
  /** Extra flags, e.g. `['--artifact-root', dir]`. */
  args?: readonly string[];
  /** Extra environment. */
  env?: NodeJS.ProcessEnv;
  /** Address to listen on; default 127.0.0.1:0. */
  listen?: string;
  /** Startup timeout in ms (default 60 s: on a loaded 2-core machine a start can take 20 s). */
  timeoutMs?: number;
  /**
   * 'source' runs src/main.ts through Node's type stripping; 'dist' runs the built
   * dist/bundle/main.js the way `npm start` does (build first: `nx run @training-callbacks/sidecar:build`).
   * Default: {@link TEST_ENTRY_ENV} if set ('dist' in the e2e suite: it tests what ships), else 'source'.
   * 'launcher' runs `bin/training-callbacks.js serve`, the command line's way to the built sidecar.
   */
  entry?: 'source' | 'dist' | 'launcher';
  /** Working directory of the process; default this process's. */
  cwd?: string;
  /** Extra Node flags for the sidecar process, e.g. `['--cpu-prof', '--cpu-prof-dir', dir]`. */
  nodeFlags?: readonly string[];
}

/** A sidecar child process. */
export interface SidecarProcess extends AsyncDisposable {
  readonly address: string;
  /** The HTTP listener's "host:port" (probes, /metrics); undefined when started with `--http off`. */
  readonly httpAddress: string | undefined;
  readonly dataDir: string;
  /** The `--db` it was started with: a SQLite file or a `postgres://` URL. */
  readonly dbPath: string;
  readonly child: ChildProcess;
  /** Every line the process printed so far (stdout and stderr). */
  readonly output: string[];
  /** Sends a signal and waits for the exit; returns the exit code (or the signal name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
}

/**
 * Set (by the e2e suite's PostgreSQL run) to a PostgreSQL server's URL: every sidecar started here without
 * an explicit `dbPath` then gets a fresh database on that server instead of a SQLite file.
 */
export const TEST_POSTGRES_ENV = 'TRAINING_CALLBACKS_TEST_POSTGRES';

/**
 * The `--db` for a sidecar of `options`: its own, else a fresh PostgreSQL database or the SQLite file.
 * Synchronous unless a database must be created: given a dataDir, a SQLite sidecar is then spawned
 * before startSidecarProcess first awaits (the restart bench pins the child's CPU by the spawning thread's).
 */
function databaseFor(options: SidecarProcessOptions, dataDir: string): string | Promise<string> {
  if (options.dbPath !== undefined) return options.dbPath;
  const server = process.env[TEST_POSTGRES_ENV];
  if (server) return postgresDatabaseOf(dataDir, server);
  return path.join(dataDir, 'training-callbacks.sqlite');
}

/**
 * The PostgreSQL database of a data directory: created on its first sidecar and named in the
 * directory, so that a sidecar started again on it (a restart after a SIGKILL) finds its data, as it
 * would find its SQLite file there.
 */
async function postgresDatabaseOf(dataDir: string, server: string): Promise<string> {
  const file = path.join(dataDir, 'postgres-url');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const url = await createTestDatabase(server);
    await mkdir(dataDir, { recursive: true }); // (a SQLite sidecar creates its file's directory itself)
    await writeFile(file, url);
    return url;
  }
}

/**
 * The artifact store of a sidecar on a test PostgreSQL database: `<dataDir>/artifacts`, where a SQLite
 * sidecar keeps it by default (next to its file). PostgreSQL's own default, `./data/artifacts` of the
 * working directory, would be shared by every sidecar of a run and left in the checkout.
 */
function testArtifactStoreArgs(options: SidecarProcessOptions, dataDir: string): string[] {
  if (options.dbPath !== undefined || !process.env[TEST_POSTGRES_ENV]) return [];
  if (options.args?.includes('--artifact-store')) return [];
  return ['--artifact-store', path.join(dataDir, 'artifacts')];
}

function entryOf(options: SidecarProcessOptions): 'source' | 'dist' | 'launcher' {
  const entry = options.entry ?? process.env[TEST_ENTRY_ENV] ?? 'source';
  if (entry !== 'source' && entry !== 'dist' && entry !== 'launcher') {
    throw new Error(`${TEST_ENTRY_ENV} must be "source" or "dist", got "${entry}"`);
  }
  if (entry !== 'source' && !existsSync(DIST_MAIN)) {
    throw new Error(`${DIST_MAIN} is not built: run \`npx nx run @training-callbacks/sidecar:build\` first`);
  }
  return entry;
}

/** Node's arguments before the sidecar's own for `entry`. */
function entryArgv(entry: 'source' | 'dist' | 'launcher', nodeFlags: readonly string[]): string[] {
  switch (entry) {
    case 'dist':
      return [...PRODUCTION_NODE_FLAGS, ...nodeFlags, DIST_MAIN];
    case 'launcher':
      return [...nodeFlags, LAUNCHER, 'serve'];
    case 'source':
      return [...nodeFlags, '--conditions=@training-callbacks/source', SOURCE_MAIN];
  }
}

function spawnSidecar(options: SidecarProcessOptions, dbPath: string, dataDir: string): ChildProcess {
  return spawn(
    process.execPath,
    [
      ...entryArgv(entryOf(options), options.nodeFlags ?? []),
      '--listen',
      options.listen ?? '127.0.0.1:0',
      '--db',
      dbPath,
      // Any free port, so that sidecars of parallel tests never fight over the default 50052.
      ...(options.args?.includes('--http') ? [] : ['--http', '127.0.0.1:0']),
      // Tests drive jobs through raw calls that send no heartbeats: on a loaded machine a job can idle
      // longer than the 60 s default lease. Tests of verdicts give their own (--trainer-lease 3).
      ...(options.args?.includes('--trainer-lease') ? [] : ['--trainer-lease', '3600']),
      ...testArtifactStoreArgs(options, dataDir),
      ...(options.args ?? []),
    ],
    { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

/**
 * Runs the sidecar where it is expected not to start (a refused database, a taken address) and
 * returns its exit code and output; rejects if it is still running after `timeoutMs` (then killed).
 */
export async function runSidecarUntilExit(
  options: SidecarProcessOptions & { dataDir: string },
): Promise<{ code: number | string; output: string }> {
  const child = spawnSidecar(options, await databaseFor(options, options.dataDir), options.dataDir);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const timeoutMs = options.timeoutMs ?? STARTUP_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sidecar still running after ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, output });
    });
  });
}

/** Signals a process gets from its own fault, not from a test that kills it. */
const CRASH_SIGNALS: ReadonlySet<string> = new Set(['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGILL', 'SIGFPE']);

/** Starts `apps/sidecar/src/main.ts` on the pinned Node and waits for its "listening on" line. */
export async function startSidecarProcess(options: SidecarProcessOptions = {}): Promise<SidecarProcess> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), 'tc-sidecar-')));
  const database = databaseFor(options, dataDir);
  const dbPath = typeof database === 'string' ? database : await database;
  const child = spawnSidecar(options, dbPath, dataDir);
  const output: string[] = [];
  let httpAddress: string | undefined;
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `sidecar did not start within ${options.timeoutMs ?? STARTUP_TIMEOUT_MS} ms:\n${output.join('\n')}`,
          ),
        ),
      options.timeoutMs ?? STARTUP_TIMEOUT_MS,
    );
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        output.push(line);
        // Printed before the "listening on" line.
        const http = /training-callbacks HTTP on ([^\s"]+)/.exec(line);
        if (http) httpAddress = http[1];
        const match = /listening on ([^\s"]+)/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
    }
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`sidecar exited (${code}) before listening:\n${output.join('\n')}`));
    });
  });
  let stopping = false;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    stopping = true;
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  // A sidecar that dies by itself mid-test (an uncaught error, a native crash) shows up in a test only
  // as refused connections; its own last words say why, so they go to the test's stderr.
  void exited.then(() => {
    const crashed =
      (child.exitCode !== null && child.exitCode !== 0) ||
      (child.signalCode !== null && CRASH_SIGNALS.has(child.signalCode));
    if (stopping || !crashed) return;
    process.stderr.write(
      `startSidecarProcess: the sidecar on ${address} (pid ${child.pid}) exited by itself ` +
        `(${child.exitCode ?? child.signalCode}); its last output:\n${output.slice(-40).join('\n')}\n`,
    );
  });
  return {
    address,
    httpAddress,
    dataDir,
    dbPath,
    child,
    output,
    stop,
    exited,
    async [Symbol.asyncDispose]() {
      await stop('SIGKILL');
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
