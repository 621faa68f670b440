// The TypeScript examples of the READMEs, read from the README files at test time and run unchanged
// (a prelude declares only what an example leaves to the reader, and the README's example paths are
// mapped into a temp dir) against a real sidecar process; then what the README says they do, and the
// output it shows, is checked. The Python examples run in packages/python-client/tests/test_readme.py.
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createClient } from '@training-callbacks/grpc-adapter';
import { JobStatus, TrainingCallbacks } from '@training-callbacks/proto';
import {
  CHECK_PRELUDE,
  fencedBlock,
  nextBlock,
  runTypeScript,
  WORKSPACE,
  withResultChecks,
} from '@training-callbacks/readme-testing';
import { startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { expect, it } from 'vitest';
import { queryDatabase } from './database.ts';

/** This package: the examples' imports resolve to its dependencies. */
const HERE = path.join(import.meta.dirname, '..');

/** Maps the README's example directory (e.g. '/shared/') into `dir`, in string literals only. */
const mapPaths = (code: string, from: string, dir: string) => code.replaceAll(`'${from}`, `'${dir}/`);

async function withSharedDir<T>(run: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tc-readme-'));
  try {
    return await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

it('README.md: "A training loop in TypeScript" runs, stores what it reports and prints the line the README shows', () =>
  withSharedDir(async (shared) => {
    const file = 'README.md';
    const example = fencedBlock(file, 'ts', 'A training loop in TypeScript');
    const shown = nextBlock(file, example)!.code.trim();
    await mkdir(path.join(shared, 'ckpt'), { recursive: true });
    await writeFile(path.join(shared, 'ckpt', 'best.pt'), 'weights');
    await using sidecar = await startSidecarProcess({ args: ['--artifact-root', shared] });
    const run = await runTypeScript(mapPaths(example.code, '/shared/', shared), {
      cwd: HERE,
      env: { TRAINING_CALLBACKS_ADDRESS: sidecar.address },
    });
    expect(run.stderr, run.stdout).toBe('');
    expect(run.code).toBe(0);
    const client = createClient(TrainingCallbacks, sidecar.address);
    try {
      const { job } = await client.getJob({ jobId: 'resnet-42' });
      expect(job?.status).toBe(JobStatus.COMPLETED);
      expect(job?.epochsReported).toBe(10);
      const { blocks } = await client.listBatchMetrics({ jobId: 'resnet-42' });
      expect(blocks.reduce((n, b) => n + b.steps.length, 0)).toBe(1000);
      const { artifacts } = await client.listArtifacts({ jobId: 'resnet-42' });
      expect(artifacts.map((a) => a.artifactPath)).toContain('checkpoints/best.pt');
    } finally {
      client.close();
    }
    // The README shows the sidecar's console line for epoch 3: it must be exactly what it prints.
    expect(sidecar.output.filter((line) => line.includes(' epoch 3 '))).toEqual([shown]);
  }));

it('packages/client/README.md: the example runs as written and completes its job', () =>
  withSharedDir(async (shared) => {
    const example = fencedBlock('packages/client/README.md', 'ts', 'Example');
    await mkdir(path.join(shared, 'run'), { recursive: true });
    await writeFile(path.join(shared, 'run', 'best.pt'), 'weights');
    await using sidecar = await startSidecarProcess({ args: ['--quiet', '--artifact-root', shared] });
    const run = await runTypeScript(mapPaths(example.code, '/shared/', shared), {
      cwd: HERE,
      // What the example leaves to the reader: a training step and a validation.
      prelude:
        'const trainStep = async () => Math.random();\nconst validate = async () => 0.5 + Math.random() / 2;',
      env: { TRAINING_CALLBACKS_ADDRESS: sidecar.address },
    });
    expect(run.stderr, run.stdout).toBe('');
    expect(run.code).toBe(0);
    // It logs one summary line per epoch.
    expect(run.stdout.trim().split('\n')).toHaveLength(10);
    const client = createClient(TrainingCallbacks, sidecar.address);
    try {
      const { job } = await client.getJob({ jobId: 'job-42' });
      expect(job?.status).toBe(JobStatus.COMPLETED);
      expect(job?.epochsReported).toBe(10);
      const { blocks } = await client.listBatchMetrics({ jobId: 'job-42' });
      expect(blocks.reduce((n, b) => n + b.steps.length * b.names.length, 0)).toBe(10_000);
      const { artifacts } = await client.listArtifacts({ jobId: 'job-42' });
      expect(artifacts.map((a) => a.artifactPath)).toContain('checkpoints/best.pt');
    } finally {
      client.close();
    }
  }));

it('packages/client/README.md: "It never hurts the training loop" ends its job clean, nothing awaited but the end', async () => {
  const example = fencedBlock('packages/client/README.md', 'ts', 'It never hurts the training loop');
  await using sidecar = await startSidecarProcess({ args: ['--quiet'] });
  // What the README's comment says the result holds, printed for the check.
  const run = await runTypeScript(
    `${example.code}\nconsole.log(JSON.stringify({ delivered, lossSummary, losses }));`,
    {
      cwd: HERE,
      env: { TRAINING_CALLBACKS_ADDRESS: sidecar.address },
    },
  );
  expect(run.stderr, run.stdout).toBe('');
  expect(JSON.parse(run.stdout)).toEqual({
    delivered: true,
    lossSummary: '',
    losses: { droppedPoints: 0, refusedPoints: 0, failedWrites: 0, reasons: [] },
  });
  const client = createClient(TrainingCallbacks, sidecar.address);
  try {
    const { job } = await client.getJob({ jobId: 'job-43' });
    expect(job).toMatchObject({ status: JobStatus.COMPLETED, epochsReported: 1 });
  } finally {
    client.close();
  }
});

it('packages/metric-catalog/README.md: the example gives the results its comments show', async () => {
  const example = fencedBlock('packages/metric-catalog/README.md', 'ts', 'Example');
  const { code, checks } = withResultChecks(example.code);
  expect(checks).toBeGreaterThanOrEqual(4);
  const run = await runTypeScript(code, { cwd: HERE, prelude: CHECK_PRELUDE });
  expect(run.stderr).toBe('');
  expect(run.stdout.trim()).toBe(`checks passed: ${checks}`);
});

it('packages/store/README.md: the example stores the job, the epoch and the batch block in the file', () =>
  withSharedDir(async (dir) => {
    const example = fencedBlock('packages/store/README.md', 'ts', 'Example');
    const dbPath = path.join(dir, 'training-callbacks.db');
    // The example's relative database path, mapped into the temp dir.
    expect(example.code).toContain("dbPath: 'data/training-callbacks.db'");
    const run = await runTypeScript(
      example.code.replace("'data/training-callbacks.db'", JSON.stringify(dbPath)),
      { cwd: HERE },
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const [job] = await queryDatabase<{ job_id: string; framework: string }>(
      dbPath,
      'select * from training_job',
    );
    expect(job).toMatchObject({ job_id: 'run-42', framework: 'timm' });
    const epochs = await queryDatabase<{ epoch: number; accuracy: number }>(
      dbPath,
      'select * from training_metric',
    );
    expect(epochs.map((e) => [e.epoch, e.accuracy])).toEqual([[3, 0.91]]);
    const blocks = await queryDatabase(dbPath, 'select * from batch_metric_block');
    expect(blocks).toHaveLength(1);
  }));

it('apps/sidecar/README.md: the testing example starts the real sidecar and ends it', () =>
  withSharedDir(async (dir) => {
    const example = fencedBlock('apps/sidecar/README.md', 'ts', 'Public API (for tests and embedding)');
    const run = await runTypeScript(example.code, {
      cwd: HERE,
      // What the example leaves to the reader: the artifact root; and a look at what it promises.
      prelude: `const dir = ${JSON.stringify(dir)};`,
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  }));

it('README.md: "The command line" examples run with the built training-callbacks bin against a real sidecar', () =>
  withSharedDir(async (dir) => {
    const file = 'README.md';
    const heading = 'The command line: `training-callbacks`';
    const commands = fencedBlock(file, 'bash', heading, 0).code;
    const watchLine = fencedBlock(file, 'bash', heading, 1).code.replace(/#.*$/m, '').trim();
    // The README's results.csv: the Ultralytics-shaped file the CLI's own tests import.
    await mkdir(path.join(dir, 'runs/detect/train'), { recursive: true });
    await copyFile(
      path.join(WORKSPACE, 'apps/sidecar/src/cli/testdata/results.csv'),
      path.join(dir, 'runs/detect/train/results.csv'),
    );
    // `training-callbacks` on PATH is the package's bin (built by this project's test dependency).
    const bin = path.join(dir, 'bin');
    await mkdir(bin);
    await writeFile(
      path.join(bin, 'training-callbacks'),
      `#!/bin/sh\nexec "${process.execPath}" "${path.join(WORKSPACE, 'apps/sidecar/bin/training-callbacks.js')}" "$@"\n`,
      { mode: 0o755 },
    );
    await using sidecar = await startSidecarProcess({ args: ['--quiet'] });
    const env = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      TRAINING_CALLBACKS_ADDRESS: sidecar.address,
      NO_COLOR: '1',
    };
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('bash', ['-euo', 'pipefail', '-c', commands], { cwd: dir, env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      child.once('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^yolo-7 {2}completed {2}3 epochs {2}best mAP@0\.5 55\.87% @ epoch 2$/m);
    expect(run.stdout).toMatch(
      /^yolo-7\s+completed\s+object_detection\s+yolo11n\s+ultralytics\s+3\s+mAP@0\.5 55\.87% @ epoch 2/m,
    );
    expect(run.stdout).toMatch(/^2\*\s+55\.87%/m);
    expect(run.stderr).toMatch(/exported 3 epochs of job yolo-7 as csv/);
    const csv = (await readFile(path.join(dir, 'yolo-7.csv'), 'utf8')).trimEnd().split('\n');
    expect(csv[0]).toMatch(/^job_id,epoch,loss,accuracy,learning_rate,timestamp,mAP50,/);
    expect(csv).toHaveLength(4);

    // The watch runs until Ctrl-C: its first events arrive as NDJSON, then SIGINT ends it with 0.
    const [command, ...args] = watchLine.split(/\s+/);
    const watch = spawn(command!, args, { cwd: dir, env });
    const lines: string[] = [];
    createInterface({ input: watch.stdout }).on('line', (line) => lines.push(line));
    const exited = new Promise<number | null>((resolve) => watch.once('close', resolve));
    for (const started = Date.now(); lines.length < 4 && Date.now() - started < 30_000; ) {
      await new Promise((r) => setTimeout(r, 100));
    }
    watch.kill('SIGINT');
    expect(await exited).toBe(0);
    const events = lines.map((line) => JSON.parse(line) as { seq: string; epoch?: { epoch?: number } });
    expect(events.filter((e) => e.epoch).map((e) => e.epoch!.epoch ?? 0)).toEqual([0, 1, 2]);
  }));
