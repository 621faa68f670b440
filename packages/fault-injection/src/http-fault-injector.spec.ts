// The injector between `fetch` and a real HTTP server on loopback that records what reaches it.
import { createServer } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startHttpFaultInjector } from './http-fault-injector.ts';

interface Target extends AsyncDisposable {
  url: string;
  /** `METHOD /path body` of every request that reached the target. */
  requests: string[];
}

async function startTarget(): Promise<Target> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      requests.push(`${req.method} ${req.url} ${body}`.trimEnd());
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, path: req.url }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('target has no TCP address');
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    async [Symbol.asyncDispose]() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options?: Parameters<typeof startHttpFaultInjector>[1]) {
  const target = await startTarget();
  cleanups.push(async () => await target[Symbol.asyncDispose]());
  const injector = await startHttpFaultInjector(target.url, options);
  cleanups.push(() => injector.close());
  return { target, injector };
}

describe('startHttpFaultInjector', () => {
  it('forwards every request as it is while no rule matches', async () => {
    const { target, injector } = await setup();
    expect(injector.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${injector.url}/a?b=1`, { method: 'POST', body: 'payload' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, path: '/a?b=1' });
    expect(target.requests).toEqual(['POST /a?b=1 payload']);
    expect(injector.stats()).toEqual({ forwarded: 1, injected: 0, byRule: [] });
  });

  it('answers an injected status, with Retry-After and a JSON body, to the requests a rule matches', async () => {
    const { target, injector } = await setup();
    injector.add({ match: /^POST \/limited/, action: 429, retryAfterSeconds: 2, times: 1 });
    const limited = await fetch(`${injector.url}/limited`, { method: 'POST', body: 'x' });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('2');
    expect(limited.headers.get('content-type')).toBe('application/json');
    expect(await limited.json()).toEqual({ message: 'injected HTTP 429' });
    // Budget used up: the next one goes through; other requests never matched.
    expect((await fetch(`${injector.url}/limited`, { method: 'POST', body: 'y' })).status).toBe(200);
    expect((await fetch(`${injector.url}/other`)).status).toBe(200);
    expect(target.requests).toEqual(['POST /limited y', 'GET /other']);
    expect(injector.stats()).toEqual({ forwarded: 2, injected: 1, byRule: [1] });
  });

  it('uses the rule’s body, else the errorBody option', async () => {
    const { injector } = await setup({
      errorBody: (status) => JSON.stringify({ error_code: 'X', status }),
    });
    const removeText = injector.add({ action: 403, body: 'forbidden here', times: 1 });
    const forbidden = await fetch(injector.url);
    expect(forbidden.status).toBe(403);
    expect(await forbidden.text()).toBe('forbidden here');
    removeText();
    injector.add({ action: 500 });
    expect(await (await fetch(injector.url)).json()).toEqual({ error_code: 'X', status: 500 });
  });

  it('drop-after-forward: the target handles the request, the client’s connection is cut instead of answered', async () => {
    const { target, injector } = await setup();
    injector.add({ match: /create/, action: 'drop-after-forward', times: 1 });
    const lost = await fetch(`${injector.url}/create`, { method: 'POST', body: 'once' }).catch(
      (e: unknown) => e,
    );
    expect(lost).toBeInstanceOf(TypeError); // fetch failed: the socket closed without an answer
    expect(target.requests).toEqual(['POST /create once']);
    expect((await fetch(`${injector.url}/create`, { method: 'POST', body: 'twice' })).status).toBe(200);
    expect(target.requests).toEqual(['POST /create once', 'POST /create twice']);
    expect(injector.stats()).toMatchObject({ forwarded: 2, injected: 1 });
  });

  it('failFor answers the status until the time is up', async () => {
    const { injector } = await setup();
    injector.failFor(300, 503, { retryAfterSeconds: 1 });
    const failed = await fetch(injector.url);
    expect(failed.status).toBe(503);
    expect(failed.headers.get('retry-after')).toBe('1');
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect((await fetch(injector.url)).status).toBe(200);
  });

  it('the first matching rule with budget left applies; removed and cleared rules no longer do', async () => {
    const { injector } = await setup();
    injector.add({ action: 500, times: 1 });
    const remove = injector.add({ action: 502 });
    const statuses = async (n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await fetch(injector.url)).status);
      return out;
    };
    expect(await statuses(3)).toEqual([500, 502, 502]);
    remove();
    expect(await statuses(1)).toEqual([200]);
    injector.add({ action: 504 });
    injector.clear();
    expect(await statuses(1)).toEqual([200]);
    expect(injector.stats().byRule).toEqual([1, 2]);
  });

  it('answers 502 when the target is down', async () => {
    // Port 1: nothing listens there (a port freed by a closed server could be taken again meanwhile).
    await using injector = await startHttpFaultInjector('http://127.0.0.1:1');
    const res = await fetch(injector.url);
    expect(res.status).toBe(502);
    expect(await res.text()).toMatch(/fault injector: upstream error .*ECONNREFUSED/);
  });

  it('keeps the target URL’s path prefix in its url', async () => {
    const { target } = await setup();
    await using injector = await startHttpFaultInjector(`${target.url}/prefix/`);
    expect(injector.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/prefix$/);
    expect(await (await fetch(`${injector.url}/api`)).json()).toEqual({ ok: true, path: '/prefix/api' });
  });
});
