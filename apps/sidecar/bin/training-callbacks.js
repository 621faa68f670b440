#!/usr/bin/env node
// The `training-callbacks` command: runs the built CLI (dist/cli/main.js). A committed launcher, so
// that `npm ci` links the bin before anything is built; `npm start` or `npm run build` builds it.
// `serve` runs the sidecar's bundle (dist/bundle/main.js, which `npm start` and the image run, built
// by the same build) with the rest of the arguments: the same sidecar without the CLI's module graph
// around it, which a long-running process would otherwise keep in memory for nothing — and with the V8
// flags `npm start` and the image give it (SERVE_NODE_FLAGS, one list with theirs: production-flags.spec.ts).
// A process cannot set those for itself once running, so `serve` replaces this one with node, the flags
// and the bundle (process.execve: the same PID, so signals and the exit code are the sidecar's own).
// Where execve is missing (Windows, Node before 23.11) it runs the bundle in this process, without them.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The V8 flags of the built sidecar: a young generation of 4 MB, garbage collection on one thread. */
const SERVE_NODE_FLAGS = ['--max-semi-space-size=4', '--single-threaded-gc'];

const cli = new URL('../dist/cli/main.js', import.meta.url);
const bundle = new URL('../dist/bundle/main.js', import.meta.url);
if (!existsSync(cli)) {
  console.error(
    'training-callbacks: the CLI is not built yet: run `npm run build` (or `npm start` once) at the top of the checkout',
  );
  process.exit(1);
}
if (process.argv[2] === 'serve' && existsSync(bundle)) {
  const missing = SERVE_NODE_FLAGS.filter((flag) => !process.execArgv.includes(flag));
  if (missing.length > 0 && typeof process.execve === 'function') {
    // Node's own flags given to this launcher come after, so that one of them wins over the default.
    const argv = [...missing, ...process.execArgv, fileURLToPath(bundle), ...process.argv.slice(3)];
    try {
      process.execve(process.execPath, [process.execPath, ...argv]);
    } catch {
      // Not on this platform (ERR_FEATURE_UNAVAILABLE_ON_PLATFORM): in this process, as below.
    }
  }
  process.argv.splice(2, 1);
  await import(bundle.href);
} else {
  await import(cli.href);
}
