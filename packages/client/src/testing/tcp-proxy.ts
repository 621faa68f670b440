// A real TCP proxy (Node `net`) between the client and a real sidecar, to make the network fail on
// purpose: refuse connections (UNAVAILABLE), stall them (DEADLINE_EXCEEDED before the sidecar sees
// the call) or swallow the sidecar's answers (DEADLINE_EXCEEDED after the sidecar committed).
import { createConnection, createServer, type Socket } from 'node:net';

/** What the proxy does with connections. */
export type ProxyMode = 'forward' | 'refuse' | 'stall' | 'swallow-responses';

/** A running proxy; dispose to close it. */
export interface TcpProxy extends AsyncDisposable {
  /** "127.0.0.1:<port>" to give the client. */
  readonly address: string;
  /** Current mode. */
  readonly mode: ProxyMode;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Switches mode; every open connection is cut so that the next call starts afresh. */
  setMode(mode: ProxyMode): void;
}

/** Starts a proxy on a free loopback port forwarding to `target` ("host:port"). */
export async function startTcpProxy(target: string, mode: ProxyMode = 'forward'): Promise<TcpProxy> {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(':')),
    Number(target.slice(target.lastIndexOf(':') + 1)),
  ];
  const open = new Set<Socket>();
  let current = mode;
  let accepted = 0;
  const server = createServer((client) => {
    accepted++;
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => undefined);
    if (current === 'refuse') {
      client.destroy();
      return;
    }
    if (current === 'stall') return; // hold the bytes; never answer
    const upstream = createConnection({ host, port });
    open.add(upstream);
    upstream.on('close', () => {
      open.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (current !== 'swallow-responses') client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address');
  return {
    address: `127.0.0.1:${address.port}`,
    get mode() {
      return current;
    },
    get accepted() {
      return accepted;
    },
    setMode(next) {
      current = next;
      for (const socket of open) socket.destroy();
      open.clear();
    },
    async [Symbol.asyncDispose]() {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
