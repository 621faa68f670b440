// Test helper: the `training-callbacks` command as a child process (its source through Node's type
// stripping, as `npm run dev` runs the sidecar), with its stdout and stderr kept apart.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';

const CLI_MAIN = path.join(import.meta.dirname, 'main.ts');

/** What a finished run printed and its exit code. */
export interface CliResult {
  readonly code: number | string;
  readonly stdout: string;
  readonly stderr: string;
}

function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, ['--conditions=@training-callbacks/source', CLI_MAIN, ...args], {
    // No address, token or CA of the developer's shell leaks into a test.
    env: Object.fromEntries(
      Object.entries({ ...process.env, ...env }).filter(
        ([key, value]) => value !== undefined && (!key.startsWith('TRAINING_CALLBACKS_') || key in env),
      ),
    ),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs the command to its end (killed after `timeoutMs`). */
export function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
): Promise<CliResult> {
  const child = spawnCli(args, env);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `training-callbacks ${args.join(' ')} still running after ${timeoutMs} ms:\n${stdout}\n${stderr}`,
        ),
      );
    }, timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, stdout, stderr });
    });
  });
}

/** A command that keeps running (a watch): its stdout lines as they come. */
export interface RunningCli extends AsyncDisposable {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly stderr: () => string;
  /** Resolves once `count` stdout lines have arrived (rejects after `timeoutMs` or on exit). */
  waitForLines(count: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves once stderr matches. */
  waitForStderr(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export function startCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  const child = spawnCli(args, env);
  const lines: string[] = [];
  let stderr = '';
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of waiters) waiter();
  };
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    notify();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    notify();
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      resolve(code ?? signal ?? -1);
      notify();
    }),
  );
  const waitUntil = (done: () => boolean, what: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (done()) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        } else if (child.exitCode !== null || child.signalCode !== null) {
          waiters.delete(check);
          clearTimeout(timer);
          reject(new Error(`exited before ${what}:\n${lines.join('\n')}\n${stderr}`));
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no ${what} within ${timeoutMs} ms:\n${lines.join('\n')}\n${stderr}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return {
    child,
    lines,
    stderr: () => stderr,
    async waitForLines(count, timeoutMs = 30_000) {
      await waitUntil(() => lines.length >= count, `${count} stdout lines`, timeoutMs);
      return lines.slice(0, count);
    },
    waitForStderr: (pattern, timeoutMs = 30_000) =>
      waitUntil(() => pattern.test(stderr), `stderr matching ${pattern}`, timeoutMs),
    async stop(signal = 'SIGINT') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    async [Symbol.asyncDispose]() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
