import type { DescMessage, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import type {
  Metadata,
  Server,
  ServerReadableStream,
  ServerUnaryCall,
  ServerWritableStream,
  sendUnaryData,
  UntypedHandleCall,
} from '@grpc/grpc-js';
import { type ErrorMapper, RpcError, Status, toStatusObject } from './rpc-error.ts';
import { createServiceDefinition, type RequestDecoder, UndecodableRequest } from './service-definition.ts';

/** What a handler knows about its call besides the request. */
export interface CallContext {
  /** Request metadata (headers). */
  readonly metadata: Metadata;
  /** The peer's address, e.g. "ipv4:127.0.0.1:53422". */
  readonly peer: string;
  /** Aborted when the client cancels or its deadline passes. */
  readonly signal: AbortSignal;
  /**
   * Whether the client has cancelled or its deadline has passed, as `signal.aborted` would say: for a
   * handler that only looks once. grpc-js clients reset a stream after its answer, so a stream whose
   * signal was made hears a cancel after every call: an AbortController, a listener and an error each.
   */
  readonly cancelled: boolean;
}

type In<M> = M extends { input: infer I extends DescMessage } ? MessageShape<I> : never;
type Out<M> = M extends { output: infer O extends DescMessage } ? MessageInitShape<O> : never;

/** The handler shape for one method, by its kind. */
export type MethodHandler<M> = M extends { methodKind: 'unary' }
  ? (request: In<M>, context: CallContext) => Promise<Out<M>>
  : M extends { methodKind: 'client_streaming' }
    ? (requests: AsyncIterable<In<M>>, context: CallContext) => Promise<Out<M>>
    : M extends { methodKind: 'server_streaming' }
      ? (request: In<M>, context: CallContext) => AsyncIterable<Out<M>>
      : never;

/**
 * Handlers for every method of a service. Every method is required: grpc-js silently answers
 * UNIMPLEMENTED for a missing one, and this type turns that into a compile error.
 */
export type ServiceHandlers<T extends GenServiceMethods> = { [K in keyof T]: MethodHandler<T[K]> };

/** Options of {@link addService}. */
export interface AddServiceOptions<T extends GenServiceMethods = GenServiceMethods> {
  /**
   * The server's table of known failures that are not RpcErrors (a full disk, a locked database):
   * what it maps travels with its status; what it returns undefined for is a bug (INTERNAL).
   */
  mapError?: ErrorMapper;
  /** Called with every error that is neither an RpcError nor mapped (a bug); it travels as INTERNAL. */
  onInternalError?: (error: unknown, method: string) => void;
  /**
   * Methods whose requests a hand-written decoder reads instead of protobuf-es, by local name: the
   * handler receives what the decoder returns, so it must accept that (a supertype of both shapes).
   */
  requestDecoders?: { readonly [K in keyof T]?: RequestDecoder };
}

/** The request, or the INVALID_ARGUMENT refusal for bytes that did not decode. */
function decoded(request: unknown): Promise<unknown> | undefined {
  return request instanceof UndecodableRequest ? Promise.reject(request.toRpcError()) : undefined;
}

const clientCancelled = () => new RpcError(Status.CANCELLED, 'call cancelled by the client');

/**
 * A client stream as the handler reads it: an undecodable message ends the loop with
 * INVALID_ARGUMENT, and a cancel that grpc-js has reported (`cancelled`) with CANCELLED. grpc-js
 * destroys the stream on a cancel; Node's iterator then throws ERR_STREAM_PREMATURE_CLOSE, which
 * would otherwise reach the error edge as a bug (INTERNAL, logged).
 *
 * A cancel can also look like a complete stream: a grpc-js client's cancel ends its side of the
 * HTTP/2 stream (END_STREAM) before it resets it (RST_STREAM), so the handler may see the end of
 * the messages sent so far a few milliseconds before grpc-js reports the cancel. A handler must
 * therefore judge what it received by its own rules (an upload checks its size and checksum), not
 * by the end alone — as it must anyway: the cancel may equally come just after a real end.
 */
async function* decodedStream(call: ServerReadableStream<unknown, unknown>): AsyncIterable<unknown> {
  try {
    for await (const message of call) {
      if (call.cancelled) break;
      if (message instanceof UndecodableRequest) throw message.toRpcError();
      yield message;
    }
  } catch (error) {
    throw call.cancelled ? clientCancelled() : error;
  }
  if (call.cancelled) throw clientCancelled();
}

function contextOf(
  call: ServerUnaryCall<unknown, unknown> | ServerReadableStream<unknown, unknown>,
): CallContext {
  // The AbortController is made only when a handler asks for the signal: most calls never do, and
  // one controller (plus a listener) per call shows in the profile of a sidecar doing 1000s of calls/s.
  let controller: AbortController | undefined;
  return {
    metadata: call.metadata,
    get peer() {
      return call.getPeer();
    },
    get cancelled() {
      return call.cancelled;
    },
    get signal() {
      if (!controller) {
        const created = new AbortController();
        controller = created;
        const abort = () => created.abort(clientCancelled());
        if (call.cancelled) abort();
        else call.once('cancelled', abort);
      }
      return controller.signal;
    },
  };
}

/**
 * Waits until the stream can take more, or until the call is cancelled: a client that stopped
 * reading and then went away must not leave the handler (and what it holds) waiting for ever.
 */
function drainOrCancel(call: ServerWritableStream<unknown, unknown>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off('drain', done);
      call.off('cancelled', done);
      resolve();
    };
    call.on('drain', done);
    call.on('cancelled', done);
    if (call.cancelled) done();
  });
}

/**
 * Registers protobuf-es service handlers on a grpc-js server. Handlers are async functions (or async
 * generators for server streams); whatever they throw is converted to a gRPC status here and only here.
 */
export function addService<T extends GenServiceMethods>(
  server: Server,
  service: GenService<T>,
  handlers: ServiceHandlers<T>,
  options: AddServiceOptions<T> = {},
): void {
  const onInternal = options.onInternalError ?? ((error: unknown) => console.error(error));
  const implementation: Record<string, UntypedHandleCall> = {};
  for (const method of service.methods) {
    const handler = (handlers as Record<string, unknown>)[method.localName];
    if (typeof handler !== 'function') {
      throw new Error(`addService: no handler for ${service.typeName}/${method.name}`);
    }
    const fail = (error: unknown) =>
      toStatusObject(error, (e) => onInternal(e, method.name), options.mapError);
    switch (method.methodKind) {
      case 'unary':
        implementation[method.localName] = (
          call: ServerUnaryCall<unknown, unknown>,
          callback: sendUnaryData<unknown>,
        ) => {
          (
            decoded(call.request) ??
            (handler as (r: unknown, c: CallContext) => Promise<unknown>)(call.request, contextOf(call))
          ).then(
            (response) => callback(null, response),
            (error: unknown) => callback(fail(error)),
          );
        };
        break;
      case 'client_streaming':
        implementation[method.localName] = (
          call: ServerReadableStream<unknown, unknown>,
          callback: sendUnaryData<unknown>,
        ) => {
          (handler as (r: AsyncIterable<unknown>, c: CallContext) => Promise<unknown>)(
            decodedStream(call),
            contextOf(call),
          ).then(
            (response) => callback(null, response),
            (error: unknown) => callback(fail(error)),
          );
        };
        break;
      case 'server_streaming':
        implementation[method.localName] = (call: ServerWritableStream<unknown, unknown>) => {
          const run = async () => {
            if (call.request instanceof UndecodableRequest) throw call.request.toRpcError();
            const stream = (handler as (r: unknown, c: CallContext) => AsyncIterable<unknown>)(
              call.request,
              contextOf(call),
            );
            for await (const message of stream) {
              if (call.cancelled) return;
              if (!call.write(message)) await drainOrCancel(call);
              if (call.cancelled) return;
            }
            call.end();
          };
          run().catch((error: unknown) => call.emit('error', fail(error)));
        };
        break;
      default:
        throw new Error(`addService: ${method.methodKind} methods are not supported (${method.name})`);
    }
  }
  server.addService(
    createServiceDefinition(service, options.requestDecoders as Record<string, RequestDecoder> | undefined),
    implementation,
  );
}
