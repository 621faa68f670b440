// The sidecar's life as a platform sees it: grpc.health.v1 and server reflection (what probes and
// grpcurl call), a unix socket, a graceful stop that lets in-flight calls finish, and the
// `training-callbacks serve` launcher running the same built sidecar as `npm start`.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { credentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createClient, Status } from '@training-callbacks/grpc-adapter';
import { TaskType, TrainingCallbacks } from '@training-callbacks/proto';
import { EXIT_CODES } from '@training-callbacks/sidecar';
import {
  PRODUCTION_NODE_FLAGS,
  runSidecarUntilExit,
  startSidecarProcess,
} from '@training-callbacks/sidecar/testing';
import { protoPath as healthProto } from 'grpc-health-check';
import { expect, it } from 'vitest';
import { queryDatabase } from './database.ts';

it('answers health checks and serves reflection, and stops gracefully on SIGTERM', async () => {
  await using sidecar = await startSidecarProcess();
  const pkg = loadPackageDefinition(loadSync(healthProto, { enums: String })) as never as {
    grpc: { health: { v1: { Health: new (address: string, creds: unknown) => never } } };
  };
  const health = new pkg.grpc.health.v1.Health(sidecar.address, credentials.createInsecure()) as {
    check(req: { service: string }, cb: (e: Error | null, r: { status: string }) => void): void;
    close(): void;
  };
  const check = (service: string) =>
    new Promise<string>((resolve, reject) =>
      health.check({ service }, (e, r) => (e ? reject(e) : resolve(r.status))),
    );
  expect(await check('')).toBe('SERVING');
  expect(await check('trainingcallbacks.v1.TrainingCallbacks')).toBe('SERVING');
  health.close();

  const reflectionProto = new URL(
    '../../../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto',
    import.meta.url,
  ).pathname;
  const reflection = loadPackageDefinition(loadSync(reflectionProto)) as never as {
    grpc: { reflection: { v1: { ServerReflection: new (a: string, c: unknown) => never } } };
  };
  const client = new reflection.grpc.reflection.v1.ServerReflection(
    sidecar.address,
    credentials.createInsecure(),
  ) as {
    serverReflectionInfo(): NodeJS.ReadWriteStream & { end(): void };
    close(): void;
  };
  const stream = client.serverReflectionInfo();
  const answer = new Promise<{ listServicesResponse: { service: { name: string }[] } }>((resolve, reject) => {
    stream.on('data', resolve);
    stream.on('error', reject);
  });
  stream.write({ listServices: '' } as never);
  const services = (await answer).listServicesResponse.service.map((s) => s.name);
  expect(services).toContain('trainingcallbacks.v1.TrainingCallbacks');
  stream.end();
  client.close();

  expect(await sidecar.stop('SIGTERM')).toBe(0);
  expect(sidecar.output.join('\n')).toContain('stopped cleanly');
});

it('serves on a unix socket', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tc-uds-'));
  const socket = `unix:${path.join(dir, 'sidecar.sock')}`;
  await using sidecar = await startSidecarProcess({ listen: socket });
  expect(sidecar.address).toBe(socket);
  const client = createClient(TrainingCallbacks, socket);
  const { catalogs } = await client.getMetricCatalog({});
  expect(catalogs.map((c) => c.primaryMetric)).toEqual(['accuracy', 'mAP50', 'mAP50', 'miou', 'pck']);
  client.close();
});

it('finishes an in-flight call on SIGTERM, then refuses new ones and closes the database', async () => {
  await using sidecar = await startSidecarProcess();
  const client = createClient(TrainingCallbacks, sidecar.address);
  await client.beginTraining({ jobId: 'graceful', taskType: TaskType.IMAGE_CLASSIFICATION });
  const content = new Uint8Array(256 * 1024).fill(3);
  const sha256 = createHash('sha256').update(content).digest('hex');
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  async function* upload() {
    yield {
      part: {
        case: 'header' as const,
        value: { jobId: 'graceful', artifactPath: 'slow.bin', sizeBytes: BigInt(content.length), sha256 },
      },
    };
    yield { part: { case: 'chunk' as const, value: content.subarray(0, 1000) } };
    await gate; // the upload is in flight while the sidecar is told to stop
    yield { part: { case: 'chunk' as const, value: content.subarray(1000) } };
  }
  const inFlight = client.uploadArtifact(upload());
  await new Promise((r) => setTimeout(r, 200));
  sidecar.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  const late = createClient(TrainingCallbacks, sidecar.address);
  await expect(late.getJob({ jobId: 'graceful' }, { deadline: 3000 })).rejects.toMatchObject({
    code: Status.UNAVAILABLE,
  });
  late.close();
  release();
  const response = await inFlight;
  expect(response.artifact?.sha256).toBe(sha256);
  expect(await sidecar.exited).toBe(0);
  expect(sidecar.output.join('\n')).toContain('stopped cleanly');
  const rows = await queryDatabase<{ artifact_path: string }>(
    sidecar.dbPath,
    'select artifact_path from artifact',
  );
  expect(rows.map((r) => r.artifact_path)).toEqual(['slow.bin']);
  client.close();
});

it('a taken address: exits 3 with a hint about the address, not the database', async () => {
  await using first = await startSidecarProcess({ args: ['--quiet'] });
  const dataDir = await mkdtemp(path.join(tmpdir(), 'tc-startup-'));
  const { code, output } = await runSidecarUntilExit({ dataDir, listen: first.address, args: ['--quiet'] });
  expect(code, output).toBe(EXIT_CODES.addressInUse.code);
  expect(code).toBe(3);
  expect(output).toContain(`${first.address} is already in use`);
  expect(output).toMatch(/pick another --listen/);
  expect(output).not.toMatch(/database/);
});

it.runIf(process.platform === 'linux')(
  'training-callbacks serve runs the built sidecar with the production V8 flags, in its own process, and stops on SIGTERM',
  async () => {
    await using sidecar = await startSidecarProcess({ entry: 'launcher', args: ['--http', 'off'] });
    // The process the launcher started is the sidecar (execve keeps the PID): node, the flags, the bundle,
    // then the arguments `serve` was given.
    const argv = readFileSync(`/proc/${sidecar.child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const bundle = argv.findIndex((arg) => arg.endsWith(path.join('dist', 'bundle', 'main.js')));
    expect(bundle, argv.join(' ')).toBeGreaterThan(0);
    expect(argv.slice(1, bundle)).toEqual(PRODUCTION_NODE_FLAGS);
    const served = sidecar.child.spawnargs.indexOf('serve');
    expect(argv.slice(bundle + 1)).toEqual(sidecar.child.spawnargs.slice(served + 1));
    const client = createClient(TrainingCallbacks, sidecar.address);
    await client.beginTraining({
      jobId: 'served',
      taskType: TaskType.IMAGE_CLASSIFICATION,
      framework: 'e2e',
    });
    client.close();
    expect(await sidecar.stop('SIGTERM')).toBe(0);
  },
);
