// The dashboard's static files (apps/dashboard, built by Vite) on the HTTP listener, as a single-page
// app: a file that exists is served with its content type; any other path without a file extension
// gets index.html, so a reload of /jobs/<id> opens that page. Vite names every built asset after a
// hash of its content, so /assets/* may be cached for ever; index.html must be revalidated, or a
// browser would keep loading the assets of an older build.
import { createReadStream } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import path from 'node:path';
import { type ConfinedFile, confinedFile } from './confined-file.ts';
import { type HttpHandler, plain } from './listener.ts';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** Hashed build output: safe to cache for a year. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Everything else (index.html): cache, but ask again each time. */
const REVALIDATE = 'no-cache';

/**
 * The page may talk to its own origin only; styles may be inline (uPlot sizes its canvases with
 * style attributes) and images may be data: URLs (uPlot's legend markers).
 */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
  "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/**
 * Where the built dashboard is: `dist/` of the @training-callbacks/dashboard package, found the way
 * Node finds packages (the workspace's node_modules, or the image's /app/node_modules). Undefined
 * when it is not installed.
 */
export function locateDashboard(): string | undefined {
  try {
    const manifest = new URL(import.meta.resolve('@training-callbacks/dashboard/package.json'));
    return path.join(path.dirname(manifest.pathname), 'dist');
  } catch {
    return undefined;
  }
}

/** Options of {@link staticFilesHandler}. */
export interface StaticFilesOptions {
  /**
   * `<meta name content>` tags added to index.html: what the page needs to know about this sidecar
   * without an API of its own (e.g. `training-callbacks:mlflow-ui`, the MLflow UI for run links).
   */
  indexMeta?: Readonly<Record<string, string>>;
}

const escapeAttribute = (text: string) =>
  text.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

/** Serves `root` (a Vite build: index.html plus assets/) as a single-page app. */
export function staticFilesHandler(root: string | undefined, options: StaticFilesOptions = {}): HttpHandler {
  const meta = Object.entries(options.indexMeta ?? {})
    .map(
      ([name, content]) => `<meta name="${escapeAttribute(name)}" content="${escapeAttribute(content)}" />`,
    )
    .join('');
  let realRoot: Promise<string | undefined> | undefined;
  const rootDir = () => {
    realRoot ??= root ? realpath(root).catch(() => undefined) : Promise.resolve(undefined);
    return realRoot;
  };
  return async (request, response) => {
    const base = await rootDir();
    if (!base) {
      realRoot = undefined; // built later (nx build): look again next time
      return plain(
        response,
        404,
        'The dashboard is not built: run `npx nx run @training-callbacks/dashboard:build` and reload.\n',
      );
    }
    const urlPath = (request.url ?? '/').split('?', 1)[0] ?? '/';
    let decoded: string;
    try {
      decoded = decodeURIComponent(urlPath);
    } catch {
      decoded = '/';
    }
    const candidate = path.resolve(base, `.${path.posix.normalize(decoded)}`);
    const file = await servedFile(base, candidate);
    if (file)
      return send(request.method, response, file.path, file.size, file.mtimeMs, cacheOf(base, file.path));
    // A missing asset is a 404 (a stale index.html asking for an old hash must not get HTML back).
    if (path.extname(decoded) !== '') return plain(response, 404, `no file ${urlPath} in the dashboard\n`);
    const index = await servedFile(base, path.join(base, 'index.html'));
    if (!index) return plain(response, 404, 'the dashboard build has no index.html; rebuild it\n');
    if (meta === '') return send(request.method, response, index.path, index.size, index.mtimeMs, REVALIDATE);
    const html = (await readFile(index.path, 'utf8')).replace('</head>', `${meta}</head>`);
    return sendHtml(request.method, response, html, index.mtimeMs);
  };
}

/** index.html with the sidecar's meta tags (small: built in memory for each request). */
function sendHtml(method: string | undefined, response: ServerResponse, html: string, mtimeMs: number): void {
  const body = Buffer.from(html, 'utf8');
  const etag = `"${body.length.toString(16)}-${Math.floor(mtimeMs).toString(16)}-m"`;
  const headers = {
    ...htmlHeaders(),
    'content-type': CONTENT_TYPES['.html']!,
    'cache-control': REVALIDATE,
    etag,
  };
  if (response.req.headers['if-none-match'] === etag) {
    response.writeHead(304, headers);
    response.end();
    return;
  }
  response.writeHead(200, { ...headers, 'content-length': body.length });
  response.end(method === 'HEAD' ? undefined : body);
}

function htmlHeaders(): Record<string, string> {
  return {
    'x-content-type-options': 'nosniff',
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'referrer-policy': 'no-referrer',
  };
}

/** The regular file at `candidate` inside `base`, else undefined (any failure: the page falls back). */
async function servedFile(base: string, candidate: string): Promise<ConfinedFile | undefined> {
  const file = await confinedFile(base, candidate).catch(() => undefined);
  return file === 'outside' ? undefined : file;
}

function cacheOf(base: string, file: string): string {
  return path.relative(base, file).startsWith(`assets${path.sep}`) ? IMMUTABLE : REVALIDATE;
}

function send(
  method: string | undefined,
  response: ServerResponse,
  file: string,
  size: number,
  mtimeMs: number,
  cacheControl: string,
): void {
  const etag = `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`;
  const headers: Record<string, string | number> = {
    'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
    'cache-control': cacheControl,
    etag,
    'x-content-type-options': 'nosniff',
  };
  if (file.endsWith('.html')) Object.assign(headers, htmlHeaders());
  if (response.req.headers['if-none-match'] === etag) {
    response.writeHead(304, headers);
    response.end();
    return;
  }
  response.writeHead(200, { ...headers, 'content-length': size });
  if (method === 'HEAD') {
    response.end();
    return;
  }
  createReadStream(file)
    .on('error', () => response.destroy())
    .pipe(response);
}

/** The MLflow UI's address for run links: the tracking URI without credentials or a trailing slash. */
export function mlflowUiAddress(trackingUri: string): string | undefined {
  try {
    const url = new URL(trackingUri);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    url.username = '';
    url.password = '';
    return url.toString().replace(/\/+$/, '');
  } catch {
    return undefined;
  }
}
