// The watchers of the watch benchmark (watch-bench.ts), in a process of their own so that their
// work never runs on the load generator's event loop. Commands on stdin, one per line:
//   on      opens the streams (WatchJob on the jobs in turn, every fifth one WatchJobs), from the head
//   off     cancels them
//   report  prints "events N messages M errors E" (events and the messages that carried them, received
//           since start, heartbeats excluded), then the events and their bytes by stream and kind
//           ("jobs.job=N/BYTES job.batch=N/BYTES …") and the messages and their bytes by stream
//           ("msg.jobs=N/BYTES msg.job=N/BYTES")
//   node --conditions=@training-callbacks/source watch-bench-watchers.ts ADDRESS WATCHERS JOB_ID...
//
// The streams are read as raw bytes (a plain grpc-js client, no protobuf-es decoding): a message is
// its seq, then a heartbeat or its events (a repeated field), and an event's kind is the tag that
// follows the event's own seq. A viewer decodes on its own machine; here its decoding would
// only take CPU from the load generator, which shares this CPU with the watchers (see watch-bench.ts),
// and make the ingest rate differ between the phases.
import { createInterface } from 'node:readline';
import { create, toBinary } from '@bufbuild/protobuf';
import { Client, type ClientReadableStream, credentials } from '@grpc/grpc-js';
import { WatchJobRequestSchema, WatchJobsRequestSchema } from '@training-callbacks/proto';

const [address, countArg, ...jobIds] = process.argv.slice(2);
const count = Number(countArg);
if (!address || !(count > 0) || jobIds.length === 0) {
  console.error('usage: watch-bench-watchers.ts ADDRESS WATCHERS JOB_ID...');
  process.exit(2);
}

const SERVICE = '/trainingcallbacks.v1.TrainingCallbacks';
/**
 * Field numbers as in the proto: of the response's heartbeat and `repeated events`
 * (WatchJobsResponse, WatchJobResponse), and of the event kinds (WatchJobsEvent, WatchJobEvent).
 */
const FIELDS = {
  jobs: { heartbeat: 3, events: 4, kinds: { 2: 'job' } },
  job: { heartbeat: 6, events: 8, kinds: { 2: 'job', 3: 'epoch', 4: 'batch', 5: 'artifact' } },
} as const satisfies Record<string, { heartbeat: number; events: number; kinds: Record<number, string> }>;

// One channel per ten watchers: a dashboard's viewers come from many browsers, not one connection.
const clients = Array.from(
  { length: Math.ceil(count / 10) },
  () => new Client(address, credentials.createInsecure()),
);
let events = 0;
let messages = 0;
let errors = 0;
/** Events and bytes by stream and kind ('jobs.job', 'job.batch', …): what the fan-out is made of. */
const byKind = new Map<string, { events: number; bytes: number }>();
/** Messages (heartbeats excluded) and bytes by stream ('jobs', 'job'). */
const byStream = new Map<string, { events: number; bytes: number }>();
let streams: ClientReadableStream<Buffer>[] = [];

function tally(map: Map<string, { events: number; bytes: number }>, key: string, bytes: number): void {
  const counts = map.get(key) ?? { events: 0, bytes: 0 };
  counts.events++;
  counts.bytes += bytes;
  map.set(key, counts);
}

function readVarint(bytes: Buffer, at: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const byte = bytes[at++]!;
    value += (byte & 0x7f) * scale;
    if (!(byte & 0x80)) return [value, at];
    scale *= 128;
  }
}

/** After a message's (or an event's) seq: field 1, a varint, first when present. */
function afterSeq(bytes: Buffer, at: number): number {
  if (bytes[at] !== 0x08) return at;
  return readVarint(bytes, at + 1)[1];
}

/** Counts the events of one response; false for a heartbeat. */
function countMessage(rpc: 'jobs' | 'job', bytes: Buffer): boolean {
  const fields = FIELDS[rpc];
  let at = afterSeq(bytes, 0);
  let any = false;
  while (at < bytes.length) {
    const [tag, start] = readVarint(bytes, at);
    const [length, body] = readVarint(bytes, start);
    at = body + length;
    if (tag >> 3 === fields.heartbeat) return false;
    if (tag >> 3 !== fields.events) continue;
    const kindTag = bytes[afterSeq(bytes, body)] ?? 0;
    const kind = (fields.kinds as Record<number, string>)[kindTag >> 3] ?? 'unknown';
    events++;
    any = true;
    tally(byKind, `${rpc}.${kind}`, at - start);
  }
  return any;
}

function open(): void {
  for (let i = 0; i < count; i++) {
    const client = clients[i % clients.length]!;
    const rpc = i % 5 === 4 ? 'jobs' : 'job';
    const request =
      rpc === 'jobs'
        ? toBinary(WatchJobsRequestSchema, create(WatchJobsRequestSchema, { fromHead: true }))
        : toBinary(
            WatchJobRequestSchema,
            create(WatchJobRequestSchema, { jobId: jobIds[i % jobIds.length]!, fromHead: true }),
          );
    const stream = client.makeServerStreamRequest<Uint8Array, Buffer>(
      `${SERVICE}/${rpc === 'jobs' ? 'WatchJobs' : 'WatchJob'}`,
      (bytes) => Buffer.from(bytes),
      (bytes) => bytes,
      request,
    );
    stream.on('data', (bytes: Buffer) => {
      if (!countMessage(rpc, bytes)) return;
      messages++;
      tally(byStream, rpc, bytes.length);
    });
    stream.on('error', (error: Error & { code?: number }) => {
      if (error.code === 1) return; // CANCELLED: ours
      errors++;
      console.error(`watch stream failed: ${error.message}`);
    });
    streams.push(stream);
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  switch (line.trim()) {
    case 'on':
      if (streams.length === 0) open();
      break;
    case 'off':
      for (const stream of streams) stream.cancel();
      streams = [];
      break;
    case 'report':
      console.log(
        `events ${events} messages ${messages} errors ${errors} ${[
          ...[...byKind].map(([kind, n]) => `${kind}=${n.events}/${n.bytes}`),
          ...[...byStream].map(([rpc, n]) => `msg.${rpc}=${n.events}/${n.bytes}`),
        ].join(' ')}`,
      );
      break;
  }
});
console.log('ready');
