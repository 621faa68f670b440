// The yardstick for the end-epoch benchmark: the least a sidecar can do — a grpc-js unary handler that
// commits one SQLite row (same pragmas as the store) before it answers. No validation, no catalog, no ORM.
// Run as a child process by sidecar-bench.ts; prints "listening on ADDR".
import Database from 'better-sqlite3';
import { serveBareEndEpoch } from './bare-grpc.ts';

const db = new Database(process.argv[2] ?? ':memory:');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('create table if not exists epoch (job text, epoch integer, metrics text, primary key (job, epoch))');
const upsert = db.prepare('insert or replace into epoch (job, epoch, metrics) values (?, ?, ?)');

serveBareEndEpoch((job, epoch, metrics) => upsert.run(job, epoch, metrics));
