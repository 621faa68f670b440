// Every mode against real sockets on loopback: an echo server behind the proxy, raw TCP clients in front.
import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTcpFaultProxy } from './tcp-fault-proxy.ts';

interface EchoServer extends AsyncDisposable {
  port: number;
  /** Connections the target accepted. */
  readonly connections: number;
  /** Connections open on the target's side now. */
  readonly open: number;
  /** Every byte the target received, as text. */
  readonly received: string;
}

async function startEchoServer(): Promise<EchoServer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  let received = '';
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
      socket.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('echo server has no TCP address');
  return {
    port: address.port,
    get connections() {
      return connections;
    },
    get open() {
      return sockets.size;
    },
    get received() {
      return received;
    },
    async [Symbol.asyncDispose]() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Outcome {
  /** Everything received before the close. */
  data: string;
  /** The error code the connection ended with (ECONNREFUSED, ECONNRESET…), if any. */
  error: string | undefined;
}

/** A raw TCP client connection; `closed` resolves when the connection is gone, for whatever reason. */
function dial(port: number) {
  const socket = connect(port, '127.0.0.1');
  let data = '';
  let error: string | undefined;
  let isClosed = false;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    data += chunk;
  });
  socket.on('error', (e: NodeJS.ErrnoException) => {
    error = e.code;
  });
  const closed = new Promise<Outcome>((resolve) =>
    socket.on('close', () => {
      isClosed = true;
      resolve({ data, error });
    }),
  );
  return {
    socket,
    closed,
    get data() {
      return data;
    },
    get isClosed() {
      return isClosed;
    },
  };
}

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not reached in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends `text` through a new connection and expects it echoed back. */
async function roundTrip(port: number, text: string): Promise<void> {
  const conn = dial(port);
  conn.socket.write(text);
  await until(() => conn.data === text, `echo of "${text}"`);
  conn.socket.end();
  await conn.closed;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(mode?: Parameters<typeof startTcpFaultProxy>[1]) {
  const target = await startEchoServer();
  cleanups.push(async () => await target[Symbol.asyncDispose]());
  const proxy = await startTcpFaultProxy(`127.0.0.1:${target.port}`, mode);
  cleanups.push(() => proxy.close());
  return { target, proxy };
}

describe('pass', () => {
  it('forwards bytes both ways and says where it listens', async () => {
    const { target, proxy } = await setup();
    expect(proxy.mode).toBe('pass');
    expect(proxy.address).toBe(`127.0.0.1:${proxy.port}`);
    expect(proxy.url).toBe(`http://127.0.0.1:${proxy.port}`);
    await roundTrip(proxy.port, 'hello');
    await roundTrip(proxy.port, 'again');
    expect(proxy.accepted).toBe(2);
    expect(target.connections).toBe(2);
    expect(target.received).toBe('helloagain');
  });

  it('forwards a large stream whole, in order', async () => {
    const { proxy } = await setup();
    const text = 'x'.repeat(1 << 20).replace(/x/g, (_, i: number) => String(i % 10));
    await roundTrip(proxy.port, text);
  });

  it('takes a URL target: url keeps its scheme, credentials and path with the proxy’s host and port', async () => {
    const target = await startEchoServer();
    cleanups.push(async () => await target[Symbol.asyncDispose]());
    await using proxy = await startTcpFaultProxy(`http://user:secret@127.0.0.1:${target.port}/prefix/`);
    expect(proxy.url).toBe(`http://user:secret@127.0.0.1:${proxy.port}/prefix`);
    await roundTrip(proxy.port, 'via url');
    expect(target.received).toBe('via url');
  });

  it('refuses a target that is neither host:port nor a URL', async () => {
    await expect(startTcpFaultProxy('no-port')).rejects.toThrow(/neither "host:port" nor a URL/);
    await expect(startTcpFaultProxy('unix:/tmp/x.sock')).rejects.toThrow(/neither/);
  });

  it('closes the client’s connection when the target is down', async () => {
    // Port 1: nothing listens there (a port freed by a closed server could be taken again meanwhile).
    await using proxy = await startTcpFaultProxy('127.0.0.1:1');
    const conn = dial(proxy.port);
    expect(await conn.closed).toEqual({ data: '', error: undefined });
    expect(proxy.accepted).toBe(1);
  });
});

describe('refuse', () => {
  it('stops listening (ECONNREFUSED), then listens on the same port again', async () => {
    const { target, proxy } = await setup();
    const port = proxy.port;
    await proxy.setMode('refuse');
    expect(proxy.mode).toBe('refuse');
    expect(await dial(port).closed).toEqual({ data: '', error: 'ECONNREFUSED' });
    expect(proxy.accepted).toBe(0);
    await proxy.setMode('pass');
    expect(proxy.port).toBe(port);
    await roundTrip(port, 'back');
    expect(target.connections).toBe(1);
  });

  it('can be the starting mode', async () => {
    const { proxy } = await setup({ mode: 'refuse' });
    expect(proxy.mode).toBe('refuse');
    expect((await dial(proxy.port).closed).error).toBe('ECONNREFUSED');
    await proxy.setMode('pass');
    await roundTrip(proxy.port, 'late');
  });
});

describe('connections accepted and failed', () => {
  it('reset: accepted, then ECONNRESET before any byte; the target never sees it', async () => {
    const { target, proxy } = await setup({ mode: 'reset' });
    const conn = dial(proxy.port);
    conn.socket.write('lost');
    expect(await conn.closed).toEqual({ data: '', error: 'ECONNRESET' });
    expect(proxy.accepted).toBe(1);
    expect(target.connections).toBe(0);
  });

  it('hang-up: accepted, then closed cleanly without an answer; the target never sees it', async () => {
    const { target, proxy } = await setup({ mode: 'hang-up' });
    for (let i = 0; i < 3; i++) expect(await dial(proxy.port).closed).toEqual({ data: '', error: undefined });
    expect(proxy.accepted).toBe(3);
    expect(target.connections).toBe(0);
  });

  it('blackhole: accepted, bytes go nowhere, nothing comes back; leaving the mode cuts the connection', async () => {
    const { target, proxy } = await setup();
    await proxy.setMode('blackhole');
    const conn = dial(proxy.port);
    conn.socket.write('anyone?');
    await until(() => proxy.accepted === 1, 'accepted');
    await sleep(200);
    expect(conn.isClosed).toBe(false);
    expect(conn.data).toBe('');
    expect(target.connections).toBe(0);
    await proxy.setMode('pass');
    expect(await conn.closed).toEqual({ data: '', error: undefined });
    await roundTrip(proxy.port, 'now');
  });

  it('swallow-responses: the target gets every byte, the client gets none of the answer', async () => {
    const { target, proxy } = await setup({ mode: 'swallow-responses' });
    const conn = dial(proxy.port);
    conn.socket.write('request');
    await until(() => target.received === 'request', 'request at the target');
    await sleep(100);
    expect(conn.data).toBe('');
    expect(conn.isClosed).toBe(false);
    await proxy.setMode('pass');
    await conn.closed;
    await roundTrip(proxy.port, 'answered');
  });
});

describe('cutting connections', () => {
  it('dropConnections cuts live connections mid-stream on both sides; new ones pass', async () => {
    const { target, proxy } = await setup();
    const conns = [dial(proxy.port), dial(proxy.port)];
    for (const [i, conn] of conns.entries()) conn.socket.write(`part ${i}`);
    await until(() => conns.every((c, i) => c.data === `part ${i}`), 'first parts echoed');
    expect(target.open).toBe(2);
    proxy.dropConnections();
    for (const [i, conn] of conns.entries()) expect((await conn.closed).data).toBe(`part ${i}`);
    await until(() => target.open === 0, 'target side closed');
    expect(proxy.mode).toBe('pass');
    await roundTrip(proxy.port, 'fresh');
  });

  it('every change of mode cuts open connections; setting the current mode changes nothing', async () => {
    const { proxy } = await setup();
    const conn = dial(proxy.port);
    conn.socket.write('a');
    await until(() => conn.data === 'a', 'echo');
    await proxy.setMode('pass');
    conn.socket.write('b');
    await until(() => conn.data === 'ab', 'echo on the same connection');
    await proxy.setMode('swallow-responses');
    expect(await conn.closed).toEqual({ data: 'ab', error: undefined });
  });

  it('downFor: the fault for a while, then pass again', async () => {
    const { proxy } = await setup();
    const down = proxy.downFor(300);
    await until(() => proxy.mode === 'refuse', 'refusing');
    expect((await dial(proxy.port).closed).error).toBe('ECONNREFUSED');
    await down;
    expect(proxy.mode).toBe('pass');
    await roundTrip(proxy.port, 'up');

    const reset = proxy.downFor(200, 'reset');
    await until(() => proxy.mode === 'reset', 'resetting');
    expect((await dial(proxy.port).closed).error).toBe('ECONNRESET');
    await reset;
    await roundTrip(proxy.port, 'up again');
  });

  it('mode changes apply in order, even unawaited', async () => {
    const { proxy } = await setup();
    const changes = [proxy.setMode('refuse'), proxy.setMode('pass'), proxy.setMode('refuse')];
    await Promise.all(changes);
    expect(proxy.mode).toBe('refuse');
    expect((await dial(proxy.port).closed).error).toBe('ECONNREFUSED');
  });

  it('close stops listening and cuts every connection; it is idempotent, later mode changes do nothing', async () => {
    const target = await startEchoServer();
    cleanups.push(async () => await target[Symbol.asyncDispose]());
    let port: number;
    let conn: ReturnType<typeof dial>;
    {
      await using proxy = await startTcpFaultProxy(`127.0.0.1:${target.port}`);
      port = proxy.port;
      conn = dial(port);
      conn.socket.write('x');
      await until(() => conn.data === 'x', 'echo');
    }
    await conn.closed;
    expect((await dial(port).closed).error).toBe('ECONNREFUSED');

    const proxy = await startTcpFaultProxy(`127.0.0.1:${target.port}`);
    await proxy.close();
    await proxy.close();
    await proxy.setMode('pass');
    expect((await dial(proxy.port).closed).error).toBe('ECONNREFUSED');
  });
});
