// A real TCP proxy (Node `net`) on a free loopback port, to make the network between a client and a
// real server fail on purpose, on command.
import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * What the proxy does with connections:
 * - `pass`: forwards bytes both ways;
 * - `refuse`: stops listening, so new connections get ECONNREFUSED (the port is listened on again on
 *   leaving this mode);
 * - `reset`: accepts and resets new connections at once (RST: the peer sees ECONNRESET);
 * - `hang-up`: accepts and closes new connections at once (FIN, or RST if the peer's bytes had already
 *   arrived: the peer sees the connection end before any answer);
 * - `blackhole`: accepts and never answers nor forwards (the peer times out);
 * - `swallow-responses`: forwards the peer's bytes to the target but drops every byte of the answers, so
 *   the target acts on a request whose answer never arrives.
 *
 * Every change of mode cuts every open connection, so that the next attempt starts afresh in the new mode.
 */
export type FaultMode = 'pass' | 'refuse' | 'reset' | 'hang-up' | 'blackhole' | 'swallow-responses';

/** Options of {@link startTcpFaultProxy}. */
export interface TcpFaultProxyOptions {
  /** Mode to start in; default `pass`. */
  mode?: FaultMode;
}

/** A running proxy; `close()` or dispose it. */
export interface TcpFaultProxy extends AsyncDisposable {
  /** `127.0.0.1:<port>`, for gRPC and other `host:port` clients. */
  readonly address: string;
  /** The target URL with the proxy's host and port (path, query and credentials kept); `http://127.0.0.1:<port>` for a `host:port` target. */
  readonly url: string;
  /** The proxy's loopback port (kept across `refuse`). */
  readonly port: number;
  /** The current mode. */
  readonly mode: FaultMode;
  /** Connections accepted so far (none are accepted while refusing). */
  readonly accepted: number;
  /** Switches mode (a no-op for the current one) and cuts every open connection; resolves once in effect. */
  setMode(mode: FaultMode): Promise<void>;
  /** `mode` (default `refuse`) for `ms`, then `pass` again; resolves once back to `pass`. */
  downFor(ms: number, mode?: Exclude<FaultMode, 'pass'>): Promise<void>;
  /** Destroys every open connection, both sides, now (the mode stays). */
  dropConnections(): void;
  /** Stops listening and destroys every connection; idempotent. */
  close(): Promise<void>;
}

function parseTarget(target: string): { host: string; port: number; url: URL } {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    const url = new URL(target);
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port, url };
  }
  const colon = target.lastIndexOf(':');
  const port = Number(target.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65_535) {
    throw new Error(`fault proxy target "${target}" is neither "host:port" nor a URL`);
  }
  const host = target.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return { host, port, url: new URL(`http://${target}`) };
}

/**
 * Starts a TCP proxy on a free loopback port in front of `target`: `host:port` (e.g. a gRPC server) or a
 * URL (`http://host:port/prefix`; only its host and port are used to connect).
 */
export async function startTcpFaultProxy(
  target: string,
  options: TcpFaultProxyOptions = {},
): Promise<TcpFaultProxy> {
  const { host, port: targetPort, url: targetUrl } = parseTarget(target);
  let mode: FaultMode = 'pass';
  let accepted = 0;
  let closed = false;
  let port = 0;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  };

  const server: Server = createServer((client) => {
    accepted++;
    track(client);
    switch (mode) {
      case 'refuse': // a connection that raced the listener's close
      case 'reset':
        client.resetAndDestroy();
        return;
      case 'hang-up':
        client.destroy();
        return;
      case 'blackhole':
        return; // never read, never answer
    }
    const swallow = mode === 'swallow-responses';
    const upstream = connect(targetPort, host);
    track(upstream);
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    if (swallow) upstream.resume();
    else upstream.pipe(client);
  });

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        const address = server.address();
        if (address !== null && typeof address === 'object') port = address.port;
        resolve();
      });
    });
  const unlisten = () =>
    new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  const dropConnections = () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };

  const apply = async (next: FaultMode) => {
    if (closed || next === mode) return;
    const previous = mode;
    mode = next;
    if (next === 'refuse') {
      const closing = unlisten();
      dropConnections();
      await closing;
    } else {
      dropConnections();
      if (previous === 'refuse') await listen();
    }
  };
  // Mode changes run one after the other, so that listening and closing never overlap.
  let changes: Promise<void> = Promise.resolve();
  const setMode = (next: FaultMode) => {
    const change = changes.then(() => apply(next));
    changes = change.catch(() => undefined);
    return change;
  };

  await listen();
  if (options.mode !== undefined) await setMode(options.mode);
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);

  const proxy: TcpFaultProxy = {
    address: `127.0.0.1:${port}`,
    url: url.href.replace(/\/$/, ''),
    port,
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    setMode,
    async downFor(ms, faultMode = 'refuse') {
      await setMode(faultMode);
      await new Promise((resolve) => setTimeout(resolve, ms));
      await setMode('pass');
    },
    dropConnections,
    async close() {
      await changes;
      closed = true;
      mode = 'reset';
      const closing = unlisten();
      dropConnections();
      await closing;
    },
    [Symbol.asyncDispose]: () => proxy.close(),
  };
  return proxy;
}
