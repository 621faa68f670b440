import { create } from '@bufbuild/protobuf';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import {
  BatchMetricsBlockSchema,
  JobStatus,
  type ReportBatchMetricsRequest,
  TrainingCallbacks,
} from '@training-callbacks/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, RpcError, type ServiceClient, type ServiceHandlers, Status } from './index.ts';

type Methods = typeof TrainingCallbacks extends { method: infer M } ? M : never;

const unimplemented = async () => {
  throw new RpcError(Status.UNIMPLEMENTED, 'not in this test');
};

const internalErrors: unknown[] = [];
const implemented: Pick<ServiceHandlers<Methods>, 'getJob' | 'reportBatchMetrics'> = {
  getJob: async (request) => {
    if (request.jobId === 'missing') throw new RpcError(Status.NOT_FOUND, 'job "missing" not found');
    if (request.jobId === 'bug') throw new Error('secret internals');
    return { job: { jobId: request.jobId, status: JobStatus.RUNNING } };
  },
  reportBatchMetrics: async (requests: AsyncIterable<ReportBatchMetricsRequest>) => {
    let points = 0;
    for await (const request of requests) for (const block of request.blocks) points += block.values.length;
    return { acceptedPoints: BigInt(points) };
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
  addService(server, TrainingCallbacks, handlers, { onInternalError: (e) => internalErrors.push(e) });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  client = createClient(TrainingCallbacks, `127.0.0.1:${port}`);
});

afterAll(() => {
  client.close();
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

  it('streams client messages and answers once', async () => {
    const block = create(BatchMetricsBlockSchema, { names: ['loss'], steps: [1n, 2n], values: [0.5, 0.25] });
    const response = await client.reportBatchMetrics([
      { jobId: 'j', blocks: [block] },
      { jobId: 'j', blocks: [block, block] },
    ]);
    expect(response.acceptedPoints).toBe(6n);
  });

  it('honours deadlines', async () => {
    const error = (await client
      .getJob({ jobId: 'x' }, { deadline: new Date(Date.now() - 1) })
      .catch((e) => e)) as RpcError;
    expect(error.code).toBe(Status.DEADLINE_EXCEEDED);
  });
});
