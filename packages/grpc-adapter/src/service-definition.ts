import type {
  DescMessage,
  DescMethod,
  DescService,
  MessageInitShape,
  MessageShape,
} from '@bufbuild/protobuf';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';

function serializer<T extends DescMessage>(schema: T) {
  // `create` returns a message unchanged, so handlers may return either messages or init objects.
  return (value: MessageInitShape<T>): Buffer => {
    const bytes = toBinary(schema, create(schema, value));
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer<T extends DescMessage>(schema: T) {
  return (bytes: Buffer): MessageShape<T> => fromBinary(schema, bytes);
}

/** The grpc-js definition of one method, serialising with protobuf-es. */
export function createMethodDefinition(
  method: DescMethod,
): MethodDefinition<MessageInitShape<DescMessage>, MessageInitShape<DescMessage>> {
  return {
    path: `/${method.parent.typeName}/${method.name}`,
    requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
    responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
    requestSerialize: serializer(method.input),
    requestDeserialize: deserializer(method.input),
    responseSerialize: serializer(method.output),
    responseDeserialize: deserializer(method.output),
    originalName: method.name,
  };
}

/**
 * A grpc-js ServiceDefinition built from a protobuf-es v2 service descriptor: one entry per
 * method, keyed by its camelCase local name, so both `Server.addService` and
 * `makeGenericClientConstructor` work with the generated code and no proto-loader.
 */
export function createServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = createMethodDefinition(method) as MethodDefinition<unknown, unknown>;
  }
  return definition as ServiceDefinition;
}
