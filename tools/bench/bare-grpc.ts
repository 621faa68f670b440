// The gRPC half of the end-epoch yardsticks (bare-server.ts on SQLite, bare-server-postgres.ts on
// PostgreSQL): a grpc-js server whose EndEpoch does nothing but the given commit, every other method
// UNIMPLEMENTED. Prints "listening on ADDR" for the benchmark that started it as a child process.
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { addService, RpcError, Status } from '@training-callbacks/grpc-adapter';
import { TrainingCallbacks } from '@training-callbacks/proto';

/** One epoch's row: the job, the epoch and its metrics as JSON text. */
export type CommitEpoch = (jobId: string, epoch: number, metricsJson: string) => unknown;

export function serveBareEndEpoch(commit: CommitEpoch): void {
  const unimplemented = async () => {
    throw new RpcError(Status.UNIMPLEMENTED, 'bare server');
  };
  // The sidecar's own server option (see apps/sidecar/src/sidecar.ts): channelz's per-call statistics
  // cost a few % of a call, and a yardstick that pays them where the sidecar does not flatters the ratio.
  const server = new Server({ 'grpc.enable_channelz': 0 });
  addService(server, TrainingCallbacks, {
    ...Object.fromEntries(TrainingCallbacks.methods.map((m) => [m.localName, unimplemented])),
    endEpoch: async (request: { jobId: string; epoch: number; metrics: Record<string, number> }) => {
      await commit(request.jobId, request.epoch, JSON.stringify(request.metrics));
      return {};
    },
  } as never);
  // A normal exit on SIGTERM, so that a yardstick run with --cpu-prof writes its profile (pg-bench.ts).
  process.once('SIGTERM', () => process.exit(0));
  server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => {
    if (error) throw error;
    console.log(`listening on 127.0.0.1:${port}`);
  });
}
