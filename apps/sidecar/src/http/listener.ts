// The sidecar's one HTTP listener (`--http ADDR`): probes (/livez, /readyz), Prometheus /metrics and,
// later, the dashboard and Connect handlers for browsers. Concerns mount routes here; none of them
// creates a server of its own, so TLS and token checks (see /work/notes/http-listener.md) apply to
// every route in one place.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// Not `import … from 'node:http'`: the ES module facade of a built-in reads every export, and
// `http.WebSocket` is a getter that loads Node's bundled undici (~8 MB of RSS). See mlflow-bridge's http.ts.
const { createServer } = process.getBuiltinModule('node:http');

/**
 * Who may call a route. `public`: anybody who reaches the port (Kubernetes' HTTP probes send no
 * token); `read`: a read-only token is enough (metrics scrapes, dashboard reads); `write`: a write token.
 */
export type HttpAccess = 'public' | 'read' | 'write';

/** A request handler: Node's own signature, so connect-node's adapter mounts as it is. */
export type HttpHandler = (request: IncomingMessage, response: ServerResponse) => void | Promise<void>;

export interface HttpRouteOptions {
  /** Default `read`. */
  access?: HttpAccess;
  /** Methods answered (default GET and HEAD); others get 405. */
  methods?: readonly string[];
}

/** What an authorizer decides for a request (the TLS/token layer plugs in here). */
export type HttpAuthDecision = { ok: true } | { ok: false; status: 401 | 403; message: string };

/** Decides whether `request` may use a route of `access`; called before every non-public route. */
export type HttpAuthorizer = (request: IncomingMessage, access: HttpAccess) => HttpAuthDecision;

export interface HttpListenerOptions {
  /** "host:port" (port 0 = any free port). */
  address: string;
  /**
   * Makes the Node server for the listener's request handler; default `http.createServer`. The TLS
   * layer passes `(handler) => https.createServer(secureOptions, handler)` (or an http2 secure server).
   */
  createServer?: (handler: (request: IncomingMessage, response: ServerResponse) => void) => Server;
  /** Token check for `read`/`write` routes; default: every route is open (loopback by default). */
  authorize?: HttpAuthorizer;
  /** A handler that threw or rejected (a bug): logged here, answered 500. */
  onError?: (error: unknown, path: string) => void;
}

interface Route {
  handler: HttpHandler;
  access: HttpAccess;
  methods: readonly string[];
}

/** The listener: register routes, then `listen()`. Routes may be added after it listens. */
export interface HttpListener {
  /** Serves exactly `path` (no query string match needed: the query is ignored for matching). */
  route(path: string, handler: HttpHandler, options?: HttpRouteOptions): void;
  /**
   * Serves every path under `prefix` (e.g. "/trainingcallbacks.v1.TrainingCallbacks/" for Connect,
   * "/ui/" for the dashboard). The longest matching prefix wins; exact routes win over prefixes.
   */
  mount(prefix: string, handler: HttpHandler, options?: HttpRouteOptions): void;
  /** Binds; resolves with "host:port" with the real port. */
  listen(): Promise<string>;
  /** The bound "host:port" (after listen()). */
  readonly address: string | undefined;
  /** Stops accepting, ends idle keep-alive sockets, waits for requests in flight up to `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

const DEFAULT_METHODS: readonly string[] = ['GET', 'HEAD'];

/** Splits "host:port" ("[::1]:8080" for IPv6). */
export function parseHostPort(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address);
  if (!match) throw new Error(`expected host:port, got "${address}"`);
  const port = Number(match[3]);
  if (port > 65535) throw new Error(`port out of range in "${address}"`);
  return { host: match[1] ?? match[2] ?? '', port };
}

export function createHttpListener(options: HttpListenerOptions): HttpListener {
  const { host, port } = parseHostPort(options.address);
  const exact = new Map<string, Route>();
  const prefixes: Array<{ prefix: string; route: Route }> = [];
  const onError = options.onError ?? ((error) => console.error('HTTP handler failed:', error));
  let bound: string | undefined;

  const find = (path: string): Route | undefined =>
    exact.get(path) ?? prefixes.find(({ prefix }) => path.startsWith(prefix))?.route;

  const handle = (request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? '/').split('?', 1)[0] ?? '/';
    const route = find(path);
    if (!route) return plain(response, 404, `no route for ${path}\n`);
    if (!route.methods.includes(request.method ?? 'GET')) {
      response.setHeader('allow', route.methods.join(', '));
      return plain(response, 405, `${request.method} is not allowed on ${path}\n`);
    }
    if (route.access !== 'public' && options.authorize) {
      const decision = options.authorize(request, route.access);
      if (!decision.ok) return plain(response, decision.status, `${decision.message}\n`);
    }
    try {
      const result = route.handler(request, response);
      if (result) result.catch((error: unknown) => failed(error, path, response));
    } catch (error) {
      failed(error, path, response);
    }
  };
  const failed = (error: unknown, path: string, response: ServerResponse) => {
    onError(error, path);
    if (!response.headersSent) plain(response, 500, 'internal error (logged by the sidecar)\n');
    else response.destroy();
  };

  const server = (options.createServer ?? ((h) => createServer(h)))(handle);
  // Probes and scrapes are short; a client that opens a socket and sends nothing must not hold it.
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;

  const add = (handler: HttpHandler, routeOptions: HttpRouteOptions = {}): Route => ({
    handler,
    access: routeOptions.access ?? 'read',
    methods: routeOptions.methods ?? DEFAULT_METHODS,
  });

  return {
    route(path, handler, routeOptions) {
      if (exact.has(path)) throw new Error(`HTTP route ${path} is registered twice`);
      exact.set(path, add(handler, routeOptions));
    },
    mount(prefix, handler, routeOptions) {
      if (!prefix.startsWith('/')) throw new Error(`HTTP mount prefix must start with "/": ${prefix}`);
      if (prefixes.some((p) => p.prefix === prefix))
        throw new Error(`HTTP prefix ${prefix} is mounted twice`);
      prefixes.push({ prefix, route: add(handler, routeOptions) });
      prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
    },
    listen() {
      return new Promise<string>((resolve, reject) => {
        const onListenError = (error: Error) => reject(error);
        server.once('error', onListenError);
        server.listen(port, host, () => {
          server.off('error', onListenError);
          const info = server.address() as AddressInfo;
          bound = info.family === 'IPv6' ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;
          resolve(bound);
        });
      });
    },
    get address() {
      return bound;
    },
    close(graceMs = 5000) {
      if (!server.listening) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.closeAllConnections();
          resolve();
        }, graceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

/**
 * A handler whose module is loaded on its first request (`load` imports it and builds the handler):
 * what only some clients call costs no memory in a sidecar they never reach. A failed load answers
 * that request as a failed handler (500, logged) and is tried again on the next one.
 */
export function loadOnFirstRequest(load: () => Promise<HttpHandler>): HttpHandler {
  let loading: Promise<HttpHandler> | undefined;
  return async (request, response) => {
    loading ??= load().catch((error: unknown) => {
      loading = undefined;
      throw error;
    });
    await (await loading)(request, response);
  };
}

/** Answers a short text/plain body (probes, errors). */
export function plain(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  response.end(body);
}
