import type { Metadata, ServiceError, StatusObject } from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';

export { Status };

/** A gRPC status code, e.g. `Status.INVALID_ARGUMENT`. */
export type StatusCode = (typeof Status)[keyof typeof Status];

/**
 * The one error type of the workspace: a message for a human plus the gRPC status it travels as.
 * Handlers throw it; the server adapter turns it (and anything else thrown) into a wire status in
 * exactly one place, {@link toStatusObject}. On the client side, failed calls reject with it too.
 */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  readonly code: StatusCode;
  readonly metadata: Metadata | undefined;

  constructor(code: StatusCode, message: string, options?: { cause?: unknown; metadata?: Metadata }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.metadata = options?.metadata;
  }

  /** The status name, e.g. "INVALID_ARGUMENT". */
  get codeName(): string {
    return Status[this.code] ?? String(this.code);
  }

  /** Normalises anything thrown: RpcErrors and grpc-js ServiceErrors keep their code, the rest is INTERNAL. */
  static from(error: unknown, fallback: StatusCode = Status.INTERNAL): RpcError {
    if (error instanceof RpcError) return error;
    if (isServiceError(error)) {
      return new RpcError(error.code as StatusCode, error.details || error.message, {
        cause: error,
        metadata: error.metadata,
      });
    }
    const message = error instanceof Error ? error.message : String(error);
    return new RpcError(fallback, message, { cause: error });
  }
}

function isServiceError(error: unknown): error is ServiceError {
  return (
    error instanceof Error &&
    typeof (error as Partial<ServiceError>).code === 'number' &&
    'details' in error &&
    'metadata' in error
  );
}

/**
 * Turns an error that is not an RpcError into one, or returns undefined when it does not know it (a
 * bug). The server's table of known failures (a full disk, a locked database, …) is one of these.
 */
export type ErrorMapper = (error: unknown) => RpcError | undefined;

/**
 * The single edge where a thrown value becomes a gRPC status. RpcErrors travel as they are; other
 * errors go through `mapError` (the server's failure table); what it does not know is a bug: it
 * travels as INTERNAL without its message (which may hold internals) and is reported through
 * `onInternal` so the server can log it.
 */
export function toStatusObject(
  error: unknown,
  onInternal: (error: unknown) => void,
  mapError?: ErrorMapper,
): Partial<StatusObject> & { code: StatusCode; details: string } {
  const known = error instanceof RpcError ? error : mapError?.(error);
  if (known) {
    const out = { code: known.code, details: known.message };
    return known.metadata ? { ...out, metadata: known.metadata } : out;
  }
  onInternal(error);
  return { code: Status.INTERNAL, details: 'internal error in the sidecar; see its log' };
}
