import type {
  DescMessage,
  DescMethod,
  DescService,
  MessageInitShape,
  MessageShape,
} from '@bufbuild/protobuf';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { RpcError, Status } from './rpc-error.ts';

/**
 * Messages marked by {@link sendsToMany}, and their bytes once the first call has serialised them
 * (null until then). Weak: a message and its bytes go when the last call holding it has written it.
 */
const sharedEncodings = new WeakMap<object, Buffer | null>();

/**
 * Marks a message that several calls will send (one watch event fanned out to every subscriber): the
 * server serialises it once, and every call writes the same bytes (grpc-js copies them into its own
 * frame, so sharing them is safe). The message must not change after it is marked.
 */
export function sendsToMany<T extends object>(message: T, encoding?: Uint8Array): T {
  if (!sharedEncodings.has(message)) {
    // `encoding`: the message's bytes when the caller has encoded it already (they must be what
    // protobuf-es writes for it); the message itself is then only read by other transports.
    const bytes = encoding && Buffer.from(encoding.buffer, encoding.byteOffset, encoding.byteLength);
    sharedEncodings.set(message, bytes ?? null);
  }
  return message;
}

/**
 * A request whose bytes the caller has encoded (they must be what protobuf-es writes for the message):
 * the call writes them as they are. The returned object is only their handle — it carries none of the
 * message's fields — so only calls of this adapter can send it. A hot path (a trainer's batch points)
 * encodes straight from its own arrays instead of building the message first.
 */
export function preEncoded<T extends DescMessage>(_schema: T, bytes: Uint8Array): MessageInitShape<T> {
  return sendsToMany({} as MessageInitShape<T>, bytes);
}

function serializer<T extends DescMessage>(schema: T) {
  // `create` returns a message unchanged, so handlers may return either messages or init objects.
  return (value: MessageInitShape<T>): Buffer => {
    const shared = sharedEncodings.get(value);
    if (shared) return shared;
    const bytes = toBinary(schema, create(schema, value));
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (shared === null) sharedEncodings.set(value, buffer);
    return buffer;
  };
}

function deserializer<T extends DescMessage>(schema: T) {
  return (bytes: Buffer): MessageShape<T> => fromBinary(schema, bytes);
}

/**
 * A request whose bytes protobuf-es could not decode. The server-side deserialiser returns it instead
 * of throwing, because grpc-js answers a throwing deserialiser with INTERNAL; the server adapter turns
 * it into INVALID_ARGUMENT before any handler sees it.
 */
export class UndecodableRequest {
  readonly typeName: string;
  readonly reason: string;

  constructor(typeName: string, reason: string) {
    this.typeName = typeName;
    this.reason = reason;
  }

  /** The refusal sent to the client. */
  toRpcError(): RpcError {
    return new RpcError(
      Status.INVALID_ARGUMENT,
      `the request bytes are not a valid ${this.typeName} (${this.reason}); ` +
        'send a message encoded from the published proto',
    );
  }
}

/**
 * A hand-written decoder of one method's requests (the batch points' typed arrays): it returns what
 * that method's handler reads, and throws for bytes that are not the message, as `fromBinary` does.
 */
export type RequestDecoder = (bytes: Uint8Array) => unknown;

function tolerantDeserializer<T extends DescMessage>(schema: T, decode?: RequestDecoder) {
  return (bytes: Buffer): MessageShape<T> | UndecodableRequest => {
    try {
      return decode ? (decode(bytes) as MessageShape<T>) : fromBinary(schema, bytes);
    } catch (error) {
      return new UndecodableRequest(schema.typeName, error instanceof Error ? error.message : String(error));
    }
  };
}

/** The grpc-js definition of one method, serialising with protobuf-es. */
export function createMethodDefinition(
  method: DescMethod,
  decode?: RequestDecoder,
): MethodDefinition<MessageInitShape<DescMessage>, MessageInitShape<DescMessage>> {
  return {
    path: `/${method.parent.typeName}/${method.name}`,
    requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
    responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
    requestSerialize: serializer(method.input),
    // Only servers decode requests: undecodable bytes become an UndecodableRequest (see above).
    requestDeserialize: tolerantDeserializer(method.input, decode) as (
      bytes: Buffer,
    ) => MessageShape<DescMessage>,
    responseSerialize: serializer(method.output),
    responseDeserialize: deserializer(method.output),
    originalName: method.name,
  };
}

/**
 * A grpc-js ServiceDefinition built from a protobuf-es v2 service descriptor: one entry per
 * method, keyed by its camelCase local name, so both `Server.addService` and
 * `makeGenericClientConstructor` work with the generated code and no proto-loader. `decoders`: the
 * server's hand-written request decoders by method (see {@link RequestDecoder}).
 */
export function createServiceDefinition(
  service: DescService,
  decoders: Readonly<Record<string, RequestDecoder>> = {},
): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = createMethodDefinition(
      method,
      decoders[method.localName],
    ) as MethodDefinition<unknown, unknown>;
  }
  return definition as ServiceDefinition;
}
