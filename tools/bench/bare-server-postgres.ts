// The PostgreSQL yardstick for the end-epoch benchmark (pg-bench.ts): the least a sidecar on PostgreSQL
// can do — a grpc-js unary handler that commits one row (one autocommitted upsert, a prepared statement
// on one pooled connection of the `pg` driver) before it answers. No validation, no catalog, no ORM.
// Run as a child process; prints "listening on ADDR".
//   node --conditions=@training-callbacks/source bare-server-postgres.ts postgres://…
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { addService, RpcError, Status } from '@training-callbacks/grpc-adapter';
import { TrainingCallbacks } from '@training-callbacks/proto';
import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.argv[2], max: 4 });
await pool.query(
  'create table if not exists bare_epoch (job text, epoch integer, metrics jsonb, primary key (job, epoch))',
);
const upsert = {
  name: 'bare-upsert',
  text: 'insert into bare_epoch (job, epoch, metrics) values ($1, $2, $3) on conflict (job, epoch) do update set metrics = excluded.metrics',
};

const unimplemented = async () => {
  throw new RpcError(Status.UNIMPLEMENTED, 'bare server');
};
const server = new Server();
addService(server, TrainingCallbacks, {
  ...Object.fromEntries(TrainingCallbacks.methods.map((m) => [m.localName, unimplemented])),
  endEpoch: async (request: { jobId: string; epoch: number; metrics: Record<string, number> }) => {
    await pool.query({ ...upsert, values: [request.jobId, request.epoch, JSON.stringify(request.metrics)] });
    return {};
  },
} as never);
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.log(`listening on 127.0.0.1:${port}`);
});
