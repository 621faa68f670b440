// The client's transport (node:http) against small local servers that misbehave on purpose: what each
// failure becomes (kind, retryable), time limits, early answers, and close().
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMlflowClient, type MlflowClient } from './client.ts';
import type { MlflowError } from './errors.ts';

let dir: string;
let server: Server | undefined;
const sockets = new Set<Socket>();
const clients: MlflowClient[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bridge-http-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  server = undefined;
  sockets.clear();
});

/** A local server answering with `handler`; returns its URL. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer(handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok) => server!.listen(0, '127.0.0.1', ok));
  const a = server.address();
  return `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
}

function client(
  trackingUri: string,
  extra: { requestTimeoutMs?: number; artifactIdleTimeoutMs?: number } = {},
) {
  const c = createMlflowClient({ trackingUri, ...extra });
  clients.push(c);
  return c;
}

const artifactUri = 'mlflow-artifacts:/1/abc/artifacts';

describe('the HTTP transport', () => {
  it('a JSON call without an answer within requestTimeoutMs is a retryable timeout', async () => {
    const url = await serve(() => undefined); // never answers
    const started = Date.now();
    const e = (await client(url, { requestTimeoutMs: 300 })
      .getRun('r')
      .catch((x) => x)) as MlflowError;
    expect(e).toMatchObject({ kind: 'timeout', retryable: true, method: 'GET', endpoint: 'runs/get' });
    expect(e.message).toMatch(/timed out/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('the time limit covers the answer body too', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"run":'); // and nothing more
    });
    const e = (await client(url, { requestTimeoutMs: 300 })
      .getRun('r')
      .catch((x) => x)) as MlflowError;
    expect(e).toMatchObject({ kind: 'timeout', retryable: true });
  });

  it('a connection cut in the middle of the answer is a retryable network error', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"run":');
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const e = (await client(url)
      .getRun('r')
      .catch((x) => x)) as MlflowError;
    expect(e).toMatchObject({ kind: 'network', retryable: true });
  });

  it('sends JSON bodies with their length and the NaN/Infinity encoding, and reads Retry-After', async () => {
    const seen: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
    const url = await serve((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
        res.writeHead(429, { 'retry-after': '7', 'content-type': 'application/json' });
        res.end('{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}');
      });
    });
    const e = (await client(url)
      .logBatch('r', { metrics: [{ key: 'k', value: Number.NaN, timestamp: 1, step: 0 }] })
      .catch((x) => x)) as MlflowError;
    expect(e).toMatchObject({
      kind: 'http',
      retryable: true,
      status: 429,
      errorCode: 'REQUEST_LIMIT_EXCEEDED',
      retryAfterMs: 7000,
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['content-type']).toBe('application/json');
    expect(Number(seen[0]!.headers['content-length'])).toBe(Buffer.byteLength(seen[0]!.body));
    expect(JSON.parse(seen[0]!.body).metrics[0].value).toBe('NaN');
  });

  it('reuses one connection for calls one after the other', async () => {
    const url = await serve((_req, res) => res.writeHead(200).end('3.0.0'));
    const c = client(url);
    let connections = 0;
    server!.on('connection', () => connections++);
    for (let i = 0; i < 5; i++) expect(await c.version()).toBe('3.0.0');
    expect(connections).toBe(1);
  });

  it('close() ends the pooled connections and refuses later calls', async () => {
    const url = await serve((_req, res) => res.writeHead(200).end('3.0.0'));
    const c = createMlflowClient({ trackingUri: url });
    await c.version();
    expect(sockets.size).toBe(1);
    await c.close();
    const deadline = Date.now() + 2000;
    while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(sockets.size).toBe(0);
    const e = (await c.version().catch((x) => x)) as MlflowError;
    expect(e).toMatchObject({ kind: 'network', retryable: true });
  });

  it('close() lets a request in flight finish first', async () => {
    const url = await serve((_req, res) => setTimeout(() => res.writeHead(200).end('3.0.0'), 200));
    const c = createMlflowClient({ trackingUri: url });
    const version = c.version();
    await new Promise((r) => setTimeout(r, 50));
    await c.close();
    expect(await version).toBe('3.0.0');
  });

  it('an artifact upload that stalls for artifactIdleTimeoutMs is a retryable timeout', async () => {
    const file = join(dir, 'stall.bin');
    await writeFile(file, Buffer.alloc(64 * 1024, 1));
    const url = await serve((req) => req.resume()); // reads everything, never answers
    const started = Date.now();
    const e = (await client(url, { artifactIdleTimeoutMs: 300 })
      .uploadArtifact({ artifactUri, localPath: file, artifactPath: 'a.bin' })
      .catch((x) => x)) as MlflowError;
    expect(e).toMatchObject({ kind: 'timeout', retryable: true, method: 'PUT' });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('an upload keeps going as long as bytes move, and reports its progress', async () => {
    const size = 64 * 1024 * 1024 + 3;
    const file = join(dir, 'big.bin');
    await writeFile(file, Buffer.alloc(size, 2));
    let received = 0;
    let path = '';
    // Slow reader: the whole upload takes longer than the idle limit, no pause is anywhere near as
    // long. The sender sees no progress until the receiver has emptied about half of its socket
    // buffer (TCP opens the window in large steps; loopback buffers reach megabytes), so the limit
    // must exceed that time with room for a loaded machine: 2 ms pauses drain ~3 MB in ~0.1 s, and
    // 1,024 pauses of 64 KiB reads last over 2 s.
    const idleLimitMs = 1500;
    const started = Date.now();
    const url = await serve((req, res) => {
      path = req.url ?? '';
      req.on('data', (c: Buffer) => {
        received += c.length;
        req.pause();
        setTimeout(() => req.resume(), 2);
      });
      req.on('end', () => res.writeHead(200).end('{}'));
    });
    const progress: number[] = [];
    await client(url, { artifactIdleTimeoutMs: idleLimitMs }).uploadArtifact({
      artifactUri,
      localPath: file,
      artifactPath: 'dir/big file.bin',
      onProgress: (sent, total) => {
        expect(total).toBe(size);
        progress.push(sent);
      },
    });
    expect(received).toBe(size);
    expect(Date.now() - started).toBeGreaterThan(idleLimitMs); // else the test shows nothing
    expect(path).toBe('/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/dir/big%20file.bin');
    expect(progress.length).toBeGreaterThanOrEqual(5);
    expect(progress.at(-1)).toBe(size);
  }, 60_000);

  it('an answer before the end of an upload (a refusal) is reported as that answer', async () => {
    const file = join(dir, 'refused.bin');
    await writeFile(file, Buffer.alloc(8 * 1024 * 1024, 3));
    const url = await serve((_req, res) => {
      res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' }).end('too large');
    });
    const e = (await client(url, { artifactIdleTimeoutMs: 5000 })
      .uploadArtifact({ artifactUri, localPath: file, artifactPath: 'a.bin' })
      .catch((x) => x)) as MlflowError;
    // Either the 413 arrives, or the server's close cuts the upload first: never a hang, never a success.
    expect(e).toBeInstanceOf(Error);
    if (e.kind === 'http') expect(e).toMatchObject({ status: 413, retryable: false });
    else expect(e).toMatchObject({ kind: 'network', retryable: true });
  });

  it('a download reads the whole body; a stalled one is a retryable failure', async () => {
    const content = Buffer.alloc(3 * 1024 * 1024, 4);
    const url = await serve((req, res) => {
      if (req.url?.endsWith('/ok.bin')) res.writeHead(200).end(content);
      else res.writeHead(200, { 'content-length': '10' }).write('12345');
    });
    const c = client(url, { artifactIdleTimeoutMs: 300 });
    expect((await c.downloadArtifact(artifactUri, 'ok.bin')).equals(content)).toBe(true);
    const e = (await c.downloadArtifact(artifactUri, 'stalled.bin').catch((x) => x)) as MlflowError;
    expect(e).toMatchObject({ retryable: true });
  });
});
