// grpc.health.v1 on a real grpc-js server on loopback, called as probes call it: over the wire, with
// the service's own messages, and with bytes that are no request.
import { Client, credentials, Server, ServerCredentials } from '@grpc/grpc-js';
import { createClient, Status } from '@training-callbacks/grpc-adapter';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Health, HealthCheckResponse_ServingStatus as Serving } from './gen/grpc/health/v1/health_pb.ts';
import { createHealthService } from './health-service.ts';

const health = createHealthService({ '': 'SERVING', readiness: 'NOT_SERVING' });
const server = new Server();
let address: string;

beforeAll(async () => {
  health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  address = `127.0.0.1:${port}`;
});
afterAll(() => server.forceShutdown());

it('Check answers the status set, and NOT_FOUND naming an unknown service', async () => {
  const client = createClient(Health, address);
  expect((await client.check({ service: '' })).status).toBe(Serving.SERVING);
  expect((await client.check({ service: 'readiness' })).status).toBe(Serving.NOT_SERVING);
  await expect(client.check({ service: 'nope' })).rejects.toMatchObject({
    code: Status.NOT_FOUND,
    message: 'Health status unknown for service nope',
  });
  client.close();
});

it('Watch sends the current status, then every change; SERVICE_UNKNOWN for a service not set yet', async () => {
  const client = createClient(Health, address);
  const seen: number[] = [];
  const controller = new AbortController();
  const watching = (async () => {
    for await (const { status } of client.watch({ service: 'later' }, { signal: controller.signal })) {
      seen.push(status);
      if (seen.length === 1) health.setStatus('later', 'NOT_SERVING');
      if (seen.length === 2) health.setStatus('later', 'SERVING');
      if (seen.length === 3) break;
    }
  })();
  await watching;
  expect(seen).toEqual([Serving.SERVICE_UNKNOWN, Serving.NOT_SERVING, Serving.SERVING]);
  controller.abort();
  client.close();
});

it('List answers every service with its status', async () => {
  const client = createClient(Health, address);
  const { statuses } = await client.list({});
  expect(Object.fromEntries(Object.entries(statuses).map(([name, r]) => [name, r.status]))).toMatchObject({
    '': Serving.SERVING,
    readiness: Serving.NOT_SERVING,
  });
  client.close();
});

it('bytes that are no HealthCheckRequest answer INVALID_ARGUMENT, not INTERNAL', async () => {
  const client = new Client(address, credentials.createInsecure());
  const error = await new Promise<{ code: number; details: string }>((resolve) =>
    client.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from([0x0a, 0x05, 0x61]), // field 1, 5 bytes long, 1 byte given
      (e) => resolve(e as never),
    ),
  );
  expect(error.code).toBe(Status.INVALID_ARGUMENT);
  expect(error.details).toContain('grpc.health.v1.HealthCheckRequest');
  client.close();
});
