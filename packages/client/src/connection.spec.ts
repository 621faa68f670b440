// TLS and bearer tokens from the TypeScript client's side, against the real sidecar started with
// --tls-cert, --tls-key, --tls-client-ca and --auth-token-file, with real certificates (openssl).
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { CONNECTION_ENV, JobStatus } from '@training-callbacks/proto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { resolveConnection } from './connection.ts';
import { runTraining } from './run-training.ts';
import {
  type CertificateFiles,
  createCertificateAuthority,
  issueCertificate,
  type SidecarProcess,
  startSidecarProcess,
} from './testing/sidecar.ts';
import { TrainingCallbacks } from './training-callbacks.ts';

const WRITE_TOKEN = 'ts-write-0123456789abcdef';
const READ_TOKEN = 'ts-read-0123456789abcdef';

let dir: string;
let ca: CertificateFiles;
let trainer: CertificateFiles;
let tokenFile: string;
let sidecar: SidecarProcess;
let jobs = 0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tc-client-tls-'));
  ca = createCertificateAuthority(dir, 'ca');
  const server = issueCertificate(ca, dir, 'server', 'server');
  trainer = issueCertificate(ca, dir, 'trainer', 'client');
  await writeFile(path.join(dir, 'tokens'), `write ${WRITE_TOKEN}\nread ${READ_TOKEN}\n`);
  tokenFile = path.join(dir, 'trainer-token');
  await writeFile(tokenFile, `${WRITE_TOKEN}\n`);
  sidecar = await startSidecarProcess({
    args: [
      ...['--tls-cert', server.certFile, '--tls-key', server.keyFile, '--tls-client-ca', ca.certFile],
      ...['--auth-token-file', path.join(dir, 'tokens'), '--quiet'],
    ],
  });
}, 30_000);

afterAll(async () => {
  await sidecar?.[Symbol.asyncDispose]();
  await rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  vi.unstubAllEnvs();
});

/** The environment a pod gives the trainer: address, CA, client certificate and token file. */
function stubPodEnvironment(): void {
  for (const name of Object.values(CONNECTION_ENV)) vi.stubEnv(name, undefined);
  vi.stubEnv(CONNECTION_ENV.address, sidecar.address);
  vi.stubEnv(CONNECTION_ENV.caFile, ca.certFile);
  vi.stubEnv(CONNECTION_ENV.clientCertFile, trainer.certFile);
  vi.stubEnv(CONNECTION_ENV.clientKeyFile, trainer.keyFile);
  vi.stubEnv(CONNECTION_ENV.tokenFile, tokenFile);
}

const newJob = () => ({
  jobId: `tls-job-${process.pid}-${++jobs}`,
  taskType: 'image_classification' as const,
});

async function refusal(call: Promise<unknown>): Promise<RpcError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof RpcError) return error;
    throw error;
  }
  throw new Error('the call succeeded; expected a refusal');
}

describe('TLS and tokens from the environment', () => {
  it('reports a whole job over mutual TLS with the token from TRAINING_CALLBACKS_TOKEN_FILE', async () => {
    stubPodEnvironment();
    const options = newJob();
    await using callbacks = new TrainingCallbacks(options);
    expect(callbacks.address).toBe(sidecar.address);
    await runTraining(callbacks, async (cb) => {
      await cb.onEpochBegin(0);
      cb.onBatchEnd(0, { loss: 0.5 });
      await cb.onEpochEnd(0, { accuracy: 0.75 });
    });
    const { job } = await callbacks.client.getJob({ jobId: options.jobId });
    expect(job?.status).toBe(JobStatus.COMPLETED);
    const { blocks } = await callbacks.client.listBatchMetrics({ jobId: options.jobId });
    expect(blocks.flatMap((b) => b.values)).toEqual([0.5]);
  });

  it("a trainer's exit path ends its job over mutual TLS with the token too (the exit's child process)", async () => {
    stubPodEnvironment();
    const { jobId } = newJob();
    const trainerScript = fileURLToPath(new URL('./testing/exit-trainer.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--conditions=@training-callbacks/source', trainerScript, 'exit'],
      {
        env: { ...process.env, JOB_ID: jobId },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, stderr).toBe(3);
    await using reader = new TrainingCallbacks(newJob());
    const { job } = await reader.client.getJob({ jobId });
    expect(job).toMatchObject({
      status: JobStatus.FAILED,
      errorMessage: 'the process exited with code 3 before onTrainEnd',
    });
  }, 60_000);

  it('no token, a wrong token, a read token on a write; an option wins over the environment', async () => {
    stubPodEnvironment();
    vi.stubEnv(CONNECTION_ENV.tokenFile, undefined);
    await using anonymous = new TrainingCallbacks(newJob());
    const none = await refusal(anonymous.client.listJobs({}));
    expect(none.code).toBe(Status.UNAUTHENTICATED);
    expect(none.message).toContain('TRAINING_CALLBACKS_TOKEN');
    await using wrong = new TrainingCallbacks({ ...newJob(), token: 'not-a-token-of-this-sidecar' });
    expect((await refusal(wrong.client.listJobs({}))).code).toBe(Status.UNAUTHENTICATED);

    vi.stubEnv(CONNECTION_ENV.token, READ_TOKEN);
    await using reader = new TrainingCallbacks({ ...newJob(), strict: true });
    await reader.client.listJobs({});
    expect((await refusal(reader.onTrainBegin())).code).toBe(Status.PERMISSION_DENIED);
    // Not strict: the refusal does not reach the trainer; it is in the answer and in the losses.
    const warnings: string[] = [];
    await using quiet = new TrainingCallbacks({ ...newJob(), onWarning: (w) => warnings.push(w) });
    const begun = await quiet.onTrainBegin();
    expect(begun).toMatchObject({ delivered: false, pending: false, job: undefined });
    expect(begun.error?.code).toBe(Status.PERMISSION_DENIED);
    expect(warnings.join('\n')).toMatch(/BeginTraining lost \(PERMISSION_DENIED/);
    await using writer = new TrainingCallbacks({ ...newJob(), token: WRITE_TOKEN });
    expect((await writer.onTrainBegin()).job?.status).toBe(JobStatus.RUNNING);
  });

  it('mutual TLS: without a client certificate the connection is refused', async () => {
    stubPodEnvironment();
    vi.stubEnv(CONNECTION_ENV.clientCertFile, undefined);
    vi.stubEnv(CONNECTION_ENV.clientKeyFile, undefined);
    await using callbacks = new TrainingCallbacks(newJob());
    const error = await refusal(callbacks.client.listJobs({}, { deadline: 15_000 }));
    expect(error.code).toBe(Status.UNAVAILABLE);
  });
});

describe('resolveConnection', () => {
  it('takes options over the environment, and a token over a token file', async () => {
    const file = path.join(dir, 'token');
    await writeFile(file, '  from-file-0123456789 \n');
    const env = {
      [CONNECTION_ENV.address]: 'sidecar:1',
      [CONNECTION_ENV.token]: 'from-env',
      [CONNECTION_ENV.tokenFile]: file,
    };
    expect(resolveConnection({}, env)).toMatchObject({ address: 'sidecar:1', tls: false });
    expect(resolveConnection({ address: 'other:2' }, env).address).toBe('other:2');
    expect(resolveConnection({}, {}).address).toBe('127.0.0.1:50051');
    expect(resolveConnection({}, {}).interceptor).toBeUndefined();
    expect(resolveConnection({}, env).interceptor).toBeDefined();
    expect(resolveConnection({ caFile: ca.certFile }, {}).tls).toBe(true);
  });

  it('refuses unreadable or empty files and half a client certificate, naming the setting', async () => {
    await writeFile(path.join(dir, 'empty'), '\n');
    expect(() => resolveConnection({ tokenFile: path.join(dir, 'empty') }, {})).toThrow(/is empty/);
    expect(() => resolveConnection({}, { [CONNECTION_ENV.caFile]: path.join(dir, 'missing') })).toThrow(
      /cannot read the CA file \(\$TRAINING_CALLBACKS_CA_FILE\)/,
    );
    expect(() => resolveConnection({ caFile: ca.certFile, clientCertFile: trainer.certFile }, {})).toThrow(
      /needs its key/,
    );
    expect(() =>
      resolveConnection({ clientCertFile: trainer.certFile, clientKeyFile: trainer.keyFile }, {}),
    ).toThrow(/needs the sidecar's CA/);
  });
});
