import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { createHttpListener, type HttpListener } from './listener.ts';
import { mlflowUiAddress, staticFilesHandler } from './static-files.ts';

vi.setConfig({ testTimeout: 30_000 });

let dir: string;
let listener: HttpListener | undefined;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tc-static-'));
  await mkdir(path.join(dir, 'dist', 'assets'), { recursive: true });
  await writeFile(
    path.join(dir, 'dist', 'index.html'),
    '<html><head><title>x</title></head><body></body></html>',
  );
  await writeFile(path.join(dir, 'dist', 'assets', 'index-abc123.js'), 'console.log(1)');
  await writeFile(path.join(dir, 'secret.txt'), 'not for the web');
});
afterEach(async () => {
  await listener?.close(0);
  listener = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function serve(root: string | undefined, options?: Parameters<typeof staticFilesHandler>[1]) {
  listener = createHttpListener({ address: '127.0.0.1:0' });
  listener.mount('/', staticFilesHandler(root, options), { access: 'public' });
  return `http://${await listener.listen()}`;
}

it('serves files with their content type, hashed assets as immutable, index.html revalidated', async () => {
  const base = await serve(path.join(dir, 'dist'));
  const asset = await fetch(`${base}/assets/index-abc123.js`);
  expect(asset.status).toBe(200);
  expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
  expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
  expect(asset.headers.get('x-content-type-options')).toBe('nosniff');
  const index = await fetch(`${base}/`);
  expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(index.headers.get('cache-control')).toBe('no-cache');
  expect(index.headers.get('content-security-policy')).toContain("default-src 'self'");
  const again = await fetch(`${base}/`, { headers: { 'if-none-match': index.headers.get('etag')! } });
  expect(again.status).toBe(304);
});

it('answers app paths with index.html, missing files with 404, and nothing outside its root', async () => {
  await symlink(path.join(dir, 'secret.txt'), path.join(dir, 'dist', 'link.txt'));
  const base = await serve(path.join(dir, 'dist'));
  for (const route of ['/jobs/a%2Fb', '/compare?job=a&job=b', '/jobs/x']) {
    const response = await fetch(`${base}${route}`);
    expect([route, response.status, await response.text()]).toEqual([
      route,
      200,
      expect.stringContaining('<title>x'),
    ]);
  }
  for (const route of ['/assets/index-old999.js', '/../secret.txt', '/%2e%2e/secret.txt', '/link.txt']) {
    const response = await fetch(`${base}${route}`);
    expect([route, response.status]).toEqual([route, 404]);
    expect(await response.text()).not.toContain('not for the web');
  }
});

it('adds the meta tags to index.html, escaped', async () => {
  const base = await serve(path.join(dir, 'dist'), {
    indexMeta: { 'training-callbacks:mlflow-ui': 'http://m/"x"' },
  });
  expect(await (await fetch(`${base}/jobs/1`)).text()).toContain(
    '<meta name="training-callbacks:mlflow-ui" content="http://m/&quot;x&quot;" /></head>',
  );
});

it('says how to build the dashboard when it is not built', async () => {
  const base = await serve(path.join(dir, 'nothing-here'));
  const response = await fetch(`${base}/`);
  expect(response.status).toBe(404);
  expect(await response.text()).toContain('nx run @training-callbacks/dashboard:build');
});

it('gives run links the MLflow address without credentials', () => {
  expect(mlflowUiAddress('http://user:secret@mlflow:5000/')).toBe('http://mlflow:5000');
  expect(mlflowUiAddress('databricks')).toBeUndefined();
});
