// The client's HTTP transport: Node's own `node:http` / `node:https` with one keep-alive agent per client
// and protocol. No HTTP library on purpose: the sidecar runs this client in a worker thread of its own,
// and a library (undici: its modules, and a WASM parser compiled per isolate) costs that thread memory
// Node's built-in client does not.
import type { ClientRequest, Agent as HttpAgent, IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';

// Not `import … from 'node:http'`: the ES module facade of a built-in reads every export, and
// `http.WebSocket` is a getter that loads Node's bundled undici (~8 MB of RSS per isolate). The
// CommonJS exports only cost what is read.
const { Agent: HttpPlainAgent, request: httpRequest } = process.getBuiltinModule('node:http');
const { Agent: HttpsAgent, request: httpsRequest } = process.getBuiltinModule('node:https');

/** An idle pooled connection is closed after this long (under the 5 s keep-alive of uvicorn / gunicorn). */
const KEEP_ALIVE_MS = 4_000;
/** Time limit of establishing a connection (TCP, and the TLS handshake for https). */
const CONNECT_TIMEOUT_MS = 10_000;
/** Connections per origin and agent. */
const MAX_SOCKETS = 16;

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface HttpSendOptions {
  method: 'GET' | 'POST' | 'PUT';
  headers: Record<string, string>;
  /** A string is sent with its `content-length`; a stream is piped (the caller sets `content-length`). */
  body?: string | Readable | undefined;
  /** Time limit of the whole exchange, answer body included: fails with code `REQUEST_TIMEOUT`. */
  timeoutMs?: number | undefined;
  /** Time limit of a pause (no byte sent or received) once connected: fails with code `IDLE_TIMEOUT`. */
  idleMs?: number | undefined;
}

/** A failure of the transport itself; `code` as Node's socket errors have one. */
export type TransportFailure = Error & { code: string };

function failure(code: string, message: string): TransportFailure {
  return Object.assign(new Error(message), { code });
}

/** Closes a pooled connection after `KEEP_ALIVE_MS` without a request (the agent's default keeps it for ever). */
function closeIdleConnections<A extends HttpAgent>(agent: A): A {
  const keep = agent.keepSocketAlive.bind(agent) as unknown as (socket: Socket) => boolean;
  agent.keepSocketAlive = (socket) => {
    const kept = keep(socket as Socket);
    if (kept) (socket as Socket).setTimeout(KEEP_ALIVE_MS);
    return kept;
  };
  return agent;
}

export interface HttpTransport {
  send(url: string, options: HttpSendOptions): Promise<HttpAnswer>;
  /** Refuses new requests, waits for those in flight, then closes every pooled connection. */
  close(): Promise<void>;
}

/** `tls`: options of `tls.connect` (CA, client certificate and key, `rejectUnauthorized`) for https URLs. */
export function createHttpTransport(tls: Record<string, unknown>): HttpTransport {
  const pool = { keepAlive: true, maxSockets: MAX_SOCKETS };
  const plain = closeIdleConnections(new HttpPlainAgent(pool));
  const secure = closeIdleConnections(new HttpsAgent({ ...pool, ...tls }));
  const inFlight = new Set<Promise<unknown>>();
  let closed = false;

  function exchange(url: URL, options: HttpSendOptions): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const isHttps = url.protocol === 'https:';
      let req: ClientRequest;
      try {
        req = (isHttps ? httpsRequest : httpRequest)(url, {
          method: options.method,
          headers:
            typeof options.body === 'string'
              ? { ...options.headers, 'content-length': String(Buffer.byteLength(options.body)) }
              : options.headers,
          agent: isHttps ? secure : plain,
        });
      } catch (e) {
        reject(e);
        return;
      }
      const body = options.body;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let connectTimer: NodeJS.Timeout | undefined;
      const settle = (error: Error | undefined, answer?: HttpAnswer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(connectTimer);
        if (body !== undefined && typeof body !== 'string') body.unpipe(req);
        if (error) {
          req.destroy();
          reject(error);
          return;
        }
        // Answered before the whole body left (an early refusal): the connection cannot be reused.
        if (!req.writableEnded) req.destroy();
        resolve(answer!);
      };

      if (options.timeoutMs !== undefined) {
        timer = setTimeout(
          () => settle(failure('REQUEST_TIMEOUT', `no complete answer within ${options.timeoutMs} ms`)),
          options.timeoutMs,
        );
      }
      // Socket inactivity once connected (0: none; a reused connection keeps no earlier setting).
      req.setTimeout(options.idleMs ?? 0);
      if (options.idleMs !== undefined) {
        req.on('timeout', () =>
          settle(failure('IDLE_TIMEOUT', `nothing sent or received for ${options.idleMs} ms`)),
        );
      }
      req.once('socket', (socket: Socket) => {
        if (!socket.connecting) return;
        connectTimer = setTimeout(
          () =>
            settle(
              failure('CONNECT_TIMEOUT', `no connection to ${url.host} within ${CONNECT_TIMEOUT_MS} ms`),
            ),
          CONNECT_TIMEOUT_MS,
        );
        const secured = (socket as TLSSocket).encrypted === true;
        socket.once(secured ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer));
      });
      req.on('error', (e) => settle(e));
      let answered = false;
      req.on('close', () => {
        if (!answered) settle(failure('ECONNRESET', 'socket hang up'));
      });
      req.on('response', (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          settle(undefined, {
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', (e) => settle(e));
        res.on('close', () => {
          if (!res.complete)
            settle(failure('ECONNRESET', 'connection closed before the whole answer arrived'));
        });
      });

      if (body === undefined) req.end();
      else if (typeof body === 'string') req.end(body);
      else {
        body.on('error', (e) => settle(e));
        body.pipe(req);
      }
    });
  }

  return {
    async send(url, options) {
      if (closed) throw failure('CLIENT_CLOSED', 'the MLflow client was closed');
      const p = exchange(new URL(url), options);
      inFlight.add(p);
      try {
        return await p;
      } finally {
        inFlight.delete(p);
      }
    },
    async close() {
      closed = true;
      await Promise.allSettled([...inFlight]);
      plain.destroy();
      secure.destroy();
    },
  };
}
