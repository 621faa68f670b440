// TLS, mutual TLS and bearer tokens on the real sidecar process, with real certificates made by the
// openssl CLI: who is refused with which status, that a refused write changes nothing, that health
// stays reachable for probes, that rotated certificate files are served without a restart, and that
// the sidecar refuses to listen beyond loopback unprotected.
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'node:tls';
import { type ChannelCredentials, credentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createClient, RpcError, Status } from '@training-callbacks/grpc-adapter';
import { TaskType, TrainingCallbacks } from '@training-callbacks/proto';
import {
  type CertificateFiles,
  createCertificateAuthority,
  issueCertificate,
  startSidecarProcess,
} from '@training-callbacks/sidecar/testing';
import { protoPath as healthProto } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const WRITE_TOKEN = 'w-0123456789abcdef0123456789abcdef';
const READ_TOKEN = 'r-0123456789abcdef0123456789abcdef';

let dir: string;
let ca: CertificateFiles;
let server: CertificateFiles;
let client: CertificateFiles;
let strangerClient: CertificateFiles;
let tokenFile: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tc-security-'));
  ca = createCertificateAuthority(dir, 'ca');
  server = issueCertificate(ca, dir, 'server', 'server');
  client = issueCertificate(ca, dir, 'trainer', 'client');
  const otherCa = createCertificateAuthority(dir, 'other-ca');
  strangerClient = issueCertificate(otherCa, dir, 'stranger', 'client');
  tokenFile = path.join(dir, 'tokens');
  await writeFile(tokenFile, `# sidecar tokens\nwrite ${WRITE_TOKEN}\nread  ${READ_TOKEN}\n`);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const bearer = (token: string) => ({ metadata: { authorization: `Bearer ${token}` } });

async function failure(call: Promise<unknown>): Promise<RpcError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof RpcError) return error;
    throw error;
  }
  throw new Error('the call succeeded; expected a refusal');
}

function healthClient(address: string, creds: ChannelCredentials) {
  const pkg = loadPackageDefinition(loadSync(healthProto, { enums: String })) as never as {
    grpc: { health: { v1: { Health: new (address: string, creds: unknown) => never } } };
  };
  const health = new pkg.grpc.health.v1.Health(address, creds) as {
    check(req: { service: string }, cb: (e: Error | null, r: { status: string }) => void): void;
    close(): void;
  };
  return {
    check: (service = '') =>
      new Promise<string>((resolve, reject) =>
        health.check({ service }, (e, r) => (e ? reject(e) : resolve(r.status))),
      ),
    close: () => health.close(),
  };
}

const begin = {
  jobId: 'secure-job',
  taskType: TaskType.IMAGE_CLASSIFICATION,
  framework: 'custom',
};

describe('bearer tokens (--auth-token-file)', () => {
  it('refuses calls without a valid token, read tokens on writes, and lets health through', async () => {
    await using sidecar = await startSidecarProcess({ args: ['--auth-token-file', tokenFile] });
    const rpc = createClient(TrainingCallbacks, sidecar.address);
    try {
      // No token: reads and writes alike, with a message that says what to send.
      const noTokenRead = await failure(rpc.listJobs({}));
      expect(noTokenRead.code).toBe(Status.UNAUTHENTICATED);
      expect(noTokenRead.message).toMatch(/authorization: Bearer <token>.*TRAINING_CALLBACKS_TOKEN/);
      expect((await failure(rpc.beginTraining(begin))).code).toBe(Status.UNAUTHENTICATED);
      // A client stream is refused before its messages are read.
      const stream = await failure(rpc.reportBatchMetrics([{ jobId: begin.jobId }]));
      expect(stream.code).toBe(Status.UNAUTHENTICATED);

      // A wrong token, and a token that is not a bearer token.
      const wrong = await failure(rpc.getJob({ jobId: begin.jobId }, bearer(`${WRITE_TOKEN}x`)));
      expect(wrong.code).toBe(Status.UNAUTHENTICATED);
      expect(wrong.message).toMatch(/not one this sidecar accepts/);
      const basic = await failure(rpc.listJobs({}, { metadata: { authorization: `Basic ${WRITE_TOKEN}` } }));
      expect(basic.code).toBe(Status.UNAUTHENTICATED);
      expect(basic.message).toMatch(/not a bearer token/);

      // A read token reads, and is refused on every write with PERMISSION_DENIED; nothing is written.
      expect((await rpc.listJobs({}, bearer(READ_TOKEN))).jobs).toEqual([]);
      expect((await rpc.getMetricCatalog({}, bearer(READ_TOKEN))).catalogs.length).toBeGreaterThan(0);
      const denied = await failure(rpc.beginTraining(begin, bearer(READ_TOKEN)));
      expect(denied.code).toBe(Status.PERMISSION_DENIED);
      expect(denied.message).toMatch(/read-only and BeginTraining writes.*"write <token>"/);
      expect((await failure(rpc.retryMlflowSync({ jobId: 'x' }, bearer(READ_TOKEN)))).code).toBe(
        Status.PERMISSION_DENIED,
      );
      expect((await rpc.listJobs({}, bearer(READ_TOKEN))).jobs).toEqual([]);

      // The write token writes and reads.
      await rpc.beginTraining(begin, bearer(WRITE_TOKEN));
      expect((await rpc.getJob({ jobId: begin.jobId }, bearer(READ_TOKEN))).job?.jobId).toBe(begin.jobId);

      // Health needs no token (Kubernetes probes send none).
      const health = healthClient(sidecar.address, credentials.createInsecure());
      expect(await health.check()).toBe('SERVING');
      health.close();
    } finally {
      rpc.close();
    }
  });

  it('re-reads the token file: a token added or revoked takes effect without a restart', async () => {
    const file = path.join(dir, 'tokens-reload');
    await writeFile(file, `write ${WRITE_TOKEN}\n`);
    await using sidecar = await startSidecarProcess({ args: ['--auth-token-file', file] });
    const rpc = createClient(TrainingCallbacks, sidecar.address);
    try {
      const added = 'added-0123456789abcdef';
      expect((await failure(rpc.listJobs({}, bearer(added)))).code).toBe(Status.UNAUTHENTICATED);
      await writeFile(file, `read ${added}\n`);
      await eventually(async () => expect((await rpc.listJobs({}, bearer(added))).jobs).toEqual([]));
      expect((await failure(rpc.listJobs({}, bearer(WRITE_TOKEN)))).code).toBe(Status.UNAUTHENTICATED);
      // A broken file is reported and the previous tokens stay in force.
      await writeFile(file, 'read short\n');
      await eventually(() => expect(sidecar.output.join('\n')).toMatch(/not reloaded.*at least 16/));
      expect((await rpc.listJobs({}, bearer(added))).jobs).toEqual([]);
    } finally {
      rpc.close();
    }
  });

  it('refuses to start on an unusable token file (exit code 2, the line at fault)', async () => {
    const file = path.join(dir, 'tokens-bad');
    await writeFile(file, 'admin some-token-that-is-long-enough\n');
    const error = await startSidecarProcess({ args: ['--auth-token-file', file] }).then(
      () => new Error('started'),
      (e: Error) => e,
    );
    expect(error.message).toMatch(/exited \(2\)/);
    expect(error.message).toMatch(/tokens-bad line 1: expected "write <token>"/);
  });
});

describe('TLS (--tls-cert, --tls-key, --tls-client-ca)', () => {
  const tlsArgs = () => ['--tls-cert', server.certFile, '--tls-key', server.keyFile];

  it('serves TLS: a client trusting the CA talks to it, a plaintext client cannot', async () => {
    await using sidecar = await startSidecarProcess({ args: tlsArgs() });
    expect(sidecar.output.join('\n')).toMatch(/security: TLS, no tokens/);
    const caPem = await readFile(ca.certFile);
    const secure = createClient(TrainingCallbacks, sidecar.address, {
      credentials: credentials.createSsl(caPem),
    });
    const plain = createClient(TrainingCallbacks, sidecar.address);
    try {
      expect((await secure.listJobs({})).jobs).toEqual([]);
      expect((await failure(plain.listJobs({}, { deadline: 15_000 }))).code).toBe(Status.UNAVAILABLE);
    } finally {
      secure.close();
      plain.close();
    }
  });

  it('mutual TLS: a client certificate signed by the client CA is accepted, an unknown one or none is refused', async () => {
    await using sidecar = await startSidecarProcess({
      args: [...tlsArgs(), '--tls-client-ca', ca.certFile, '--auth-token-file', tokenFile],
    });
    const caPem = await readFile(ca.certFile);
    const as = async (files: CertificateFiles | undefined) =>
      createClient(TrainingCallbacks, sidecar.address, {
        credentials: files
          ? credentials.createSsl(caPem, await readFile(files.keyFile), await readFile(files.certFile))
          : credentials.createSsl(caPem),
      });
    const known = await as(client);
    const stranger = await as(strangerClient);
    const anonymous = await as(undefined);
    try {
      await known.beginTraining(begin, bearer(WRITE_TOKEN));
      // The handshake fails: the channel never becomes ready, whatever token is sent.
      for (const refused of [stranger, anonymous]) {
        const error = await failure(refused.listJobs({}, { ...bearer(WRITE_TOKEN), deadline: 15_000 }));
        expect(error.code).toBe(Status.UNAVAILABLE);
      }
    } finally {
      for (const c of [known, stranger, anonymous]) c.close();
    }
  });

  it('serves a certificate rotated on disk without a restart', async () => {
    const rotating = path.join(dir, 'rotating');
    const first = issueCertificate(ca, rotating, 'server', 'server');
    await using sidecar = await startSidecarProcess({
      args: ['--tls-cert', first.certFile, '--tls-key', first.keyFile],
    });
    const before = await servedFingerprint(sidecar.address);
    expect(before).toBe(new X509Certificate(await readFile(first.certFile)).fingerprint256);
    expect(await servedFingerprint(sidecar.httpAddress!)).toBe(before);

    const caPem = await readFile(ca.certFile);
    const rpc = createClient(TrainingCallbacks, sidecar.address, {
      credentials: credentials.createSsl(caPem),
    });
    try {
      await rpc.listJobs({});
      // Same paths, new key and certificate (what cert-manager or a Secret update does).
      issueCertificate(ca, rotating, 'server', 'server');
      const expected = new X509Certificate(await readFile(first.certFile)).fingerprint256;
      expect(expected).not.toBe(before);
      await eventually(async () => expect(await servedFingerprint(sidecar.address)).toBe(expected));
      expect(sidecar.output.join('\n')).toContain(`now serving certificate ${expected}`);
      // The HTTP listener serves the same, reloaded certificate.
      expect(await servedFingerprint(sidecar.httpAddress!)).toBe(expected);
      // The open channel keeps working, and new channels verify the new certificate.
      await rpc.listJobs({});
      const fresh = createClient(TrainingCallbacks, sidecar.address, {
        credentials: credentials.createSsl(caPem),
      });
      expect((await fresh.listJobs({})).jobs).toEqual([]);
      fresh.close();
    } finally {
      rpc.close();
    }
  });

  it('refuses to start on a key that does not match the certificate (exit code 2)', async () => {
    const error = await startSidecarProcess({
      args: ['--tls-cert', server.certFile, '--tls-key', client.keyFile],
    }).then(
      () => new Error('started'),
      (e: Error) => e,
    );
    expect(error.message).toMatch(/exited \(2\)/);
    expect(error.message).toMatch(/do not form a usable certificate/);
  });

  it('--health-listen: a plaintext health-only port next to a TLS port', async () => {
    await using sidecar = await startSidecarProcess({
      args: [...tlsArgs(), '--auth-token-file', tokenFile, '--health-listen', '127.0.0.1:0'],
    });
    const line = sidecar.output.find((l) => l.includes('health-only (plaintext) on'));
    const healthAddress = /on (\S+)$/.exec(line ?? '')?.[1];
    expect(healthAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    const health = healthClient(healthAddress!, credentials.createInsecure());
    expect(await health.check()).toBe('SERVING');
    expect(await health.check('trainingcallbacks.v1.TrainingCallbacks')).toBe('SERVING');
    health.close();
    // Only health is served there.
    const rpc = createClient(TrainingCallbacks, healthAddress!);
    expect((await failure(rpc.listJobs({}, bearer(WRITE_TOKEN)))).code).toBe(Status.UNIMPLEMENTED);
    rpc.close();
    // Health on the TLS port needs TLS but no token.
    const tlsHealth = healthClient(sidecar.address, credentials.createSsl(await readFile(ca.certFile)));
    expect(await tlsHealth.check()).toBe('SERVING');
    tlsHealth.close();
  });
});

describe('the HTTP listener (--http) with TLS and tokens', () => {
  it('probes stay open; /metrics needs a client certificate and a token; a read token is enough', async () => {
    await using sidecar = await startSidecarProcess({
      args: [
        ...['--tls-cert', server.certFile, '--tls-key', server.keyFile, '--tls-client-ca', ca.certFile],
        ...['--auth-token-file', tokenFile],
      ],
    });
    const address = sidecar.httpAddress!;
    const trusted = { ca: await readFile(ca.certFile) };
    const withCert = {
      ...trusted,
      cert: await readFile(client.certFile),
      key: await readFile(client.keyFile),
    };
    // Kubernetes' HTTP probes: HTTPS, no client certificate, no token.
    expect((await httpsGet(address, '/livez', trusted)).status).toBe(200);
    expect((await httpsGet(address, '/readyz', trusted)).status).toBe(200);
    // /metrics: no client certificate → 401, whatever the token.
    const noCert = await httpsGet(address, '/metrics', { ...trusted, token: READ_TOKEN });
    expect(noCert.status).toBe(401);
    expect(noCert.body).toMatch(/client certificate signed by its --tls-client-ca/);
    const stranger = await httpsGet(address, '/metrics', {
      ...trusted,
      cert: await readFile(strangerClient.certFile),
      key: await readFile(strangerClient.keyFile),
      token: READ_TOKEN,
    });
    expect(stranger.status).toBe(401);
    // A client certificate but no token, or a wrong one → 401; a read token → the metrics.
    const noToken = await httpsGet(address, '/metrics', withCert);
    expect(noToken.status).toBe(401);
    expect(noToken.body).toMatch(/needs a token and none was sent.*TRAINING_CALLBACKS_TOKEN/);
    expect((await httpsGet(address, '/metrics', { ...withCert, token: `${READ_TOKEN}x` })).status).toBe(401);
    const scrape = await httpsGet(address, '/metrics', { ...withCert, token: READ_TOKEN });
    expect(scrape.status).toBe(200);
    expect(scrape.body).toMatch(/^# HELP /m);
    // Plain HTTP to the TLS listener gets no answer.
    await expect(plainGet(address, '/livez')).rejects.toThrow();
  });

  it('tokens without TLS: /metrics needs a token, probes do not', async () => {
    await using sidecar = await startSidecarProcess({ args: ['--auth-token-file', tokenFile] });
    const address = sidecar.httpAddress!;
    expect((await plainGet(address, '/livez')).status).toBe(200);
    const refused = await plainGet(address, '/metrics');
    expect(refused.status).toBe(401);
    expect((await plainGet(address, '/metrics', `${WRITE_TOKEN}x`)).status).toBe(401);
    expect((await plainGet(address, '/metrics', READ_TOKEN)).status).toBe(200);
    expect((await plainGet(address, '/metrics', WRITE_TOKEN)).status).toBe(200);
  });
});

describe('listening beyond loopback', () => {
  it('is refused with neither TLS nor tokens (exit code 2), allowed with --insecure-listen or protection', async () => {
    const refused = await startSidecarProcess({ listen: '0.0.0.0:0' }).then(
      () => new Error('started'),
      (e: Error) => e,
    );
    expect(refused.message).toMatch(/exited \(2\)/);
    expect(refused.message).toMatch(/refusing to listen on 0\.0\.0\.0:0 .*--insecure-listen/);
    const http = await startSidecarProcess({ args: ['--http', '0.0.0.0:0'] }).then(
      () => new Error('started'),
      (e: Error) => e,
    );
    expect(http.message).toMatch(/exited \(2\)/);
    expect(http.message).toMatch(/refusing to listen on 0\.0\.0\.0:0 /);

    {
      await using insecure = await startSidecarProcess({ listen: '0.0.0.0:0', args: ['--insecure-listen'] });
      expect(insecure.address).toMatch(/^0\.0\.0\.0:\d+$/);
    }
    {
      await using tokens = await startSidecarProcess({
        listen: '0.0.0.0:0',
        args: ['--auth-token-file', tokenFile],
      });
      expect(tokens.output.join('\n')).toMatch(/security: plaintext, tokens from/);
    }
  });
});

/** The SHA-256 fingerprint of the certificate the server at `address` presents on a new connection. */
async function servedFingerprint(address: string): Promise<string> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const socket = connect(
      {
        host: address.slice(0, colon),
        port: Number(address.slice(colon + 1)),
        servername: 'localhost',
        ALPNProtocols: ['h2', 'http/1.1'],
        rejectUnauthorized: false,
      },
      () => {
        const fingerprint = socket.getPeerCertificate().fingerprint256;
        socket.destroy();
        resolve(fingerprint);
      },
    );
    socket.once('error', reject);
  });
}

interface HttpAnswer {
  status: number;
  body: string;
}

/** GET over HTTPS with the given trust, client certificate and bearer token. */
function httpsGet(
  address: string,
  urlPath: string,
  options: { ca: Buffer; cert?: Buffer; key?: Buffer; token?: string },
): Promise<HttpAnswer> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      {
        host: address.slice(0, colon),
        port: Number(address.slice(colon + 1)),
        path: urlPath,
        servername: 'localhost',
        ca: options.ca,
        ...(options.cert && { cert: options.cert, key: options.key }),
        ...(options.token && { headers: { authorization: `Bearer ${options.token}` } }),
        agent: false,
      },
      (response) => collect(response, resolve, reject),
    );
    request.once('error', reject);
    request.end();
  });
}

/** GET over plain HTTP, with a bearer token when given. */
function plainGet(address: string, urlPath: string, token?: string): Promise<HttpAnswer> {
  const colon = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        host: address.slice(0, colon),
        port: Number(address.slice(colon + 1)),
        path: urlPath,
        ...(token && { headers: { authorization: `Bearer ${token}` } }),
        agent: false,
        timeout: 3000,
      },
      (response) => collect(response, resolve, reject),
    );
    request.once('timeout', () => request.destroy(new Error('timed out')));
    request.once('error', reject);
    request.end();
  });
}

function collect(
  response: IncomingMessage,
  resolve: (answer: HttpAnswer) => void,
  reject: (error: Error) => void,
): void {
  let body = '';
  response.setEncoding('utf8');
  response.on('data', (chunk: string) => {
    body += chunk;
  });
  response.once('end', () => resolve({ status: response.statusCode ?? 0, body }));
  response.once('error', reject);
}

/** Retries `check` until it passes (file changes are picked up within about a second). */
async function eventually(check: () => unknown | Promise<unknown>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
