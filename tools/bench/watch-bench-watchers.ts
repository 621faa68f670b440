// The watchers of the watch benchmark (watch-bench.ts), in a process of their own so that their
// work never runs on the load generator's event loop. Commands on stdin, one per line:
//   on      opens the streams (WatchJob on the jobs in turn, every fifth one WatchJobs), from the head
//   off     cancels them
//   report  prints "events N errors M" (events received since start, heartbeats excluded), then the
//           events and their bytes by stream and kind ("jobs.job=N/BYTES job.batch=N/BYTES …")
//   node --conditions=@training-callbacks/source watch-bench-watchers.ts ADDRESS WATCHERS JOB_ID...
//
// The streams are read as raw bytes (a plain grpc-js client, no protobuf-es decoding): the event's
// kind is the tag that follows the seq. A viewer decodes on its own machine; here its decoding would
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
/** Field numbers of the events, as in the proto (WatchJobsResponse, WatchJobResponse). */
const KINDS = {
  jobs: { 2: 'job', 3: 'heartbeat' },
  job: { 2: 'job', 3: 'epoch', 4: 'batch', 5: 'artifact', 6: 'heartbeat' },
} as const satisfies Record<string, Record<number, string>>;

// One channel per ten watchers: a dashboard's viewers come from many browsers, not one connection.
const clients = Array.from(
  { length: Math.ceil(count / 10) },
  () => new Client(address, credentials.createInsecure()),
);
let events = 0;
let errors = 0;
/** Events and bytes by stream and kind ('jobs.job', 'job.batch', …): what the fan-out is made of. */
const byKind = new Map<string, { events: number; bytes: number }>();
let streams: ClientReadableStream<Buffer>[] = [];

/** The field number of the event in a WatchJob(s)Response: the tag after the seq (field 1, varint). */
function eventField(bytes: Buffer): number {
  let at = 0;
  if (bytes[0] === 0x08) {
    at = 1;
    while (bytes[at]! & 0x80) at++;
    at++;
  }
  return (bytes[at] ?? 0) >> 3;
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
      const kind = (KINDS[rpc] as Record<number, string>)[eventField(bytes)] ?? 'unknown';
      if (kind === 'heartbeat') return;
      events++;
      const counts = byKind.get(`${rpc}.${kind}`) ?? { events: 0, bytes: 0 };
      counts.events++;
      counts.bytes += bytes.length;
      byKind.set(`${rpc}.${kind}`, counts);
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
        `events ${events} errors ${errors} ${[...byKind].map(([kind, n]) => `${kind}=${n.events}/${n.bytes}`).join(' ')}`,
      );
      break;
  }
});
console.log('ready');
