import { Duplex } from 'node:stream';
import type { DescFile } from '@bufbuild/protobuf';
import { toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import type { MethodDefinition, Server, ServerDuplexStream, ServiceDefinition } from '@grpc/grpc-js';
import { Status } from './rpc-error.ts';

function collect(file: DescFile, into: Map<string, DescFile>): void {
  if (into.has(file.name)) return;
  for (const dependency of file.dependencies) collect(dependency, into);
  into.set(file.name, file);
}

/** The reflection services @grpc/reflection serves, each with its one bidi method. */
const REFLECTION_SERVICES = [
  'grpc.reflection.v1.ServerReflection',
  'grpc.reflection.v1alpha.ServerReflection',
];

type Method = MethodDefinition<unknown, unknown>;
type Handler = (call: ServerDuplexStream<unknown, unknown>) => void;

/**
 * Serves gRPC server reflection (v1 and v1alpha, via @grpc/reflection) for the services in `files`,
 * so that grpcurl, grpcui and Postman can call the sidecar without the .proto files.
 *
 * @grpc/reflection is loaded on the first reflection call: it parses its .proto files with protobufjs
 * when it starts (~3 MiB of resident memory), which a server nobody inspects need not pay. Until then
 * the methods are registered with byte-for-byte (de)serialisers, and each call hands its messages to
 * @grpc/reflection's own handler, decoded and encoded with that handler's own definition.
 */
export function addReflection(server: Server, files: readonly DescFile[]): void {
  let loaded: Promise<Map<string, { method: Method; handler: Handler }>> | undefined;
  const load = async () => {
    const all = new Map<string, DescFile>();
    for (const file of files) collect(file, all);
    const fileDescriptorProtos = [...all.values()].map((file) =>
      Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)),
    );
    const { ReflectionService } = await import('@grpc/reflection');
    // @grpc/reflection reads only `fileDescriptorProtos` from each entry of a proto-loader package
    // definition; one entry carrying every file is enough.
    const packageDefinition = { files: { fileDescriptorProtos } };
    const methods = new Map<string, { method: Method; handler: Handler }>();
    const capture = {
      addService(definition: ServiceDefinition, implementation: Record<string, Handler>) {
        for (const [name, method] of Object.entries(definition))
          methods.set(method.path, { method: method as Method, handler: implementation[name]! });
      },
    };
    new ReflectionService(packageDefinition as never).addToServer(capture as never);
    return methods;
  };
  const bytes = (value: unknown) => value as Buffer;
  for (const service of REFLECTION_SERVICES) {
    const path = `/${service}/ServerReflectionInfo`;
    const definition = {
      ServerReflectionInfo: {
        path,
        requestStream: true,
        responseStream: true,
        requestSerialize: bytes,
        requestDeserialize: bytes,
        responseSerialize: bytes,
        responseDeserialize: bytes,
        originalName: 'serverReflectionInfo',
      },
    } satisfies ServiceDefinition;
    const handler = (call: ServerDuplexStream<Buffer, Buffer>) => {
      // The call's messages wait in its stream (no 'data' listener yet) until the handler is there.
      loaded ??= load().catch((error: unknown) => {
        loaded = undefined;
        throw error;
      });
      loaded.then(
        (methods) => {
          const { method, handler: reflect } = methods.get(path)!;
          reflect(decodingStream(call, method) as never);
        },
        (error: unknown) =>
          call.emit('error', {
            code: Status.INTERNAL,
            details: `server reflection is unavailable: ${(error as Error)?.message ?? error}`,
          }),
      );
    };
    server.addService(definition, { ServerReflectionInfo: handler });
  }
}

/** `call` as the message stream a grpc-js handler of `method` expects: bytes decoded in, encoded out. */
function decodingStream(call: ServerDuplexStream<Buffer, Buffer>, method: Method): Duplex {
  const messages = new Duplex({
    objectMode: true,
    read() {
      call.resume();
    },
    write(message, _encoding, done) {
      call.write(method.responseSerialize(message), done);
    },
    final(done) {
      call.end();
      done();
    },
  });
  call.on('data', (data: Buffer) => {
    let message: unknown;
    try {
      message = method.requestDeserialize(data);
    } catch (error) {
      call.emit('error', {
        code: Status.INVALID_ARGUMENT,
        details: `the request bytes are not a valid ServerReflectionRequest (${(error as Error)?.message ?? error})`,
      });
      return;
    }
    if (!messages.push(message)) call.pause();
  });
  call.on('end', () => messages.push(null));
  call.on('cancelled', () => messages.emit('cancelled'));
  call.on('error', () => messages.destroy());
  return messages;
}
