// The standard services next to ours: grpc.health.v1 and server reflection, as a platform's probes
// and tools (grpc_health_probe, grpcurl) call them.
import { credentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { protoPath as healthProto } from 'grpc-health-check';
import { expect, it } from 'vitest';

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
