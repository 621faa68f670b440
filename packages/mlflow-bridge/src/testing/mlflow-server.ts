import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is `<root>/packages/mlflow-bridge/{src,dist}/testing/…`). */
export const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');

export interface MlflowServer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Temp dir with `mlflow.db` and `artifacts/`. */
  dir: string;
  /** The server's stdout+stderr so far (for diagnostics). */
  log(): string;
  stop(): Promise<void>;
}

export interface StartMlflowServerOptions {
  /** Python of an environment with MLflow; default: `tools/python/venv.sh mlflow` (created on first use). */
  python?: string;
  /** How long to wait for `/health` (default 180 s). */
  startTimeoutMs?: number;
  /** Extra `mlflow server` arguments. */
  extraArgs?: string[];
  /**
   * Runs the server under `nice -n <niceness>`. Benchmarks use 19: in production MLflow runs on
   * another machine, while here it shares two cores with the trainer and the sidecar being measured.
   */
  niceness?: number;
  /**
   * Worker processes (default 1: tests need one and it starts fastest; `mlflow server` itself defaults
   * to 4, which is what a benchmark against the server as users run it should use).
   */
  workers?: number;
  /**
   * MLflow's job execution (default false here; MLflow's own default is on): huey consumer processes
   * for GenAI jobs, which nothing of this project uses. Each of the seven imports MLflow when the server
   * starts (~4 s of CPU apiece, measured on this 2-core machine), so for the first ~30 s after /health
   * answers they starve the server's one worker: log-batch requests then took 2–10 s instead of
   * 0.3–0.7 s, and a test or benchmark right after start measured that instead of the server.
   */
  jobExecution?: boolean;
}

/** A free TCP port on 127.0.0.1 (free when returned; bind it soon). */
export async function freePort(): Promise<number> {
  return new Promise((ok, ko) => {
    const s = createServer();
    s.once('error', ko);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => ok(port));
    });
  });
}

/**
 * Runs `tools/python/venv.sh mlflow`: creates `.venv/mlflow` with the pinned MLflow on first use (progress goes
 * to stderr) and returns its python.
 */
export async function mlflowPython(): Promise<string> {
  return new Promise((ok, ko) => {
    const p = spawn('bash', [join(repoRoot, 'tools/python/venv.sh'), 'mlflow'], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.once('error', ko);
    p.once('exit', (code) => {
      const python = out.trim().split('\n').pop();
      if (code === 0 && python) ok(python);
      else ko(new Error(`tools/python/venv.sh mlflow failed with exit code ${code}`));
    });
  });
}

/**
 * Starts a real `mlflow server` on a free loopback port: SQLite backend, `--serve-artifacts` with a local
 * artifacts destination, all in a fresh temp dir; resolves once `/health` answers.
 */
export async function startMlflowServer(opts: StartMlflowServerOptions = {}): Promise<MlflowServer> {
  const python = opts.python ?? (await mlflowPython());
  const dir = await mkdtemp(join(tmpdir(), 'mlflow-test-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('MLFLOW_')) delete env[k];
  env.MLFLOW_SERVER_ENABLE_JOB_EXECUTION = String(opts.jobExecution ?? false);
  const command = opts.niceness === undefined ? python : 'nice';
  const prefix = opts.niceness === undefined ? [] : ['-n', String(opts.niceness), python];
  const child: ChildProcess = spawn(
    command,
    [
      ...prefix,
      '-m',
      'mlflow',
      'server',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--backend-store-uri',
      `sqlite:///${join(dir, 'mlflow.db')}`,
      '--default-artifact-root',
      'mlflow-artifacts:/',
      '--artifacts-destination',
      join(dir, 'artifacts'),
      '--serve-artifacts',
      '--workers',
      String(opts.workers ?? 1),
      ...(opts.extraArgs ?? []),
    ],
    { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const append = (d: Buffer) => {
    log += d.toString();
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let exited: number | null | undefined;
  const exit = new Promise<void>((r) =>
    child.once('exit', (code) => {
      exited = code;
      r();
    }),
  );

  // The server runs in its own process group (its workers and job consumers are Python processes of
  // their own): if this process ends without stop() — a crash, a Ctrl-C — the whole group goes with it.
  const killGroup = () => {
    try {
      if (exited === undefined && child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {}
  };
  process.once('exit', killGroup);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', killGroup);
    if (exited === undefined && child.pid) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {}
      const killer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {}
      }, 10_000);
      await exit;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? 180_000);
  for (;;) {
    if (exited !== undefined) {
      await stop();
      throw new Error(`mlflow server exited with code ${exited} before it was healthy:\n${log.slice(-4000)}`);
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `mlflow server not healthy after ${opts.startTimeoutMs ?? 180_000} ms:\n${log.slice(-4000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, port, dir, log: () => log, stop, [Symbol.asyncDispose]: stop };
}
