// Server reflection on a real grpc-js server on loopback, called as grpcurl calls it (v1 and v1alpha,
// several requests on one stream), and with a request that asks nothing.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials, loadPackageDefinition, Server, ServerCredentials } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { file_trainingcallbacks_v1_training_callbacks } from '@training-callbacks/proto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { addReflection, Status } from './index.ts';

const server = new Server();
let address: string;

beforeAll(async () => {
  addReflection(server, [file_trainingcallbacks_v1_training_callbacks]);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  address = `127.0.0.1:${port}`;
});
afterAll(() => server.forceShutdown());

interface ReflectionStream extends NodeJS.ReadWriteStream {
  end(): this;
}
type ReflectionClient = new (
  address: string,
  creds: unknown,
) => {
  serverReflectionInfo(): ReflectionStream;
  close(): void;
};

/** A reflection client of `version` from @grpc/reflection's own .proto (what grpcurl speaks). */
function reflectionClient(version: 'v1' | 'v1alpha') {
  const build = path.dirname(fileURLToPath(import.meta.resolve('@grpc/reflection')));
  const proto = path.join(build, `../proto/grpc/reflection/${version}/reflection.proto`);
  const pkg = loadPackageDefinition(loadSync(proto)) as never as {
    grpc: { reflection: Record<string, { ServerReflection: ReflectionClient }> };
  };
  return new pkg.grpc.reflection[version]!.ServerReflection(address, credentials.createInsecure());
}

/** Sends `requests` on one stream and collects the answers until the server ends it. */
async function ask(version: 'v1' | 'v1alpha', requests: object[]): Promise<Record<string, unknown>[]> {
  const client = reflectionClient(version);
  const stream = client.serverReflectionInfo();
  const answers: Record<string, unknown>[] = [];
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (answer) => answers.push(answer));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  for (const request of requests) stream.write(request as never);
  stream.end();
  await done;
  client.close();
  return answers;
}

it('v1 lists the services and answers several requests on one stream, in order', async () => {
  const answers = await ask('v1', [
    { listServices: '' },
    { fileContainingSymbol: 'trainingcallbacks.v1.TrainingCallbacks' },
    { fileByFilename: 'no/such.proto' },
  ]);
  expect(answers).toHaveLength(3);
  const [list, file, missing] = answers as [
    { listServicesResponse: { service: { name: string }[] } },
    { fileDescriptorResponse: { fileDescriptorProto: Buffer[] } },
    { errorResponse: { errorCode: number } },
  ];
  expect(list.listServicesResponse.service.map((s) => s.name)).toContain(
    'trainingcallbacks.v1.TrainingCallbacks',
  );
  expect(file.fileDescriptorResponse.fileDescriptorProto.length).toBeGreaterThan(0);
  expect(missing.errorResponse.errorCode).toBe(Status.NOT_FOUND);
});

it('v1alpha answers too', async () => {
  const [list] = (await ask('v1alpha', [{ listServices: '' }])) as [
    { listServicesResponse: { service: { name: string }[] } },
  ];
  expect(list.listServicesResponse.service.map((s) => s.name)).toContain(
    'trainingcallbacks.v1.TrainingCallbacks',
  );
});

it('a request asking nothing answers an error_response UNIMPLEMENTED, and the stream goes on', async () => {
  const answers = (await ask('v1', [{}, { listServices: '' }])) as [
    { errorResponse: { errorCode: number } },
    { listServicesResponse: { service: unknown[] } },
  ];
  expect(answers[0].errorResponse.errorCode).toBe(Status.UNIMPLEMENTED);
  expect(answers[1].listServicesResponse.service.length).toBeGreaterThan(0);
});
