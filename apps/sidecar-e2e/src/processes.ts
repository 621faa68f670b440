// A child process whose output lines are kept and can be waited for (the sidecar started the way a
// container runtime starts it, not through the test helper that picks its flags).
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface LoggedProcess extends AsyncDisposable {
  readonly child: ChildProcess;
  /** Every line printed so far, stdout and stderr. */
  readonly output: string[];
  /** The exit code, or the signal's name. */
  readonly exited: Promise<number | string>;
  /** Resolves with the first match of `pattern` in a line (past or future); rejects on exit or timeout. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
}

export function spawnLogged(
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
  /** `input: true`: the child's stdin is a pipe (`child.stdin`) for commands; else it reads nothing. */
  { input = false }: { input?: boolean } = {},
): LoggedProcess {
  const child = spawn(command, args, { ...options, stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const listeners = new Set<(line: string) => void>();
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      output.push(line);
      for (const listener of listeners) listener(line);
    });
  }
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return {
    child,
    output,
    exited,
    waitFor(pattern, timeoutMs = 30_000) {
      for (const line of output) {
        const match = pattern.exec(line);
        if (match) return Promise.resolve(match);
      }
      return new Promise((resolve, reject) => {
        const listener = (line: string) => {
          const match = pattern.exec(line);
          if (!match) return;
          listeners.delete(listener);
          clearTimeout(timer);
          resolve(match);
        };
        const timer = setTimeout(() => {
          listeners.delete(listener);
          reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${output.join('\n')}`));
        }, timeoutMs);
        listeners.add(listener);
        void exited.then((code) => {
          if (!listeners.has(listener)) return;
          listeners.delete(listener);
          clearTimeout(timer);
          reject(new Error(`exited (${code}) before a line matching ${pattern}:\n${output.join('\n')}`));
        });
      });
    },
    async [Symbol.asyncDispose]() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
