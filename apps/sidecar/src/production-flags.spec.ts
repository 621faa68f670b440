// The V8 flags the built sidecar runs with are written in four places — `npm start`, the image's
// ENTRYPOINT, the `training-callbacks serve` launcher and PRODUCTION_NODE_FLAGS (what tests and
// benchmarks start the built sidecar with) — and must be the same everywhere, or a benchmark measures
// another sidecar than the one that ships.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { PRODUCTION_NODE_FLAGS } from './testing.ts';

const ROOT = path.join(import.meta.dirname, '../../..');
const BUNDLE = /(?:^|\/)apps?\/(?:node_modules\/@training-callbacks\/)?sidecar\/dist\/bundle\/main\.js$/;

/** The flags between `node` and the bundle in an argv. */
function flagsBeforeBundle(argv: readonly string[]): string[] {
  const at = argv.findIndex((arg) => BUNDLE.test(arg));
  if (at < 0) throw new Error(`no sidecar bundle in ${argv.join(' ')}`);
  return argv.slice(1, at);
}

it('npm start and the image run the built sidecar with PRODUCTION_NODE_FLAGS', () => {
  const start = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.start as string;
  expect(flagsBeforeBundle(start.split(/\s+/))).toEqual(PRODUCTION_NODE_FLAGS);
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const entrypoint = JSON.parse([...dockerfile.matchAll(/^ENTRYPOINT (\[.*\])$/gm)].at(-1)![1]!) as string[];
  expect(flagsBeforeBundle(entrypoint)).toEqual(PRODUCTION_NODE_FLAGS);
  expect(PRODUCTION_NODE_FLAGS).toContain('--single-threaded-gc');
});

it('training-callbacks serve runs the bundle with PRODUCTION_NODE_FLAGS', () => {
  const launcher = readFileSync(path.join(ROOT, 'apps/sidecar/bin/training-callbacks.js'), 'utf8');
  const list = /^const SERVE_NODE_FLAGS = (\[[^\]]*\]);$/m.exec(launcher)?.[1];
  expect(list, 'SERVE_NODE_FLAGS in bin/training-callbacks.js').toBeDefined();
  expect(JSON.parse(list!.replaceAll("'", '"'))).toEqual(PRODUCTION_NODE_FLAGS);
});
