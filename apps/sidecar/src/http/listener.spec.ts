import { afterEach, expect, it, vi } from 'vitest';
import { createHttpListener, type HttpListener, plain } from './listener.ts';

// Real sockets and fetch: generous limits on a busy machine.
vi.setConfig({ testTimeout: 30_000 });

let listener: HttpListener | undefined;
afterEach(async () => {
  await listener?.close(0);
  listener = undefined;
});

it('routes exact paths before prefixes, the longest prefix first, and ignores the query', async () => {
  listener = createHttpListener({ address: '127.0.0.1:0' });
  listener.route('/ui/exact', (_q, r) => plain(r, 200, 'exact'));
  listener.mount('/ui/', (q, r) => plain(r, 200, `ui ${q.url}`));
  listener.mount('/ui/deep/', (_q, r) => plain(r, 200, 'deep'));
  const base = `http://${await listener.listen()}`;
  expect(listener.address).toBe(base.slice(7));
  expect(await (await fetch(`${base}/ui/exact?x=1`)).text()).toBe('exact');
  expect(await (await fetch(`${base}/ui/deep/a`)).text()).toBe('deep');
  expect(await (await fetch(`${base}/ui/other`)).text()).toBe('ui /ui/other');
  const missing = await fetch(`${base}/metrics`);
  expect([missing.status, await missing.text()]).toEqual([404, 'no route for /metrics\n']);
  expect(() => listener!.route('/ui/exact', () => {})).toThrow(/registered twice/);
});

it('asks the authorizer for non-public routes only, and answers its refusal', async () => {
  const asked: string[] = [];
  listener = createHttpListener({
    address: '127.0.0.1:0',
    authorize(request, access) {
      asked.push(`${access} ${request.url}`);
      return request.headers.authorization === 'Bearer good'
        ? { ok: true }
        : { ok: false, status: 401, message: 'send a token' };
    },
  });
  listener.route('/livez', (_q, r) => plain(r, 200, 'ok'), { access: 'public' });
  listener.route('/metrics', (_q, r) => plain(r, 200, 'metrics'));
  listener.route('/write', (_q, r) => plain(r, 200, 'written'), { access: 'write', methods: ['POST'] });
  const base = `http://${await listener.listen()}`;
  expect((await fetch(`${base}/livez`)).status).toBe(200);
  const refused = await fetch(`${base}/metrics`);
  expect([refused.status, await refused.text()]).toEqual([401, 'send a token\n']);
  const good = { headers: { authorization: 'Bearer good' } };
  expect(await (await fetch(`${base}/metrics`, good)).text()).toBe('metrics');
  const wrongMethod = await fetch(`${base}/write`, good);
  expect([wrongMethod.status, wrongMethod.headers.get('allow')]).toEqual([405, 'POST']);
  expect((await fetch(`${base}/write`, { ...good, method: 'POST' })).status).toBe(200);
  expect(asked).toEqual(['read /metrics', 'read /metrics', 'write /write']);
});

it('answers 500 for a handler that fails, and reports the error', async () => {
  const errors: string[] = [];
  listener = createHttpListener({
    address: '127.0.0.1:0',
    onError: (error, path) => errors.push(`${path}: ${(error as Error).message}`),
  });
  listener.route('/throws', () => {
    throw new Error('boom');
  });
  listener.route('/rejects', async () => {
    throw new Error('async boom');
  });
  const base = `http://${await listener.listen()}`;
  expect((await fetch(`${base}/throws`)).status).toBe(500);
  expect((await fetch(`${base}/rejects`)).status).toBe(500);
  expect(errors).toEqual(['/throws: boom', '/rejects: async boom']);
});

it('fails to listen on an address in use', async () => {
  listener = createHttpListener({ address: '127.0.0.1:0' });
  const address = await listener.listen();
  const second = createHttpListener({ address });
  await expect(second.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
});
