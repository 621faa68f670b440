#!/usr/bin/env node
// The `training-callbacks` command (the bin of @training-callbacks/sidecar; `--help` lists commands,
// flags and exit codes). `serve` runs the sidecar with its own signal handling; every other command
// ends its calls (and a watch) on SIGINT/SIGTERM.
import { CLI_EXIT_CODES } from './exit-codes.ts';
import { runCli } from './program.ts';

const argv = process.argv.slice(2);
const controller = new AbortController();
if (argv[0] !== 'serve') {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => controller.abort());
}
// `training-callbacks jobs watch --json | head -1`: a closed pipe ends the command quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(CLI_EXIT_CODES.ok.code);
  throw error;
});

runCli(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env }, controller.signal).then(
  (code) => {
    process.exitCode = code;
    // Let stdout drain before exiting (a pipe may still hold data).
    process.stdout.write('', () => process.exit(code));
  },
  (error: unknown) => {
    console.error('training-callbacks: fatal error:', error);
    process.exit(CLI_EXIT_CODES.failure.code);
  },
);
