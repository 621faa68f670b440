import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * How the proxy treats connections:
 * - `pass`: forwards bytes both ways;
 * - `refuse`: stops listening, so new connections get ECONNREFUSED (open ones are dropped);
 * - `reset`: accepts and immediately destroys new connections (open ones are dropped);
 * - `blackhole`: accepts and never answers (the client times out).
 */
export type FaultMode = 'pass' | 'refuse' | 'reset' | 'blackhole';

export interface TcpFaultProxy extends AsyncDisposable {
  url: string;
  port: number;
  mode(): FaultMode;
  setMode(mode: FaultMode): Promise<void>;
  /** `mode` for `ms`, then `pass` again. Resolves when back to `pass`. */
  downFor(ms: number, mode?: Exclude<FaultMode, 'pass'>): Promise<void>;
  /** Destroys every open connection (both sides). */
  dropConnections(): void;
  /** Connections accepted so far. */
  accepted(): number;
  close(): Promise<void>;
}

/** A TCP proxy on a free loopback port in front of `target` (`http://host:port`), for fault tests. */
export async function startTcpFaultProxy(target: string): Promise<TcpFaultProxy> {
  const t = new URL(target);
  const targetPort = Number(t.port || 80);
  let mode: FaultMode = 'pass';
  let accepted = 0;
  const sockets = new Set<Socket>();
  let port = 0;

  const server: Server = createServer((client) => {
    accepted++;
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (mode === 'reset' || mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    if (mode === 'blackhole') return;
    const upstream = connect(targetPort, t.hostname);
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });

  const listen = () =>
    new Promise<void>((ok, ko) => {
      server.once('error', ko);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', ko);
        const a = server.address();
        port = typeof a === 'object' && a ? a.port : port;
        ok();
      });
    });
  const unlisten = () => new Promise<void>((ok) => (server.listening ? server.close(() => ok()) : ok()));
  await listen();

  const dropConnections = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };

  const proxy: TcpFaultProxy = {
    url: `http://127.0.0.1:${port}`,
    port,
    mode: () => mode,
    async setMode(next) {
      if (next === mode) return;
      const prev = mode;
      mode = next;
      if (next !== 'pass') dropConnections();
      if (next === 'refuse') {
        const closing = unlisten();
        dropConnections();
        await closing;
      } else if (prev === 'refuse') await listen();
    },
    async downFor(ms, m = 'refuse') {
      await proxy.setMode(m);
      await new Promise((r) => setTimeout(r, ms));
      await proxy.setMode('pass');
    },
    dropConnections,
    accepted: () => accepted,
    async close() {
      mode = 'reset';
      dropConnections();
      await unlisten();
    },
    [Symbol.asyncDispose]: () => proxy.close(),
  };
  return proxy;
}
