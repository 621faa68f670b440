// The Connect protocol on the HTTP listener, for browsers (the dashboard): the same handlers the gRPC
// port serves, from the same protobuf-es descriptors, through @connectrpc/connect-node. Only the read
// RPCs (`idempotency_level = NO_SIDE_EFFECTS` in the proto) are served here; a write answers
// PERMISSION_DENIED naming the gRPC port. Tokens follow the gRPC rules (a read token suffices), and a
// thrown error becomes its status through the same table as on the gRPC port (grpc-adapter's
// toStatusObject with the sidecar's failure mapper), so a client sees one status for one failure
// whichever transport it used.
import type { IncomingMessage } from 'node:http';
import type { DescMethod } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { base64Decode } from '@bufbuild/protobuf/wire';
import { MethodOptions_IdempotencyLevel } from '@bufbuild/protobuf/wkt';
import {
  Code,
  ConnectError,
  createContextKey,
  createContextValues,
  type HandlerContext,
} from '@connectrpc/connect';
import type { UniversalHandler, UniversalServerResponse } from '@connectrpc/connect/protocol';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { Metadata } from '@grpc/grpc-js';
import {
  type CallContext,
  type ErrorMapper,
  type ServiceHandlers,
  toStatusObject,
} from '@training-callbacks/grpc-adapter';
import type { HttpAuthDecision, HttpHandler } from './listener.ts';

/** Options of {@link connectService}. */
export interface ConnectServiceOptions {
  /** The sidecar's table of known failures (as for the gRPC port). */
  mapError?: ErrorMapper;
  /** A bug (neither an RpcError nor mapped): logged by the caller, answered INTERNAL. */
  onInternalError?: (error: unknown, method: string) => void;
  /** Token and client-certificate check, called with `read` before every call (as on the gRPC port). */
  authorize?: (request: IncomingMessage, access: 'read') => HttpAuthDecision;
  /** Largest request and response message, in bytes (the sidecar's --max-message-bytes). */
  maxMessageBytes: number;
}

/** The mounted Connect service: serve `handler` under `prefix` ("/pkg.Service/"). */
export interface ConnectService {
  readonly prefix: string;
  readonly handler: HttpHandler;
}

const NODE_REQUEST = createContextKey<IncomingMessage | undefined>(undefined);

/** Whether `method` is a read (the contract marks reads `NO_SIDE_EFFECTS`). */
export function isReadMethod(method: DescMethod): boolean {
  return method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
}

/** A gRPC-style call context for the shared handlers, from a Connect handler context. */
function callContextOf(context: HandlerContext): CallContext {
  const metadata = new Metadata();
  context.requestHeader.forEach((value, key) => {
    if (key.endsWith('-bin')) return;
    try {
      metadata.set(key, value);
    } catch {
      // Legal HTTP that gRPC metadata cannot carry (a "~" in a name, a non-ASCII value): no handler
      // reads such a header, and the call must not fail INTERNAL for it.
    }
  });
  const socket = context.values.get(NODE_REQUEST)?.socket;
  return {
    metadata,
    peer: socket?.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unknown',
    signal: context.signal,
    get cancelled() {
      return context.signal.aborted;
    },
  };
}

const HTTP_REFUSAL_CODE = { 401: Code.Unauthenticated, 403: Code.PermissionDenied } as const;

/**
 * The Connect handler for `service`'s read RPCs, backed by the gRPC port's `handlers`. Mount it on
 * the listener as a `public` route: it checks tokens itself so that a refusal travels as a Connect
 * error (code and message) rather than a bare HTTP status.
 */
export function connectService<T extends GenServiceMethods>(
  service: GenService<T>,
  handlers: ServiceHandlers<T>,
  options: ConnectServiceOptions,
): ConnectService {
  const onInternal = options.onInternalError ?? ((error: unknown) => console.error(error));
  const toConnectError = (error: unknown, method: DescMethod): ConnectError => {
    if (error instanceof ConnectError) return error;
    const status = toStatusObject(error, (e) => onInternal(e, method.name), options.mapError);
    const trailers = new Headers();
    for (const [key, value] of Object.entries(status.metadata?.getMap() ?? {})) {
      if (typeof value === 'string') trailers.set(key, value);
    }
    // Connect's codes are gRPC's status numbers (1–16).
    return new ConnectError(status.details, status.code as number as Code, trailers);
  };
  const authorize = (context: HandlerContext) => {
    const request = context.values.get(NODE_REQUEST);
    if (!options.authorize || !request) return;
    const decision = options.authorize(request, 'read');
    if (!decision.ok) throw new ConnectError(decision.message, HTTP_REFUSAL_CODE[decision.status]);
  };
  const refuseWrite = (method: DescMethod) =>
    new ConnectError(
      `${method.name} writes, and the HTTP listener (--http) serves the read RPCs only (the dashboard ` +
        "is read-only); call it over gRPC on the sidecar's --listen address",
      Code.PermissionDenied,
    );

  const implementation: Record<string, unknown> = {};
  for (const method of service.methods) {
    const handler = (handlers as Record<string, unknown>)[method.localName] as (
      request: unknown,
      context: CallContext,
    ) => unknown;
    const read = isReadMethod(method);
    switch (method.methodKind) {
      case 'unary':
        implementation[method.localName] = async (request: unknown, context: HandlerContext) => {
          authorize(context);
          if (!read) throw refuseWrite(method);
          try {
            return await (handler(request, callContextOf(context)) as Promise<unknown>);
          } catch (error) {
            throw toConnectError(error, method);
          }
        };
        break;
      case 'server_streaming':
        implementation[method.localName] = async function* (request: unknown, context: HandlerContext) {
          authorize(context);
          if (!read) throw refuseWrite(method);
          try {
            yield* handler(request, callContextOf(context)) as AsyncIterable<unknown>;
          } catch (error) {
            throw toConnectError(error, method);
          }
        };
        break;
      default:
        // Client streams are writes (ReportBatchMetrics, UploadArtifact); browsers' fetch cannot send
        // them over HTTP/1.1 anyway.
        implementation[method.localName] = async (
          requests: AsyncIterable<unknown>,
          context: HandlerContext,
        ) => {
          authorize(context);
          // Drain nothing: the refusal comes before the first message is read.
          void requests;
          throw refuseWrite(method);
        };
    }
  }

  const handler = connectNodeAdapter({
    routes: (router) => {
      router.service(service, implementation as never);
      // connect-es answers a request body that is no valid message with INTERNAL; the sidecar's table
      // says INVALID_ARGUMENT (as on the gRPC port): INTERNAL is kept for bugs.
      router.handlers.splice(0, router.handlers.length, ...router.handlers.map(undecodableAsInvalidArgument));
    },
    connect: true,
    grpc: false,
    grpcWeb: false,
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: options.maxMessageBytes,
    contextValues: (request) => createContextValues().set(NODE_REQUEST, request as IncomingMessage),
  });
  return { prefix: `/${service.typeName}/`, handler };
}

/** connect-es' message for request bytes that do not decode (`createBinarySerialization`). */
const UNDECODABLE = 'parse binary: ';
/** connect-es' message for a stream envelope flagged compressed with no compression negotiated. */
const UNDECLARED_COMPRESSION = 'received compressed envelope, but do not know how to decompress';

/** The Connect error JSON `{code, message}` with an undecodable request turned into invalid_argument. */
function rewriteError(json: Uint8Array): Uint8Array | undefined {
  let error: { code?: string; message?: string };
  try {
    error = JSON.parse(new TextDecoder().decode(json)) as typeof error;
  } catch {
    return undefined;
  }
  const inner = (error as { error?: typeof error }).error ?? error;
  if (inner.code !== 'internal' || !inner.message) return undefined;
  if (inner.message.startsWith(UNDECODABLE))
    inner.message = `the request bytes do not decode as the method's request message (${inner.message.slice(UNDECODABLE.length)}); send a valid protobuf message`;
  else if (inner.message === UNDECLARED_COMPRESSION)
    inner.message =
      'a request message is flagged compressed, but the request names no connect-content-encoding; ' +
      'send it uncompressed or name its encoding (gzip)';
  else return undefined;
  inner.code = 'invalid_argument';
  return new TextEncoder().encode(JSON.stringify(error));
}

async function* rewriteEndStream(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    // An end-stream envelope (flag 0b10, not compressed): 1 flag byte, 4 length bytes, JSON.
    if (chunk.length > 5 && chunk[0] === 0b10) {
      const length = new DataView(chunk.buffer, chunk.byteOffset).getUint32(1);
      const rewritten = length === chunk.length - 5 ? rewriteError(chunk.subarray(5)) : undefined;
      if (rewritten) {
        const envelope = new Uint8Array(5 + rewritten.length);
        envelope[0] = 0b10;
        new DataView(envelope.buffer).setUint32(1, rewritten.length);
        envelope.set(rewritten, 5);
        yield envelope;
        continue;
      }
    }
    yield chunk;
  }
}

/** Wraps a Connect handler so that undecodable request bytes answer invalid_argument (see above). */
function undecodableAsInvalidArgument(handler: UniversalHandler): UniversalHandler {
  const wrapped = async (request: Parameters<UniversalHandler>[0]): Promise<UniversalServerResponse> => {
    // A Connect GET's base64 message that is no base64: connect-es answers a bare INTERNAL for it.
    const badBase64 = request.method === 'GET' ? undecodableBase64(request.url) : undefined;
    if (badBase64) return badBase64;
    const response = await handler(request);
    if (!response.body) return response;
    if (handler.method.methodKind !== 'unary') return { ...response, body: rewriteEndStream(response.body) };
    if (response.status !== 500) return response;
    const chunks: Uint8Array[] = [];
    for await (const chunk of response.body) chunks.push(chunk);
    const json = Buffer.concat(chunks);
    const rewritten = rewriteError(json);
    // The length of the original body no longer applies.
    response.header?.delete('content-length');
    return {
      ...response,
      status: rewritten ? 400 : response.status,
      body: (async function* () {
        yield rewritten ?? json;
      })(),
    };
  };
  return Object.assign(wrapped, handler);
}

/** The invalid_argument answer to a Connect GET whose `base64=1` message does not decode, else undefined. */
function undecodableBase64(url: string): UniversalServerResponse | undefined {
  const query = new URL(url, 'http://localhost').searchParams;
  if (query.get('base64') !== '1') return undefined;
  try {
    base64Decode(query.get('message') ?? ''); // the decoder connect-es uses, so the same rule
    return undefined;
  } catch {
    const body = new TextEncoder().encode(
      JSON.stringify({
        code: 'invalid_argument',
        message:
          'the message query parameter is not base64 (base64=1); encode the request message as base64url',
      }),
    );
    return {
      status: 400,
      header: new Headers({ 'content-type': 'application/json' }),
      body: (async function* () {
        yield body;
      })(),
    };
  }
}
