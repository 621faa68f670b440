// The Connect protocol and artifact downloads on the real sidecar's HTTP listener: the same answers
// as the gRPC port, reads only, the same token rules and the same status table.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Code, ConnectError, createClient as createConnectClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { createClient, type RpcError } from '@training-callbacks/grpc-adapter';
import { TaskType, TrainingCallbacks, TrainingOutcome } from '@training-callbacks/proto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type SidecarProcess, startSidecarProcess } from '../testing.ts';
import { artifactDownloadPath } from './artifact-download.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 90_000 });

const connectClient = (httpAddress: string, token?: string) =>
  createConnectClient(
    TrainingCallbacks,
    createConnectTransport({
      baseUrl: `http://${httpAddress}`,
      httpVersion: '1.1',
      ...(token && {
        interceptors: [
          (next) => (request) => {
            request.header.set('authorization', `Bearer ${token}`);
            return next(request);
          },
        ],
      }),
    }),
  );

const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (error: unknown) => ConnectError.from(error),
  );

describe('Connect on the HTTP listener', () => {
  let sidecar: SidecarProcess;
  let grpc: ReturnType<typeof createClient<typeof TrainingCallbacks.method>>;
  let connect: ReturnType<typeof connectClient>;
  const content = Buffer.from('weights\n');

  beforeAll(async () => {
    sidecar = await startSidecarProcess({ args: ['--quiet'] });
    grpc = createClient(TrainingCallbacks, sidecar.address);
    connect = connectClient(sidecar.httpAddress!);
    await grpc.beginTraining({ jobId: 'c-1', taskType: TaskType.OBJECT_DETECTION, modelName: 'yolo11n' });
    await grpc.endEpoch({ jobId: 'c-1', epoch: 0, metrics: { 'metrics/mAP50(B)': 0.5 } });
    const sha256 = createHash('sha256').update(content).digest('hex');
    await grpc.uploadArtifact(
      (async function* () {
        yield {
          part: {
            case: 'header' as const,
            value: {
              jobId: 'c-1',
              artifactPath: 'weights/best é.pt',
              sizeBytes: BigInt(content.length),
              sha256,
            },
          },
        };
        yield { part: { case: 'chunk' as const, value: content } };
      })(),
    );
  });
  afterAll(async () => {
    grpc?.close();
    await sidecar?.[Symbol.asyncDispose]();
  });

  it('answers the read RPCs as the gRPC port does', async () => {
    const overGrpc = await grpc.getJob({ jobId: 'c-1' });
    const overConnect = await connect.getJob({ jobId: 'c-1' });
    expect(overConnect.job?.bestValue).toBe(0.5);
    expect(overConnect).toEqual(overGrpc);
    const epochs = await connect.listEpochs({ jobId: 'c-1' });
    expect(epochs.epochs.map((e) => e.metrics.mAP50)).toEqual([0.5]);
  });

  it('maps errors through the same status table, with the same message', async () => {
    const viaGrpc = (await grpc.getJob({ jobId: 'nope' }).catch((e: unknown) => e)) as RpcError;
    const viaConnect = await refusal(connect.getJob({ jobId: 'nope' }));
    expect(viaConnect.code).toBe(Code.NotFound);
    expect(viaConnect.rawMessage).toBe(viaGrpc.message);
    const invalid = await refusal(connect.getMetricSeries({ jobId: 'c-1', name: '' }));
    expect(invalid.code).toBe(Code.InvalidArgument);
    expect(invalid.rawMessage).toContain('name is empty');
  });

  it('refuses every write with PERMISSION_DENIED naming the gRPC port, and writes nothing', async () => {
    const refused = await refusal(
      connect.endEpoch({ jobId: 'c-1', epoch: 1, metrics: { 'metrics/mAP50(B)': 0.9 } }),
    );
    expect(refused.code).toBe(Code.PermissionDenied);
    expect(refused.rawMessage).toMatch(/EndEpoch writes.*--listen/);
    const ended = await refusal(connect.endTraining({ jobId: 'c-1', outcome: TrainingOutcome.COMPLETED }));
    expect(ended.code).toBe(Code.PermissionDenied);
    expect((await grpc.getJob({ jobId: 'c-1' })).job?.epochsReported).toBe(1);
  });

  it('streams WatchJob over Connect (HTTP/1.1), resumable by seq', async () => {
    const controller = new AbortController();
    const seen: string[] = [];
    let lastSeq = 0n;
    for await (const response of connect.watchJob({ jobId: 'c-1' }, { signal: controller.signal })) {
      seen.push(...response.events.map((e) => e.event.case ?? ''));
      lastSeq = response.seq;
      if (seen.includes('artifact')) break;
    }
    expect(seen).toContain('epoch');
    // A new epoch after the last seq received: the resumed stream brings it, and only it.
    await grpc.endEpoch({ jobId: 'c-1', epoch: 1, metrics: { 'metrics/mAP50(B)': 0.6 } });
    for await (const response of connect.watchJob({ jobId: 'c-1', afterSeq: lastSeq })) {
      if (response.heartbeat) continue;
      expect(response.events.map((e) => e.event.case)).toEqual(['epoch']);
      const [event] = response.events;
      expect(event!.event.case === 'epoch' && event!.event.value.epoch).toBe(1);
      expect(response.seq).toBe(event!.seq);
      break;
    }
  });

  it('answers bad requests with the right code and changes nothing; reads also work as Connect GET', async () => {
    const base = `http://${sidecar.httpAddress}/trainingcallbacks.v1.TrainingCallbacks`;
    const post = (method: string, contentType: string, body: string | Uint8Array) =>
      fetch(`${base}/${method}`, { method: 'POST', headers: { 'content-type': contentType }, body });
    const undecodable = await post('GetJob', 'application/proto', new Uint8Array([0x0a, 0xff, 0xff]));
    expect([undecodable.status, ((await undecodable.json()) as { code: string }).code]).toEqual([
      400,
      'invalid_argument',
    ]);
    // A stream's request too: the end-stream message carries the error.
    const stream = await post(
      'WatchJob',
      'application/connect+proto',
      new Uint8Array([0, 0, 0, 0, 3, 0x0a, 0xff, 0xff]),
    );
    const frame = new Uint8Array(await stream.arrayBuffer());
    expect(frame[0]).toBe(0b10);
    const endStream = JSON.parse(new TextDecoder().decode(frame.subarray(5))) as { error: { code: string } };
    expect(endStream.error.code).toBe('invalid_argument');
    const wrongType = await post('GetJob', 'application/json', JSON.stringify({ jobId: 42 }));
    expect(((await wrongType.json()) as { code: string }).code).toBe('invalid_argument');
    const unknown = await post('NoSuchMethod', 'application/json', '{}');
    expect(unknown.status).toBe(404);
    const write = await post('EndTraining', 'application/json', JSON.stringify({ jobId: 'c-1', outcome: 1 }));
    expect(((await write.json()) as { code: string }).code).toBe('permission_denied');
    expect((await grpc.getJob({ jobId: 'c-1' })).job?.endedAt).toBeUndefined();
    // Connect GET (idempotent reads), e.g. for a cache in front of the sidecar.
    const message = encodeURIComponent(JSON.stringify({ jobId: 'c-1' }));
    const got = await fetch(`${base}/GetJob?connect=v1&encoding=json&message=${message}`);
    expect(((await got.json()) as { job: { jobId: string } }).job.jobId).toBe('c-1');
  });

  it('answers INVALID_ARGUMENT, not INTERNAL, to a GET message that is no base64 and a stream message flagged compressed without an encoding', async () => {
    const base = `http://${sidecar.httpAddress}/trainingcallbacks.v1.TrainingCallbacks`;
    const notBase64 = await fetch(`${base}/GetJob?connect=v1&encoding=proto&base64=1&message=!!!`);
    expect([notBase64.status, ((await notBase64.json()) as { code: string }).code]).toEqual([
      400,
      'invalid_argument',
    ]);
    const flagged = await fetch(`${base}/WatchJobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/connect+json' },
      body: new Uint8Array([1, 0, 0, 0, 2, 0x7b, 0x7d]),
    });
    const frame = new Uint8Array(await flagged.arrayBuffer());
    const endStream = JSON.parse(new TextDecoder().decode(frame.subarray(5))) as { error: { code: string } };
    expect(endStream.error.code).toBe('invalid_argument');
  });

  it('answers a read whose HTTP headers gRPC metadata cannot carry, instead of INTERNAL', async () => {
    const response = await fetch(
      `http://${sidecar.httpAddress}/trainingcallbacks.v1.TrainingCallbacks/GetJob`,
      {
        method: 'POST',
        // Legal HTTP, illegal gRPC metadata: "~" in a name, a Latin-1 byte in a value.
        headers: { 'content-type': 'application/json', 'x-odd~name': '1', 'x-latin-1': 'caf\u00e9' },
        body: JSON.stringify({ jobId: 'c-1' }),
      },
    );
    expect([response.status, ((await response.json()) as { job?: { jobId: string } }).job?.jobId]).toEqual([
      200,
      'c-1',
    ]);
  });

  it('serves a stored artifact for download, and only stored ones', async () => {
    const base = `http://${sidecar.httpAddress}`;
    const response = await fetch(`${base}${artifactDownloadPath('c-1', 'weights/best é.pt')}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/octet-stream');
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename*=UTF-8''best%20%C3%A9.pt`);
    expect(Buffer.from(await response.arrayBuffer())).toEqual(content);
    for (const [url, status] of [
      [artifactDownloadPath('c-1', 'weights/other.pt'), 404],
      [artifactDownloadPath('nope', 'weights/best é.pt'), 404],
      ['/artifacts/c-1/..%2F..%2Ftraining-callbacks.sqlite', 404],
      ['/artifacts/c-1', 400],
    ] as const) {
      expect([url, (await fetch(`${base}${url}`)).status]).toEqual([url, status]);
    }
  });

  it('answers 410, not 500, when a recorded file is gone (its directory replaced by a file)', async () => {
    const sha256 = createHash('sha256').update(content).digest('hex');
    await grpc.uploadArtifact(
      (async function* () {
        yield {
          part: {
            case: 'header' as const,
            value: { jobId: 'c-1', artifactPath: 'gone/x.pt', sizeBytes: BigInt(content.length), sha256 },
          },
        };
        yield { part: { case: 'chunk' as const, value: content } };
      })(),
    );
    const url = `http://${sidecar.httpAddress}${artifactDownloadPath('c-1', 'gone/x.pt')}`;
    expect((await fetch(url)).status).toBe(200);
    const directory = path.join(sidecar.dataDir, 'artifacts', 'c-1', 'gone');
    await rm(directory, { recursive: true });
    await writeFile(directory, 'not a directory');
    const response = await fetch(url);
    expect([response.status, await response.text()]).toEqual([
      410,
      'artifact "gone/x.pt" of job "c-1" is recorded, but its file is gone from the artifact store\n',
    ]);
  });
});

describe('Connect with --auth-token-file', () => {
  const READ = 'r'.repeat(32);
  const WRITE = 'w'.repeat(32);
  let dir: string;
  let sidecar: SidecarProcess;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tc-connect-'));
    const tokenFile = path.join(dir, 'tokens');
    await writeFile(tokenFile, `read ${READ}\nwrite ${WRITE}\n`);
    sidecar = await startSidecarProcess({ args: ['--quiet', '--auth-token-file', tokenFile] });
    const grpc = createClient(TrainingCallbacks, sidecar.address);
    try {
      await grpc.beginTraining(
        { jobId: 't-1', taskType: TaskType.IMAGE_CLASSIFICATION },
        { metadata: { authorization: `Bearer ${WRITE}` } },
      );
    } finally {
      grpc.close();
    }
  });
  afterAll(async () => {
    await sidecar?.[Symbol.asyncDispose]();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('needs a token (UNAUTHENTICATED), and a read token suffices for reads', async () => {
    const none = await refusal(connectClient(sidecar.httpAddress!).getJob({ jobId: 't-1' }));
    expect(none.code).toBe(Code.Unauthenticated);
    expect(none.rawMessage).toContain('needs a token and none was sent');
    const wrong = await refusal(connectClient(sidecar.httpAddress!, 'x'.repeat(32)).getJob({ jobId: 't-1' }));
    expect(wrong.code).toBe(Code.Unauthenticated);
    const read = connectClient(sidecar.httpAddress!, READ);
    expect((await read.getJob({ jobId: 't-1' })).job?.jobId).toBe('t-1');
    // Streams check the token too.
    const stream = await refusal(
      (async () => {
        for await (const _ of connectClient(sidecar.httpAddress!).watchJobs({})) break;
      })(),
    );
    expect(stream.code).toBe(Code.Unauthenticated);
  });

  it('refuses writes even with a write token, and downloads need a token', async () => {
    const write = connectClient(sidecar.httpAddress!, WRITE);
    const refused = await refusal(write.beginEpoch({ jobId: 't-1', epoch: 0 }));
    expect(refused.code).toBe(Code.PermissionDenied);
    const base = `http://${sidecar.httpAddress}`;
    expect((await fetch(`${base}${artifactDownloadPath('t-1', 'a.pt')}`)).status).toBe(401);
    const withToken = await fetch(`${base}${artifactDownloadPath('t-1', 'a.pt')}`, {
      headers: { authorization: `Bearer ${READ}` },
    });
    expect(withToken.status).toBe(404); // authorised; the job has no such artifact
    // The app itself loads without a token: it asks for one when a call needs it.
    expect((await fetch(`${base}/`)).status).not.toBe(401);
  });
});
