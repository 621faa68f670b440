import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingHttpHeaders, request } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMlflowClient } from './client.ts';
import { mlflowConfigFromEnv } from './config.ts';
import type { MlflowError } from './errors.ts';

const url = inject('mlflowUrl');
const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasOpenssl)('TLS variables against a TLS front (mutual TLS) of the real server', () => {
  let dir: string;
  let server: Server;
  let httpsUrl: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bridge-tls-'));
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '1',
      '-subj',
      '/CN=test-ca',
    );
    await writeFile(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    for (const who of ['server', 'client']) {
      ssl(
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        `${who}.key`,
        '-out',
        `${who}.csr`,
        '-subj',
        `/CN=${who}`,
      );
      ssl(
        'x509',
        '-req',
        '-in',
        `${who}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${who}.pem`,
        '-days',
        '1',
        '-extfile',
        'san.ext',
      );
    }
    await writeFile(
      join(dir, 'client-bundle.pem'),
      (await readFile(join(dir, 'client.pem'), 'utf8')) + (await readFile(join(dir, 'client.key'), 'utf8')),
    );
    const target = new URL(url);
    server = createHttpsServer(
      {
        key: await readFile(join(dir, 'server.key')),
        cert: await readFile(join(dir, 'server.pem')),
        ca: await readFile(join(dir, 'ca.pem')),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const up = request(
          {
            host: target.hostname,
            port: target.port,
            method: req.method,
            path: req.url,
            headers: req.headers,
          },
          (upRes) => {
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            upRes.pipe(res);
          },
        );
        req.pipe(up);
      },
    );
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const a = server.address();
    httpsUrl = `https://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('MLFLOW_TRACKING_SERVER_CERT_PATH + MLFLOW_TRACKING_CLIENT_CERT_PATH reach the server', async () => {
    const c = createMlflowClient(
      mlflowConfigFromEnv({
        MLFLOW_TRACKING_URI: httpsUrl,
        MLFLOW_TRACKING_SERVER_CERT_PATH: join(dir, 'ca.pem'),
        MLFLOW_TRACKING_CLIENT_CERT_PATH: join(dir, 'client-bundle.pem'),
      })!,
    );
    expect(await c.ensureExperiment(`job_tls-${Date.now()}`)).toMatchObject({ lifecycleStage: 'active' });
    await c.close();
  });

  it('an unverifiable server certificate is a configuration error (parked, not retried)', async () => {
    const c = createMlflowClient(mlflowConfigFromEnv({ MLFLOW_TRACKING_URI: httpsUrl })!);
    const e = (await c.version().catch((x) => x)) as MlflowError;
    await c.close();
    expect(e).toMatchObject({ kind: 'config', retryable: false });
    expect(e.message).toMatch(/TLS verification failed/);
  });

  it('MLFLOW_TRACKING_INSECURE_TLS skips verification', async () => {
    const c = createMlflowClient(
      mlflowConfigFromEnv({
        MLFLOW_TRACKING_URI: httpsUrl,
        MLFLOW_TRACKING_INSECURE_TLS: 'true',
        MLFLOW_TRACKING_CLIENT_CERT_PATH: join(dir, 'client-bundle.pem'),
      })!,
    );
    expect(await c.version()).toMatch(/^3\./);
    await c.close();
  });
});

describe('auth headers', () => {
  it('Basic from username/password, Bearer from the token', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const s = createHttpServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('3.17.2');
    });
    await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
    const a = s.address();
    const base = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
    for (const env of [
      {
        MLFLOW_TRACKING_USERNAME: 'alice',
        MLFLOW_TRACKING_PASSWORD: 's3cret',
        MLFLOW_TRACKING_TOKEN: 'ignored',
      },
      { MLFLOW_TRACKING_TOKEN: 'tok' },
      {},
    ]) {
      const c = createMlflowClient(mlflowConfigFromEnv({ MLFLOW_TRACKING_URI: base, ...env })!);
      await c.version();
      await c.close();
    }
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
    expect(seen.map((h) => h.authorization)).toEqual([
      `Basic ${Buffer.from('alice:s3cret').toString('base64')}`,
      'Bearer tok',
      undefined,
    ]);
  });
});
