// The yardstick for the end-epoch benchmark: the least a sidecar can do — a grpc-js unary handler that
// commits one SQLite row (same pragmas as the store) before it answers. No validation, no catalog, no ORM.
// Run as a child process by sidecar-bench.ts; prints "listening on ADDR".
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { addService, RpcError, Status } from '@training-callbacks/grpc-adapter';
import { TrainingCallbacks } from '@training-callbacks/proto';
import Database from 'better-sqlite3';

const db = new Database(process.argv[2] ?? ':memory:');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('create table if not exists epoch (job text, epoch integer, metrics text, primary key (job, epoch))');
const upsert = db.prepare('insert or replace into epoch (job, epoch, metrics) values (?, ?, ?)');

const unimplemented = async () => {
  throw new RpcError(Status.UNIMPLEMENTED, 'bare server');
};
const server = new Server();
addService(server, TrainingCallbacks, {
  ...Object.fromEntries(TrainingCallbacks.methods.map((m) => [m.localName, unimplemented])),
  endEpoch: async (request: { jobId: string; epoch: number; metrics: Record<string, number> }) => {
    upsert.run(request.jobId, request.epoch, JSON.stringify(request.metrics));
    return {};
  },
} as never);
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.log(`listening on 127.0.0.1:${port}`);
});
