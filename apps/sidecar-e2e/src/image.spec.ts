// The container image without a container engine: tools/image/assemble-image-tree.ts builds the tree
// the Dockerfile copies onto its base; this starts the sidecar from that tree the way the image's
// ENTRYPOINT does — from another working directory, with nothing of the workspace on hand, as a
// non-root user (when the test runs as root) that cannot write to the tree — and checks it serves: on a
// SQLite file on its data volume, and in the PostgreSQL run on a PostgreSQL database.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createClient } from '@training-callbacks/grpc-adapter';
import { createTestDatabase } from '@training-callbacks/postgres-testing';
import { TaskType, TrainingCallbacks } from '@training-callbacks/proto';
import { TEST_POSTGRES_ENV } from '@training-callbacks/sidecar/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ON_POSTGRES } from './database.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const NOBODY = 65534;
let tree: string;
let work: string;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'tc-image-'));
  tree = path.join(work, 'tree');
  // Under Nx the sidecar's and the dashboard's builds already ran (this target depends on them): no
  // nested Nx run.
  const build = process.env.NX_TASK_TARGET_PROJECT ? ['--no-build'] : [];
  execFileSync(
    process.execPath,
    [path.join(ROOT, 'tools/image/assemble-image-tree.ts'), '--out', tree, ...build],
    {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
}, 600_000);

afterAll(() => {
  if (work) {
    execFileSync('chmod', ['-R', 'u+w', work]);
    rmSync(work, { recursive: true, force: true });
  }
});

/** The ENTRYPOINT of the Dockerfile's final stage, as an argv. */
function dockerEntrypoint(): string[] {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  const entry = [...dockerfile.matchAll(/^ENTRYPOINT (\[.*\])$/gm)].at(-1);
  if (!entry) throw new Error('no ENTRYPOINT in the Dockerfile');
  return JSON.parse(entry[1]!) as string[];
}

it('holds the pinned Node, the built sidecar and production dependencies only', () => {
  const node = path.join(tree, 'usr/local/bin/node');
  const pinned = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).devDependencies.node;
  expect(execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()).toBe(`v${pinned}`);
  const modules = path.join(tree, 'app/node_modules');
  const installed = readdirSync(modules).flatMap((name) =>
    name.startsWith('@') ? readdirSync(path.join(modules, name)).map((n) => `${name}/${n}`) : [name],
  );
  expect(installed).toEqual(
    expect.arrayContaining([
      '@training-callbacks/sidecar',
      '@training-callbacks/store',
      'better-sqlite3',
      // The PostgreSQL dialect's driver (`--db postgres://…`).
      '@mikro-orm/postgresql',
      'pg',
      'pino',
    ]),
  );
  for (const dev of [
    'vitest',
    'typescript',
    'nx',
    '@biomejs/biome',
    'node',
    '@training-callbacks/fault-injection',
  ]) {
    expect(installed).not.toContain(dev);
  }
  // Built JavaScript, no TypeScript sources or compiled tests.
  const sidecar = path.join(modules, '@training-callbacks/sidecar');
  expect(readdirSync(sidecar).sort()).toEqual(['bin', 'dist', 'package.json']);
  expect(readdirSync(path.join(sidecar, 'dist')).some((f) => f.includes('.spec.'))).toBe(false);
  // The `training-callbacks` command runs from the tree too (e.g. `kubectl exec … jobs list`).
  const cli = execFileSync(
    node,
    [path.join(sidecar, 'bin/training-callbacks.js'), 'jobs', 'list', '--help'],
    {
      encoding: 'utf8',
    },
  );
  expect(cli).toMatch(/Usage: training-callbacks jobs list/);
  // The Dockerfile copies exactly these two paths and starts what the tree has.
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  for (const [, source] of dockerfile.matchAll(/^COPY (\S+) \S+$/gm)) {
    expect(existsSync(path.join(tree, source!)), source).toBe(true);
  }
  for (const file of dockerEntrypoint().filter((a) => a.startsWith('/'))) {
    expect(existsSync(path.join(tree, file)), file).toBe(true);
  }
});

it('serves from the tree, from another working directory, as a non-root user', async () => {
  const asRoot = process.getuid?.() === 0;
  const data = mkdtempSync(path.join(tmpdir(), 'tc-image-data-'));
  const cwd = mkdtempSync(path.join(tmpdir(), 'tc-image-cwd-'));
  if (asRoot) {
    chownSync(data, NOBODY, NOBODY);
    // The tree is the image's read-only root: nobody may write into it.
    execFileSync('chmod', ['-R', 'a-w,a+rX', tree]);
    chmodSync(work, 0o755);
  }
  const [binary, ...args] = dockerEntrypoint().map((a) => (a.startsWith('/') ? path.join(tree, a) : a));
  // The PostgreSQL run: a database of the run's server, and the artifact store on the data volume.
  const database = ON_POSTGRES
    ? [
        '--db',
        await createTestDatabase(process.env[TEST_POSTGRES_ENV]!),
        '--artifact-store',
        path.join(data, 'artifacts'),
      ]
    : ['--db', path.join(data, 'tc.sqlite')];
  const child = spawn(binary!, [...args, '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', ...database], {
    cwd,
    // What the image sets, and nothing of the workspace (no NODE_PATH, no npm, no source condition).
    env: { NODE_ENV: 'production', PATH: '/usr/bin:/bin' },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(asRoot && { uid: NOBODY, gid: NOBODY }),
  });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const { address, http } = await new Promise<{ address: string; http: string }>((resolve, reject) => {
      let httpAddress = '';
      const timer = setTimeout(
        () => reject(new Error(`no start within 30 s:\n${output.join('\n')}`)),
        30_000,
      );
      for (const stream of [child.stdout, child.stderr]) {
        createInterface({ input: stream }).on('line', (line) => {
          output.push(line);
          httpAddress = /HTTP on (\S+)/.exec(line)?.[1] ?? httpAddress;
          const match = /listening on (\S+)/.exec(line);
          if (match) {
            clearTimeout(timer);
            resolve({ address: match[1]!, http: httpAddress });
          }
        });
      }
      void exited.then((code) =>
        reject(new Error(`exited (${code}) before listening:\n${output.join('\n')}`)),
      );
    });
    const client = createClient(TrainingCallbacks, address);
    await client.beginTraining({ jobId: 'from-image', taskType: TaskType.IMAGE_CLASSIFICATION });
    const { isBest } = await client.endEpoch({ jobId: 'from-image', epoch: 0, metrics: { accuracy: 0.7 } });
    expect(isBest).toBe(true);
    client.close();
    expect((await fetch(`http://${http}/readyz`)).status).toBe(200);
    // The dashboard is in the tree: the page, and the Connect API it reads.
    const page = await fetch(`http://${http}/jobs/from-image`);
    expect([page.status, page.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
    expect(await page.text()).toContain('<div id="app">');
    const job = await fetch(`http://${http}/trainingcallbacks.v1.TrainingCallbacks/GetJob`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jobId: 'from-image' }),
    });
    expect(((await job.json()) as { job: { bestValue: number } }).job.bestValue).toBe(0.7);
    expect(await (await fetch(`http://${http}/metrics`)).text()).toMatch(
      /^training_callbacks_epochs_ingested_total 1$/m,
    );
    // Nothing was written outside the data directory (the working directory stays empty).
    expect(readdirSync(cwd)).toEqual([]);
    if (!ON_POSTGRES) expect(readdirSync(data)).toContain('tc.sqlite');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output.join('\n')).toContain('stopped cleanly');
  } finally {
    child.kill('SIGKILL');
    rmSync(data, { recursive: true, force: true });
    rmSync(cwd, { recursive: true, force: true });
  }
});
