#!/usr/bin/env node
// The `training-callbacks` command: runs the built CLI (dist/cli/main.js). A committed launcher, so
// that `npm ci` links the bin before anything is built; `npm start` or `npm run build` builds it.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(cli)) {
  console.error(
    'training-callbacks: the CLI is not built yet: run `npm run build` (or `npm start` once) at the top of the checkout',
  );
  process.exit(1);
}
await import(cli.href);
