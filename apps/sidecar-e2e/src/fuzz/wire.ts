// A raw grpc-js client that sends request *bytes*, not messages: the fuzz suite encodes requests
// itself (so it can also send truncated, mutated or random bytes the typed client would never
// produce) and decodes the answers itself. One home for every call the suite makes on the wire.
import { Client, credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { cancelCall } from '@training-callbacks/grpc-adapter';
import { parsePrometheusText, sample } from '../prometheus-text.ts';

/** What one call came back with: the response bytes, or the status the sidecar (or the channel) gave. */
export type Outcome =
  | { readonly ok: true; readonly bytes: Buffer }
  | { readonly ok: false; readonly code: number; readonly codeName: string; readonly message: string };

/** How a client stream is sent: every message, or cut (cancelled) after `cutAfter` messages. */
export interface StreamPlan {
  readonly messages: readonly Uint8Array[];
  /** Cancel the call after this many messages instead of ending it (a stream cut mid-way). */
  readonly cutAfter?: number;
}

const identity = (b: Buffer | Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const CALL_DEADLINE_MS = 15_000;

function outcome(error: ServiceError | null, bytes: Buffer | undefined): Outcome {
  if (error) {
    return {
      ok: false,
      code: error.code,
      codeName: status[error.code] ?? String(error.code),
      message: error.details,
    };
  }
  return { ok: true, bytes: bytes ?? Buffer.alloc(0) };
}

/** A channel to the sidecar that speaks bytes. */
export class RawClient {
  readonly #client: Client;

  constructor(address: string) {
    this.#client = new Client(address, credentials.createInsecure(), {
      // The suite wants the sidecar's own limits to answer, not the client's defaults.
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    });
  }

  /** One unary call of `path` (e.g. "/trainingcallbacks.v1.TrainingCallbacks/GetJob") with raw bytes. */
  unary(path: string, request: Uint8Array): Promise<Outcome> {
    return new Promise((resolve) => {
      this.#client.makeUnaryRequest(
        path,
        identity,
        identity,
        request,
        new Metadata(),
        { deadline: Date.now() + CALL_DEADLINE_MS },
        (error, response) => resolve(outcome(error, response)),
      );
    });
  }

  /** One client-streaming call; a plan with `cutAfter` cancels the call mid-way. */
  clientStream(path: string, plan: StreamPlan): Promise<Outcome> {
    return new Promise((resolve) => {
      const call = this.#client.makeClientStreamRequest(
        path,
        identity,
        identity,
        new Metadata(),
        { deadline: Date.now() + CALL_DEADLINE_MS },
        (error, response) => resolve(outcome(error, response)),
      );
      void (async () => {
        const count = plan.cutAfter === undefined ? plan.messages.length : plan.cutAfter;
        for (const message of plan.messages.slice(0, count)) {
          if (!call.write(message)) await new Promise((r) => call.once('drain', r));
        }
        if (plan.cutAfter === undefined) call.end();
        // cancelCall: a bare cancel() right after the writes may never reach the sidecar (grpc-js).
        else cancelCall(call);
      })();
    });
  }

  /**
   * One server-streaming call, judged by its first message: the watch streams send one at once (a
   * heartbeat) and never end, so the call is cancelled after it (or after `waitMs` without one).
   */
  serverStreamFirst(path: string, request: Uint8Array, waitMs = 5_000): Promise<Outcome> {
    return new Promise((resolve) => {
      const call = this.#client.makeServerStreamRequest(path, identity, identity, request, new Metadata(), {
        deadline: Date.now() + CALL_DEADLINE_MS,
      });
      let settled = false;
      const settle = (result: Outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
        cancelCall(call);
      };
      const timer = setTimeout(
        () =>
          settle({ ok: false, code: -1, codeName: 'NO_MESSAGE', message: `no message within ${waitMs} ms` }),
        waitMs,
      );
      call.on('data', (bytes: Buffer) => settle({ ok: true, bytes }));
      call.on('error', (error: ServiceError) => settle(outcome(error, undefined)));
      call.on('end', () => settle({ ok: true, bytes: Buffer.alloc(0) }));
    });
  }

  close(): void {
    this.#client.close();
  }
}

/** grpc.health.v1.HealthCheckRequest{service} encoded by hand (field 1, a string). */
function healthRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  return name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, name.length]), name]);
}

/** The serving status grpc.health.v1 reports for `service` ("" = the whole server): 1 is SERVING. */
export async function healthStatus(client: RawClient, service = ''): Promise<number | string> {
  const answer = await client.unary('/grpc.health.v1.Health/Check', healthRequest(service));
  if (!answer.ok) return `${answer.codeName}: ${answer.message}`;
  // HealthCheckResponse{status = 1}: tag 0x08, varint; an empty message is status 0 (UNKNOWN).
  return answer.bytes.length >= 2 && answer.bytes[0] === 0x08 ? answer.bytes[1]! : 0;
}

/**
 * How many handlers of `service`/`method` are running in the sidecar now, from its /metrics on the
 * HTTP listener at `httpAddress` (rpc_handlers_in_flight: a handler counts until it has finished, also
 * after its client cancelled).
 */
export async function handlersInFlight(
  httpAddress: string,
  service: string,
  method: string,
): Promise<number> {
  const text = await (await fetch(`http://${httpAddress}/metrics`)).text();
  return sample(parsePrometheusText(text), 'training_callbacks_rpc_handlers_in_flight', { service, method });
}
