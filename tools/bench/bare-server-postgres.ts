// The PostgreSQL yardstick for the end-epoch benchmark (pg-bench.ts): the least a sidecar on PostgreSQL
// can do — a grpc-js unary handler that commits one row (one autocommitted upsert, a prepared statement
// on one pooled connection of the `pg` driver) before it answers. No validation, no catalog, no ORM.
// Run as a child process; prints "listening on ADDR".
//   node --conditions=@training-callbacks/source bare-server-postgres.ts postgres://…
import pg from 'pg';
import { serveBareEndEpoch } from './bare-grpc.ts';

const pool = new pg.Pool({ connectionString: process.argv[2], max: 4 });
await pool.query(
  'create table if not exists bare_epoch (job text, epoch integer, metrics jsonb, primary key (job, epoch))',
);
const upsert = {
  name: 'bare-upsert',
  text: 'insert into bare_epoch (job, epoch, metrics) values ($1, $2, $3) on conflict (job, epoch) do update set metrics = excluded.metrics',
};

serveBareEndEpoch((job, epoch, metrics) => pool.query({ ...upsert, values: [job, epoch, metrics] }));
