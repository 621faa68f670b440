import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Client, credentials, Metadata, Server, ServerCredentials } from '@grpc/grpc-js';
import {
  BatchMetricsBlockSchema,
  JobStatus,
  type ReportBatchMetricsRequest,
  TrainingCallbacks,
} from '@training-callbacks/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CallContext,
  cancelCall,
  createClient,
  createMethodDefinition,
  preEncoded,
  RpcError,
  type ServiceClient,
  type ServiceHandlers,
  Status,
  sendsToMany,
} from './index.ts';

type Methods = typeof TrainingCallbacks extends { method: infer M } ? M : never;

const unimplemented = async () => {
  throw new RpcError(Status.UNIMPLEMENTED, 'not in this test');
};

const internalErrors: unknown[] = [];
/** A failure the server's table knows (as the sidecar's knows a full disk). */
class KnownFailure extends Error {}
const mapError = (error: unknown) =>
  error instanceof KnownFailure ? new RpcError(Status.UNAVAILABLE, `mapped: ${error.message}`) : undefined;
/** How each UploadArtifact handler's read of its stream ended ("ended after n" or the error's code). */
const uploadEndings: string[] = [];
let uploadEnded: (() => void) | undefined;
/** What each ReportBatchMetrics handler was given, and its `cancelled` when it answered. */
const batchContexts: { context: CallContext; cancelledAtEnd: boolean }[] = [];
const implemented: Pick<ServiceHandlers<Methods>, 'getJob' | 'reportBatchMetrics' | 'uploadArtifact'> = {
  getJob: async (request) => {
    if (request.jobId === 'missing') throw new RpcError(Status.NOT_FOUND, 'job "missing" not found');
    if (request.jobId === 'bug') throw new Error('secret internals');
    if (request.jobId === 'known') throw new KnownFailure('the disk is full');
    return { job: { jobId: request.jobId, status: JobStatus.RUNNING } };
  },
  reportBatchMetrics: async (requests: AsyncIterable<ReportBatchMetricsRequest>, context) => {
    let points = 0;
    for await (const request of requests) for (const block of request.blocks) points += block.values.length;
    batchContexts.push({ context, cancelledAtEnd: context.cancelled });
    return { acceptedPoints: BigInt(points) };
  },
  uploadArtifact: async (requests) => {
    let messages = 0;
    try {
      for await (const _ of requests) messages++;
      uploadEndings.push(`ended after ${messages}`);
    } catch (error) {
      uploadEndings.push(error instanceof RpcError ? error.codeName : String(error));
      throw error;
    } finally {
      uploadEnded?.();
    }
    return {};
  },
};
const handlers = {
  ...Object.fromEntries(TrainingCallbacks.methods.map((m) => [m.localName, unimplemented])),
  ...implemented,
} as ServiceHandlers<Methods>;

let server: Server;
let client: ServiceClient<Methods>;

beforeAll(async () => {
  const { addService } = await import('./index.ts');
  server = new Server();
  addService(server, TrainingCallbacks, handlers, {
    mapError,
    onInternalError: (e) => internalErrors.push(e),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  client = createClient(TrainingCallbacks, `127.0.0.1:${port}`);
  raw = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
});

/** A client that sends bytes as they are, to reach the server's decoder with garbage. */
let raw: Client;
const identity = (b: Buffer) => b;
/** Field 1 (job_id, a string) declared 100 bytes long with 1 byte following: no message decodes it. */
const GARBAGE = Buffer.from([0x0a, 0x64, 0x41]);

function rawUnary(method: string, bytes: Buffer): Promise<{ code: number; details: string }> {
  return new Promise((resolve) => {
    raw.makeUnaryRequest(`/${TrainingCallbacks.typeName}/${method}`, identity, identity, bytes, (error) =>
      resolve({ code: error?.code ?? Status.OK, details: error?.details ?? '' }),
    );
  });
}

afterAll(() => {
  client.close();
  raw.close();
  server.forceShutdown();
});

describe('grpc-adapter over a real loopback server', () => {
  it('round-trips a unary call through protobuf-es serialisers', async () => {
    const response = await client.getJob({ jobId: 'job-1' });
    expect(response.job?.jobId).toBe('job-1');
    expect(response.job?.status).toBe(JobStatus.RUNNING);
  });

  it('carries an RpcError status and message to the client', async () => {
    const error = await client.getJob({ jobId: 'missing' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcError);
    expect((error as RpcError).code).toBe(Status.NOT_FOUND);
    expect((error as RpcError).message).toContain('job "missing" not found');
  });

  it('turns any other throw into INTERNAL without leaking its message', async () => {
    const error = (await client.getJob({ jobId: 'bug' }).catch((e: unknown) => e)) as RpcError;
    expect(error.code).toBe(Status.INTERNAL);
    expect(error.message).not.toContain('secret');
    expect(internalErrors).toHaveLength(1);
  });

  it("maps errors its failure table knows to the table's status, not INTERNAL", async () => {
    const before = internalErrors.length;
    const error = (await client.getJob({ jobId: 'known' }).catch((e: unknown) => e)) as RpcError;
    expect(error.code).toBe(Status.UNAVAILABLE);
    expect(error.message).toBe('mapped: the disk is full');
    expect(internalErrors).toHaveLength(before);
  });

  it('answers undecodable request bytes with INVALID_ARGUMENT naming the message type', async () => {
    const answer = await rawUnary('GetJob', GARBAGE);
    expect(answer.code).toBe(Status.INVALID_ARGUMENT);
    expect(answer.details).toContain('trainingcallbacks.v1.GetJobRequest');
    // A well-formed message through the same raw path still works.
    const ok = await rawUnary('GetJob', Buffer.from([0x0a, 0x01, 0x41]));
    expect(ok.code).toBe(Status.OK);
  });

  it('refuses a client stream with an undecodable message with INVALID_ARGUMENT', async () => {
    const answer = await new Promise<{ code: number; details: string }>((resolve) => {
      const call = raw.makeClientStreamRequest(
        `/${TrainingCallbacks.typeName}/ReportBatchMetrics`,
        identity,
        identity,
        new Metadata(),
        {},
        (error) => resolve({ code: error?.code ?? Status.OK, details: error?.details ?? '' }),
      );
      call.write(Buffer.from([0x0a, 0x01, 0x6a]));
      call.write(GARBAGE);
      call.end();
    });
    expect(answer.code).toBe(Status.INVALID_ARGUMENT);
    expect(answer.details).toContain('trainingcallbacks.v1.ReportBatchMetricsRequest');
  });

  it('streams client messages and answers once', async () => {
    const block = create(BatchMetricsBlockSchema, { names: ['loss'], steps: [1n, 2n], values: [0.5, 0.25] });
    const response = await client.reportBatchMetrics([
      { jobId: 'j', blocks: [block] },
      { jobId: 'j', blocks: [block, block] },
    ]);
    expect(response.acceptedPoints).toBe(6n);
  });

  it("tells a handler whether its call is cancelled: not while it runs; a grpc-js client's reset after the answer is one", async () => {
    batchContexts.length = 0;
    await client.reportBatchMetrics([{ jobId: 'j' }]);
    const [{ context, cancelledAtEnd }] = batchContexts as [(typeof batchContexts)[number]];
    expect(cancelledAtEnd).toBe(false);
    await expect.poll(() => context.cancelled, { timeout: 2000 }).toBe(true);
  });

  it('sends the bytes of a pre-encoded request as they are', async () => {
    const schema = TrainingCallbacks.method.reportBatchMetrics.input;
    const bytes = toBinary(
      schema,
      create(schema, { jobId: 'j', blocks: [{ names: ['a', 'b'], steps: [1n], values: [1, 2] }] }),
    );
    const response = await client.reportBatchMetrics([preEncoded(schema, bytes), preEncoded(schema, bytes)]);
    expect(response.acceptedPoints).toBe(4n);
  });

  // The handler must hear of a cancel at once: it may hold a file or a transaction until it does.
  // It hears either CANCELLED or the end of what was sent (a grpc-js cancel sends END_STREAM before
  // RST_STREAM) — but without a deadline, only a cancel that reached the server ends it at all.
  describe('a client stream cancelled mid-way (no deadline)', () => {
    const UPLOAD = `/${TrainingCallbacks.typeName}/UploadArtifact`;
    const chunk = Buffer.from([0x12, 0x03, 0x61, 0x62, 0x63]); // UploadArtifactRequest{chunk: "abc"}
    const handlerEnding = () =>
      new Promise<string>((resolve) => {
        uploadEnded = () => resolve(uploadEndings.at(-1)!);
      });

    it('ends its handler when written and cancelled in one go (grpc-js starts the call after such a cancel)', async () => {
      const before = internalErrors.length;
      for (let round = 0; round < 10; round++) {
        const ending = handlerEnding();
        const call = raw.makeClientStreamRequest(UPLOAD, identity, identity, new Metadata(), {}, () => {});
        call.write(chunk);
        call.write(chunk);
        cancelCall(call);
        expect(['CANCELLED', 'ended after 2']).toContain(await ending);
      }
      // A cancelled stream's ERR_STREAM_PREMATURE_CLOSE is CANCELLED, not a bug.
      expect(internalErrors).toHaveLength(before);
    });

    it('ends its handler when an AbortSignal is aborted right after the call', async () => {
      const ending = handlerEnding();
      const abort = new AbortController();
      const never = (async function* () {
        yield { part: { case: 'chunk' as const, value: new Uint8Array([1]) } };
        await new Promise(() => {});
      })();
      const answer = client
        .uploadArtifact(never, { signal: abort.signal })
        .catch((e: RpcError) => e.codeName);
      abort.abort();
      expect(await answer).toBe('CANCELLED');
      expect(['CANCELLED', 'ended after 0', 'ended after 1']).toContain(await ending);
    });
  });

  it('honours deadlines', async () => {
    const error = (await client
      .getJob({ jobId: 'x' }, { deadline: new Date(Date.now() - 1) })
      .catch((e) => e)) as RpcError;
    expect(error.code).toBe(Status.DEADLINE_EXCEEDED);
  });
});

describe('sendsToMany', () => {
  const watchJobs = TrainingCallbacks.method.watchJobs;
  const serialize = createMethodDefinition(watchJobs).responseSerialize;

  it('serialises a marked message once: every call writes the bytes of the first encoding', () => {
    const message = sendsToMany(
      create(watchJobs.output, { seq: 7n, events: [{ seq: 7n, job: { jobId: 'a' } }] }),
    );
    const first = serialize(message);
    // Changed after marking (which the contract forbids), a re-encoding would show the change.
    message.seq = 8n;
    const second = serialize(message);
    expect(second).toBe(first);
    expect(fromBinary(watchJobs.output, second).seq).toBe(7n);
  });

  it('writes the bytes it was given with the message, without encoding the message', () => {
    const message = create(watchJobs.output, { seq: 7n });
    const given = toBinary(watchJobs.output, create(watchJobs.output, { seq: 9n }));
    expect(fromBinary(watchJobs.output, serialize(sendsToMany(message, given))).seq).toBe(9n);
  });

  it('encodes unmarked messages on every write', () => {
    const message = create(watchJobs.output, { seq: 7n });
    const first = serialize(message);
    message.seq = 8n;
    expect(fromBinary(watchJobs.output, serialize(message)).seq).toBe(8n);
    expect(fromBinary(watchJobs.output, first).seq).toBe(7n);
  });
});

describe('requestDecoders', () => {
  it("hands a method's handler what its decoder returned, and refuses bytes the decoder throws for with INVALID_ARGUMENT", async () => {
    const { addService } = await import('./index.ts');
    const seen: unknown[] = [];
    const decoding = new Server();
    addService(
      decoding,
      TrainingCallbacks,
      {
        ...handlers,
        reportBatchMetrics: async (requests: AsyncIterable<unknown>) => {
          for await (const request of requests) seen.push(request);
          return {};
        },
      },
      {
        requestDecoders: {
          reportBatchMetrics: (bytes) => {
            if (bytes[0] !== 0x0a) throw new Error('not a job id first');
            return { decodedBytes: bytes.length };
          },
        },
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      decoding.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    const decodingClient = createClient(TrainingCallbacks, `127.0.0.1:${port}`);
    try {
      await decodingClient.reportBatchMetrics([{ jobId: 'j' }, { jobId: 'jj' }]);
      expect(seen).toEqual([{ decodedBytes: 3 }, { decodedBytes: 4 }]);
      // Other methods keep protobuf-es' decoding.
      const job = await decodingClient.getJob({ jobId: 'x' });
      expect(job.job?.jobId).toBe('x');
      const refused = await decodingClient.reportBatchMetrics([{ sessionId: 's' }]).then(
        () => undefined,
        (error: unknown) => error as RpcError,
      );
      expect(refused?.code).toBe(Status.INVALID_ARGUMENT);
      expect(refused?.message).toMatch(
        /not a valid trainingcallbacks\.v1\.ReportBatchMetricsRequest \(not a job id first\)/,
      );
    } finally {
      decodingClient.close();
      decoding.forceShutdown();
    }
  });
});
