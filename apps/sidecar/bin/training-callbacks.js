#!/usr/bin/env node
// The `training-callbacks` command: runs the built CLI (dist/cli/main.js). A committed launcher, so
// that `npm ci` links the bin before anything is built; `npm start` or `npm run build` builds it.
// `serve` runs the sidecar's bundle (dist/bundle/main.js, which `npm start` and the image run, built
// by the same build) with the rest of the arguments: the same sidecar without the CLI's module graph
// around it, which a long-running process would otherwise keep in memory for nothing.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli/main.js', import.meta.url);
const bundle = new URL('../dist/bundle/main.js', import.meta.url);
if (!existsSync(cli)) {
  console.error(
    'training-callbacks: the CLI is not built yet: run `npm run build` (or `npm start` once) at the top of the checkout',
  );
  process.exit(1);
}
if (process.argv[2] === 'serve' && existsSync(bundle)) {
  process.argv.splice(2, 1);
  await import(bundle.href);
} else {
  await import(cli.href);
}
