// The `training-callbacks` binary as users run it: a child process against a real sidecar process on
// loopback (real SQLite file), checking what it prints on stdout and on stderr and its exit codes.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TrainingCallbacks } from '@training-callbacks/client';
import { startTcpFaultProxy } from '@training-callbacks/fault-injection';
import { createClient } from '@training-callbacks/grpc-adapter';
import { JobStatus, TrainingCallbacks as TrainingCallbacksService } from '@training-callbacks/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCertificateAuthority,
  issueCertificate,
  type SidecarProcess,
  startSidecarProcess,
} from '../testing.ts';
import { runCli, startCli } from './cli-process.ts';
import { CLI_EXIT_CODES } from './exit-codes.ts';

const RESULTS_CSV = path.join(import.meta.dirname, 'testdata', 'results.csv');
const TIMEOUT = 120_000;

describe('training-callbacks against a real sidecar', { timeout: TIMEOUT }, () => {
  let sidecar: SidecarProcess;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    sidecar = await startSidecarProcess({ args: ['--quiet', '--watch-keepalive', '0.5'] });
    env = { TRAINING_CALLBACKS_ADDRESS: sidecar.address };
    const imported = await runCli(
      ['import-csv', RESULTS_CSV, '--job', 'yolo-csv', '--model', 'yolo11n'],
      env,
    );
    expect(imported.stderr).toMatch(/began job yolo-csv .* importing 3 epochs/);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toBe('yolo-csv  completed  3 epochs  best mAP@0.5 55.87% @ epoch 2\n');
  }, TIMEOUT);
  afterAll(async () => {
    await sidecar?.[Symbol.asyncDispose]();
  });

  it('import-csv stores an Ultralytics results.csv by the shared rules: 0-based epochs, missing values missing', async () => {
    const client = createClient(TrainingCallbacksService, sidecar.address);
    try {
      const { job } = await client.getJob({ jobId: 'yolo-csv' });
      expect(job).toMatchObject({
        status: JobStatus.COMPLETED,
        framework: 'ultralytics',
        modelName: 'yolo11n',
      });
      const { epochs } = await client.listEpochs({ jobId: 'yolo-csv' });
      expect(epochs.map((e) => e.epoch)).toEqual([0, 1, 2]);
      // Epoch 2 of the file (validation did not run): its empty cells are absent, not 0.
      expect(Object.keys(epochs[1]!.metrics).sort()).toEqual([
        'learning_rate',
        'lr/pg1',
        'lr/pg2',
        'train_box_loss',
        'train_cls_loss',
        'train_dfl_loss',
      ]);
      expect(epochs[0]!.metrics).toMatchObject({
        mAP50: 0.44121,
        'mAP50-95': 0.27193,
        train_box_loss: 1.2613,
      });
      expect(epochs[0]!.metrics).not.toHaveProperty('time');
    } finally {
      client.close();
    }
  });

  it('import-csv takes a results.csv as Ultralytics 8.4 writes it (its own save_metrics), for another task', async () => {
    // testdata/results-ultralytics-8.4-segment.csv was written by ultralytics 8.4.190's BaseTrainer.save_metrics.
    const file = path.join(import.meta.dirname, 'testdata', 'results-ultralytics-8.4-segment.csv');
    const run = await runCli(
      ['import-csv', file, '--job', 'seg-8', '--task', 'instance_segmentation', '--json'],
      env,
    );
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      jobId: 'seg-8',
      taskType: 'TASK_TYPE_INSTANCE_SEGMENTATION',
      bestEpoch: 2,
    });
    expect(run.stderr).toMatch(/epoch 2 │ Box mAP@0\.5 60\.12% │ .*Mask mAP@0\.5 56\.12%/);
    const shown = await runCli(['jobs', 'show', 'seg-8'], env);
    expect(shown.stdout).toMatch(/^best +Box mAP@0\.5 60\.12% @ epoch 2$/m);
    const csv = await runCli(['export', 'seg-8'], env);
    const [header, first] = csv.stdout.split('\n');
    expect(header).toMatch(/^job_id,epoch,loss,accuracy,learning_rate,timestamp,mAP50,mAP50-95,/);
    expect(header).toContain(',mask_mAP50,');
    expect(first).toMatch(/^seg-8,0,,,0\.000333,/);
  });

  it('jobs list prints a table with the catalog-formatted best; --json the jobs; nothing on stderr', async () => {
    const table = await runCli(['jobs', 'list'], env);
    expect(table.code).toBe(0);
    expect(table.stderr).toBe('');
    const [header, ...rows] = table.stdout.trimEnd().split('\n');
    expect(header).toMatch(
      /^JOB\s+STATUS\s+TASK\s+MODEL\s+FRAMEWORK\s+EPOCHS\s+BEST\s+STARTED\s+DURATION\s+MLFLOW$/,
    );
    const row = rows.find((line) => line.startsWith('yolo-csv '));
    expect(row).toMatch(
      /completed\s+object_detection\s+yolo11n\s+ultralytics\s+3\s+mAP@0\.5 55\.87% @ epoch 2\s/,
    );
    expect(row).toMatch(/\soff$/);
    expect(table.stdout).not.toContain('\u001b['); // no colour into a pipe

    const json = await runCli(
      ['jobs', 'list', '--json', '--status', 'completed', '--task', 'object_detection'],
      env,
    );
    expect(json.code).toBe(0);
    const jobs = JSON.parse(json.stdout) as { jobId: string; bestEpoch: number; status: string }[];
    expect(jobs.find((j) => j.jobId === 'yolo-csv')).toMatchObject({
      bestEpoch: 2,
      status: 'JOB_STATUS_COMPLETED',
    });

    const none = await runCli(['jobs', 'list', '--status', 'failed'], env);
    expect(none).toMatchObject({ code: 0, stdout: '' });
    expect(none.stderr).toMatch(/no jobs on this sidecar with these filters/);
  });

  it('jobs show prints the job and an epoch table with labels, formats and the best epoch marked', async () => {
    const shown = await runCli(['jobs', 'show', 'yolo-csv'], env);
    expect(shown.code).toBe(0);
    expect(shown.stderr).toBe('');
    const lines = shown.stdout.split('\n');
    // The label column is as wide as the longest label shown (`last seen` once the job has a lease).
    expect(lines.some((line) => /^best\s+mAP@0\.5 55\.87% @ epoch 2$/.test(line))).toBe(true);
    const header = lines.find((line) => line.startsWith('EPOCH'))!;
    expect(header).toMatch(/^EPOCH\s+mAP@0\.5\s+mAP@0\.5:0\.95\s+Precision\s+Recall\s+Train box loss/);
    expect(lines.find((line) => line.startsWith('2*'))).toMatch(
      /^2\*\s+55\.87%\s+35\.52%\s+62\.77%\s+50\.23%\s+1\.1502/,
    );
    // The epoch without validation: its mAP cells are empty, its losses there.
    expect(lines.find((line) => line.startsWith('1 '))).toMatch(/^1\s+1\.1987\s+2\.2104/);

    const json = await runCli(['jobs', 'show', 'yolo-csv', '--json'], env);
    const parsed = JSON.parse(json.stdout) as { job: { jobId: string }; epochs: { epoch?: number }[] };
    expect(parsed.job.jobId).toBe('yolo-csv');
    expect(parsed.epochs).toHaveLength(3);
  });

  it('export --format csv: the seed columns, then every metric, one row per epoch, empty where missing', async () => {
    const csv = await runCli(['export', 'yolo-csv', '--format', 'csv'], env);
    expect(csv.code).toBe(0);
    expect(csv.stderr).toBe('exported 3 epochs of job yolo-csv as csv\n');
    const [header, ...rows] = csv.stdout.trimEnd().split('\n');
    expect(header).toBe(
      'job_id,epoch,loss,accuracy,learning_rate,timestamp,mAP50,mAP50-95,precision,recall,train_box_loss,' +
        'train_cls_loss,train_dfl_loss,val_box_loss,val_cls_loss,val_dfl_loss,lr/pg1,lr/pg2',
    );
    expect(rows).toHaveLength(3);
    const cells = rows.map((row) => row.split(','));
    expect(cells[0]!.slice(0, 5)).toEqual(['yolo-csv', '0', '', '', '0.0033261']);
    expect(Number.isNaN(Date.parse(cells[0]![5]!))).toBe(false);
    expect(cells[0]!.slice(6)).toEqual([
      '0.44121',
      '0.27193',
      '0.55012',
      '0.41318',
      '1.2613',
      '2.8705',
      '1.2476',
      '1.3104',
      '2.4871',
      '1.2869',
      '0.0033261',
      '0.0033261',
    ]);
    expect(cells[1]!.slice(6)).toEqual([
      '',
      '',
      '',
      '',
      '1.1987',
      '2.2104',
      '1.2011',
      '',
      '',
      '',
      '0.0063525',
      '0.0063525',
    ]);
  });

  it('export --format json: one object per epoch with the seed columns and extra_metrics; NaN as proto JSON writes it', async () => {
    await using callbacks = new TrainingCallbacks({
      jobId: 'cls-nan',
      taskType: 'image_classification',
      address: sidecar.address,
    });
    await callbacks.onTrainBegin();
    await callbacks.onEpochEnd(0, { accuracy: 0.5, loss: 1.5, lr: 0.01, my_custom: Number.NaN });
    await callbacks.onEpochEnd(1, { accuracy: 0.75, loss: 1.25 });
    await callbacks.onTrainEnd();
    const json = await runCli(['export', 'cls-nan', '--format', 'json'], env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([
      {
        job_id: 'cls-nan',
        epoch: 0,
        loss: 1.5,
        accuracy: 0.5,
        learning_rate: 0.01,
        timestamp: expect.any(String),
        extra_metrics: { accuracy: 0.5, train_loss: 1.5, learning_rate: 0.01, my_custom: 'NaN' },
      },
      {
        job_id: 'cls-nan',
        epoch: 1,
        loss: 1.25,
        accuracy: 0.75,
        learning_rate: null,
        timestamp: expect.any(String),
        extra_metrics: { accuracy: 0.75, train_loss: 1.25 },
      },
    ]);
    const csv = await runCli(['export', 'cls-nan'], env);
    expect(csv.stdout.split('\n')[0]).toBe(
      'job_id,epoch,loss,accuracy,learning_rate,timestamp,train_loss,my_custom',
    );
    expect(csv.stdout.split('\n')[1]).toMatch(/^cls-nan,0,1\.5,0\.5,0\.01,[^,]+,1\.5,NaN$/);
  });

  it('jobs watch --json streams NDJSON live and resumes a dropped connection with no gap and no duplicate', async () => {
    await using proxy = await startTcpFaultProxy(sidecar.address);
    await using callbacks = new TrainingCallbacks({
      jobId: 'live-1',
      taskType: 'image_classification',
      address: sidecar.address,
    });
    await callbacks.onTrainBegin();
    await using watch = startCli(['jobs', 'watch', 'live-1', '--json'], {
      TRAINING_CALLBACKS_ADDRESS: proxy.address,
    });
    type Event = {
      seq: string;
      job?: { status: string };
      epoch?: { epoch?: number; metrics: Record<string, number> };
    };
    const events = () => watch.lines.map((line) => JSON.parse(line) as Event);
    const epochsSeen = () => events().flatMap((e) => (e.epoch ? [e.epoch.epoch ?? 0] : []));
    const waitForEpoch = async (epoch: number) => {
      for (let n = 1; !epochsSeen().includes(epoch); n++) await watch.waitForLines(n);
    };
    await watch.waitForLines(1); // the job begun
    expect(events()[0]!.job?.status).toBe('JOB_STATUS_RUNNING');

    await callbacks.onEpochEnd(0, { accuracy: 0.5 });
    await waitForEpoch(0); // live: the epoch arrives while the command runs
    proxy.dropConnections();
    await callbacks.onEpochEnd(1, { accuracy: 0.6 });
    await callbacks.onEpochEnd(2, { accuracy: 0.7 });
    await watch.waitForStderr(/connection lost .* resume after seq \d+/);
    await waitForEpoch(2);
    await watch.waitForStderr(/reconnected; resumed after seq \d+/);
    await callbacks.onTrainEnd();
    for (let n = watch.lines.length + 1; events().at(-1)?.job?.status !== 'JOB_STATUS_COMPLETED'; n++) {
      await watch.waitForLines(n);
    }
    expect(await watch.stop('SIGINT')).toBe(0);

    const seqs = events().map((e) => BigInt(e.seq));
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]! > seqs[i - 1]!).toBe(true);
    expect(epochsSeen()).toEqual([0, 1, 2]);
    expect(events().find((e) => e.epoch?.epoch === 1)?.epoch?.metrics).toEqual({ accuracy: 0.6 });
    expect(proxy.accepted).toBeGreaterThanOrEqual(2);
  });

  it('jobs watch (human) prints one line per change, formatted by the catalog; --after-seq resumes', async () => {
    await using watch = startCli(['jobs', 'watch', 'yolo-csv'], env);
    const lines = await watch.waitForLines(4);
    expect(await watch.stop('SIGTERM')).toBe(0);
    expect(lines.some((line) => /^#\d+ {2}epoch 2 │ mAP@0\.5 55\.87% │ .* {2}★ best$/.test(line))).toBe(true);
    const seqOfEpoch1 = /^#(\d+) {2}epoch 1 /.exec(lines.find((line) => / {2}epoch 1 /.test(line))!)![1]!;

    await using resumed = startCli(['jobs', 'watch', 'yolo-csv', '--json', '--after-seq', seqOfEpoch1], env);
    const [first] = await resumed.waitForLines(1);
    expect(await resumed.stop()).toBe(0);
    const event = JSON.parse(first!) as { seq: string; epoch?: { epoch?: number } };
    expect(BigInt(event.seq)).toBeGreaterThan(BigInt(seqOfEpoch1));
    expect(event.epoch?.epoch).not.toBe(1);
  });

  it('jobs watch ends quietly with 0 when its reader goes away (`… --json | head -n 1`)', async () => {
    await using watch = startCli(['jobs', 'watch', 'yolo-csv', '--json', '--heartbeats'], env);
    await watch.waitForLines(1);
    watch.child.stdout!.destroy(); // the pipe's reader exits; the next heartbeat's write gets EPIPE
    expect(await watch.stop('SIGCONT')).toBe(0); // SIGCONT changes nothing: this only waits for the exit
    expect(watch.stderr()).toBe('');
  });

  it('jobs watch without a job follows the job list', async () => {
    await using watch = startCli(['jobs', 'watch', '--json', '--from-head', '--heartbeats'], env);
    // A heartbeat (every 0.5 s here) shows the stream is open, so the job begun next is live news.
    const [heartbeat] = await watch.waitForLines(1);
    expect(JSON.parse(heartbeat!)).toHaveProperty('heartbeat');
    await using callbacks = new TrainingCallbacks({
      jobId: 'appears-1',
      taskType: 'pose_estimation',
      address: sidecar.address,
    });
    await callbacks.onTrainBegin();
    for (let n = 2; !watch.lines.some((l) => l.includes('appears-1')); n++) await watch.waitForLines(n);
    const line = watch.lines.find((l) => l.includes('appears-1'));
    expect(JSON.parse(line!)).toMatchObject({ job: { jobId: 'appears-1', status: 'JOB_STATUS_RUNNING' } });
    expect(await watch.stop()).toBe(0);
  });

  it('exit codes: not found 10, unavailable 11, refused 13, usage 2 — the message on stderr says what to do', async () => {
    const missing = await runCli(['jobs', 'show', 'no-such-job'], env);
    expect(missing.code).toBe(CLI_EXIT_CODES.notFound.code);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toMatch(/NOT_FOUND: .*no-such-job[\s\S]*training-callbacks jobs list/);

    const down = await runCli(['jobs', 'list', '--address', '127.0.0.1:1', '--timeout', '5'], env);
    expect(down.code).toBe(CLI_EXIT_CODES.unavailable.code);
    expect(down.stdout).toBe('');
    expect(down.stderr).toMatch(/cannot reach the sidecar at 127\.0\.0\.1:1[\s\S]*training-callbacks serve/);

    // import-csv reports through the TS client: an unreachable sidecar fails the command too.
    const importDown = await runCli(
      ['import-csv', RESULTS_CSV, '--job', 'x', '--address', '127.0.0.1:1', '--timeout', '2'],
      env,
    );
    expect(importDown.code, importDown.stderr).toBe(CLI_EXIT_CODES.unavailable.code);
    expect(importDown.stdout).toBe('');
    expect(importDown.stderr).not.toMatch(/began job/);
    expect(importDown.stderr).toMatch(/cannot reach the sidecar at 127\.0\.0\.1:1/);

    const noMlflow = await runCli(['mlflow', 'retry', 'yolo-csv'], env);
    expect(noMlflow.code).toBe(CLI_EXIT_CODES.refused.code);
    expect(noMlflow.stderr).toMatch(/FAILED_PRECONDITION: .*MLFLOW_TRACKING_URI/);

    for (const args of [
      ['jobs', 'lst'],
      ['jobs', 'list', '--status', 'gone'],
      ['export', 'yolo-csv', '--format', 'xml'],
      ['export'],
    ]) {
      const usage = await runCli(args, env);
      expect(usage.code, args.join(' ')).toBe(CLI_EXIT_CODES.usage.code);
      expect(usage.stdout).toBe('');
      expect(usage.stderr).toMatch(/--help/);
    }
    const unreadable = await runCli(['import-csv', '/no/such/results.csv', '--job', 'x'], env);
    expect(unreadable.code).toBe(CLI_EXIT_CODES.usage.code);
    expect(unreadable.stderr).toMatch(/cannot read \/no\/such\/results\.csv/);
  });

  it('mlflow status shows the sync of every job and says when MLflow is off', async () => {
    const status = await runCli(['mlflow', 'status'], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^JOB\s+STATUS\s+RUN\s+SYNC\s+PENDING/);
    expect(status.stdout).toMatch(/\nyolo-csv\s+completed\s+–\s+off\s+0/);
    expect(status.stderr).toMatch(/MLflow is off on this sidecar/);
    const one = await runCli(['mlflow', 'status', 'yolo-csv', '--json'], env);
    expect(JSON.parse(one.stdout)).toMatchObject({ jobId: 'yolo-csv', mlflowSync: { enabled: false } });
  });
});

describe('training-callbacks without a sidecar', { timeout: TIMEOUT }, () => {
  it('--help on every command exits 0 with the help on stdout; no command prints help on stderr and exits 2', async () => {
    const root = await runCli(['--help']);
    expect(root).toMatchObject({ code: 0, stderr: '' });
    expect(root.stdout).toMatch(/Usage: training-callbacks \[options\] \[command\]/);
    expect(root.stdout).toMatch(/Exit codes:\n {3}0 {2}done/);
    for (const command of [
      ['jobs', 'list'],
      ['jobs', 'show'],
      ['jobs', 'watch'],
      ['export'],
      ['import-csv'],
      ['mlflow', 'status'],
      ['mlflow', 'retry'],
      ['mlflow', 'remirror'],
    ]) {
      const help = await runCli([...command, '--help']);
      expect(help.code, command.join(' ')).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`Usage: training-callbacks ${command.join(' ')}`));
      expect(help.stdout).toMatch(
        /--address <ADDR>\s+the sidecar: host:port or unix:\/path\/to\.sock\s+\(default:\s+\$TRAINING_CALLBACKS_ADDRESS,\s+else\s+127\.0\.0\.1:50051\)/,
      );
    }
    const serveHelp = await runCli(['serve', '--help']);
    expect(serveHelp.code).toBe(0);
    expect(serveHelp.stdout).toMatch(/Usage: training-callbacks serve \[options\]/);
    expect(serveHelp.stdout).toMatch(/--listen ADDR/);

    const bare = await runCli([]);
    expect(bare.code).toBe(CLI_EXIT_CODES.usage.code);
    expect(bare.stdout).toBe('');
    expect(bare.stderr).toMatch(/Usage: training-callbacks/);
  });

  it('serve runs the sidecar with its own flags and exits 0 on SIGTERM; a bad flag exits 2', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(path.join(tmpdir(), 'tc-cli-serve-'));
    try {
      await using server = startCli([
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--http',
        'off',
        '--db',
        path.join(dir, 'db.sqlite'),
      ]);
      // The sidecar's log goes to stdout, as with `npm start`.
      const [listening] = await server.waitForLines(1, 60_000);
      const address = /listening on (127\.0\.0\.1:\d+)/.exec(listening!)![1]!;
      const listed = await runCli(['jobs', 'list', '--json'], { TRAINING_CALLBACKS_ADDRESS: address });
      expect(listed).toMatchObject({ code: 0, stdout: '[]\n' });
      expect(await server.stop('SIGTERM')).toBe(0);
      const bad = await runCli(['serve', '--durability', 'sometimes', '--db', path.join(dir, 'db.sqlite')]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/--durability must be "normal" or "full"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('TLS: without the CA the sidecar is unreachable (exit 11, the hint names --ca-file); --ca-file connects', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(path.join(tmpdir(), 'tc-cli-tls-'));
    try {
      const ca = createCertificateAuthority(dir, 'ca');
      const server = issueCertificate(ca, dir, 'sidecar', 'server');
      await using sidecar = await startSidecarProcess({
        args: ['--tls-cert', server.certFile, '--tls-key', server.keyFile],
      });
      const env = { TRAINING_CALLBACKS_ADDRESS: sidecar.address };
      const plain = await runCli(['jobs', 'list', '--timeout', '5'], env);
      expect(plain.code).toBe(CLI_EXIT_CODES.unavailable.code);
      expect(plain.stderr).toMatch(/a sidecar with TLS also needs --ca-file/);
      const tls = await runCli(['jobs', 'list', '--json'], {
        ...env,
        TRAINING_CALLBACKS_CA_FILE: ca.certFile,
      });
      expect(tls).toMatchObject({ code: 0, stdout: '[]\n' });
      const flag = await runCli(['jobs', 'list', '--json', '--ca-file', ca.certFile], env);
      expect(flag).toMatchObject({ code: 0, stdout: '[]\n' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a token the sidecar does not accept is exit code 12 with what to give', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(path.join(tmpdir(), 'tc-cli-auth-'));
    try {
      const tokens = path.join(dir, 'tokens');
      await writeFile(tokens, 'write write-token-0123456789\nread read-token-0123456789\n');
      await using sidecar = await startSidecarProcess({ args: ['--auth-token-file', tokens] });
      const env = { TRAINING_CALLBACKS_ADDRESS: sidecar.address };
      const none = await runCli(['jobs', 'list'], env);
      expect(none.code).toBe(CLI_EXIT_CODES.permission.code);
      expect(none.stderr).toMatch(/UNAUTHENTICATED[\s\S]*--token-file/);
      const readFileToken = path.join(dir, 'read-token');
      await writeFile(readFileToken, 'read-token-0123456789\n');
      const read = await runCli(['jobs', 'list', '--token-file', readFileToken], env);
      expect(read).toMatchObject({ code: 0, stdout: '' });
      const write = await runCli(['mlflow', 'retry', 'x'], {
        ...env,
        TRAINING_CALLBACKS_TOKEN: 'read-token-0123456789',
      });
      expect(write.code).toBe(CLI_EXIT_CODES.permission.code);
      expect(write.stderr).toMatch(/PERMISSION_DENIED[\s\S]*write token/);
      const unreadable = await runCli(['jobs', 'list', '--token-file', path.join(dir, 'missing')], env);
      expect(unreadable.code).toBe(CLI_EXIT_CODES.usage.code);
      expect(unreadable.stderr).toMatch(/cannot read the token file/);
      expect(await readFile(tokens, 'utf8')).toContain('write');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
