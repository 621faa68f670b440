import type { DescMessage, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import {
  type ChannelCredentials,
  type ChannelOptions,
  type Client,
  type CallOptions as GrpcCallOptions,
  credentials as grpcCredentials,
  Metadata,
  makeGenericClientConstructor,
} from '@grpc/grpc-js';
import { RpcError, Status } from './rpc-error.ts';
import { createServiceDefinition } from './service-definition.ts';

/** Per-call options. */
export interface CallOptions {
  /** Absolute deadline, or milliseconds from now. */
  deadline?: Date | number;
  /** Aborting cancels the call (it rejects with CANCELLED). */
  signal?: AbortSignal;
  /** Request metadata. */
  metadata?: Record<string, string>;
}

type In<M> = M extends { input: infer I extends DescMessage } ? MessageInitShape<I> : never;
type Out<M> = M extends { output: infer O extends DescMessage } ? MessageShape<O> : never;

/** The client-side function for one method, by its kind. */
export type ClientMethod<M> = M extends { methodKind: 'unary' }
  ? (request: In<M>, options?: CallOptions) => Promise<Out<M>>
  : M extends { methodKind: 'client_streaming' }
    ? (requests: AsyncIterable<In<M>> | Iterable<In<M>>, options?: CallOptions) => Promise<Out<M>>
    : M extends { methodKind: 'server_streaming' }
      ? (request: In<M>, options?: CallOptions) => AsyncIterable<Out<M>>
      : never;

/** A typed promise-based client for a protobuf-es service over grpc-js. */
export type ServiceClient<T extends GenServiceMethods> = { [K in keyof T]: ClientMethod<T[K]> } & {
  /** Closes the channel. */
  close(): void;
  /** Resolves once the channel is connected, rejects after the deadline. */
  waitForReady(deadline: Date | number): Promise<void>;
};

/** Options of {@link createClient}. */
export interface CreateClientOptions {
  /** Channel credentials; insecure by default (a sidecar on loopback or a unix socket). */
  credentials?: ChannelCredentials;
  /** grpc-js channel options, e.g. `{'grpc.max_receive_message_length': …}`. */
  channelOptions?: ChannelOptions;
}

function toGrpcOptions(options: CallOptions | undefined): {
  metadata: Metadata;
  callOptions: GrpcCallOptions;
} {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(options?.metadata ?? {})) metadata.set(key, value);
  const callOptions: GrpcCallOptions = {};
  if (options?.deadline !== undefined) {
    callOptions.deadline =
      typeof options.deadline === 'number' ? new Date(Date.now() + options.deadline) : options.deadline;
  }
  return { metadata, callOptions };
}

/**
 * Cancels a grpc-js client call so that the server hears of it, also right after the call started.
 *
 * grpc-js 1.14 (ResolvingCall.getConfig, build/src/resolving-call.js) creates the call's child — the
 * one that opens the HTTP/2 stream — in a promise callback after `start`, and that callback does not
 * look whether the call was cancelled meanwhile. A `cancel()` in that window (a stream written and
 * cancelled in one go) ends the call locally with CANCELLED, and then the child starts anyway: it
 * sends the headers and the queued messages and is never reset, so the server's handler waits for
 * the rest until the deadline — for ever without one — holding what it holds (an upload's staging
 * file). A second cancel once that callback has run (a macrotask later) reaches the child:
 * ResolvingCall.cancelWithStatus always forwards to its child, ended or not.
 */
export function cancelCall(call: { cancel(): void }): void {
  call.cancel();
  setImmediate(() => call.cancel());
}

function bindAbort(call: { cancel(): void }, signal: AbortSignal | undefined): void {
  if (!signal) return;
  if (signal.aborted) cancelCall(call);
  else signal.addEventListener('abort', () => cancelCall(call), { once: true });
}

/**
 * Creates a typed client for `service` at `address` ("127.0.0.1:50051", "unix:/run/x.sock").
 * Failed calls reject with {@link RpcError} carrying the gRPC status.
 */
export function createClient<T extends GenServiceMethods>(
  service: GenService<T>,
  address: string,
  options: CreateClientOptions = {},
): ServiceClient<T> {
  const Constructor = makeGenericClientConstructor(createServiceDefinition(service), service.typeName);
  const raw = new Constructor(
    address,
    options.credentials ?? grpcCredentials.createInsecure(),
    options.channelOptions,
  ) as Client & Record<string, (...args: unknown[]) => unknown>;
  const client: Record<string, unknown> = {
    close: () => raw.close(),
    waitForReady: (deadline: Date | number) =>
      new Promise<void>((resolve, reject) => {
        const at = typeof deadline === 'number' ? new Date(Date.now() + deadline) : deadline;
        raw.waitForReady(at, (error) =>
          error ? reject(RpcError.from(error, Status.UNAVAILABLE)) : resolve(),
        );
      }),
  };
  for (const method of service.methods) {
    const fn = raw[method.localName]!.bind(raw) as (...args: unknown[]) => unknown;
    switch (method.methodKind) {
      case 'unary':
        client[method.localName] = (request: unknown, callOpts?: CallOptions) =>
          new Promise((resolve, reject) => {
            const { metadata, callOptions } = toGrpcOptions(callOpts);
            const call = fn(request, metadata, callOptions, (error: unknown, response: unknown) =>
              error ? reject(RpcError.from(error)) : resolve(response),
            ) as { cancel(): void };
            bindAbort(call, callOpts?.signal);
          });
        break;
      case 'client_streaming':
        client[method.localName] = (
          requests: AsyncIterable<unknown> | Iterable<unknown>,
          callOpts?: CallOptions,
        ) =>
          new Promise((resolve, reject) => {
            const { metadata, callOptions } = toGrpcOptions(callOpts);
            const call = fn(metadata, callOptions, (error: unknown, response: unknown) =>
              error ? reject(RpcError.from(error)) : resolve(response),
            ) as NodeJS.WritableStream & { cancel(): void };
            bindAbort(call, callOpts?.signal);
            (async () => {
              for await (const request of requests) {
                if (!call.write(request as never)) await new Promise((r) => call.once('drain', r));
              }
              call.end();
            })().catch((error: unknown) => {
              cancelCall(call);
              reject(RpcError.from(error, Status.CANCELLED));
            });
          });
        break;
      case 'server_streaming':
        client[method.localName] = (request: unknown, callOpts?: CallOptions) => {
          const { metadata, callOptions } = toGrpcOptions(callOpts);
          const call = fn(request, metadata, callOptions) as AsyncIterable<unknown> & { cancel(): void };
          bindAbort(call, callOpts?.signal);
          return (async function* () {
            try {
              for await (const message of call) yield message;
            } catch (error) {
              throw RpcError.from(error);
            } finally {
              // A reader that stops early (break, return) ends the call instead of leaving it open.
              cancelCall(call);
            }
          })();
        };
        break;
      default:
        throw new Error(`createClient: ${method.methodKind} methods are not supported (${method.name})`);
    }
  }
  return client as ServiceClient<T>;
}
