// The yardstick of the watch benchmark (watch-bench.ts): the least a server can spend on the same
// fan-out — a bare grpc-js server (no store, no feed, no protobuf-es) that writes ready-made bytes
// to every WatchJob / WatchJobs stream at the rates and sizes the sidecar's streams had. Its CPU is
// what the gRPC writes alone cost, the part of the watchers' cost no change to the sidecar's watch
// code can remove. Prints "listening on ADDR".
//   node --conditions=@training-callbacks/source watch-bench-floor.ts '{"job":{"batch":[RATE,BYTES],…},"jobs":{…}}'
// RATE: events per second per stream of that RPC; BYTES: the mean size of such an event.
import { Server, ServerCredentials, type ServerWritableStream } from '@grpc/grpc-js';

const SERVICE = '/trainingcallbacks.v1.TrainingCallbacks';
/** Field numbers of the events (as in watch-bench-watchers.ts, from the proto). */
const FIELDS: Record<'job' | 'jobs', Record<string, number>> = {
  jobs: { job: 2 },
  job: { job: 2, epoch: 3, batch: 4, artifact: 5 },
};
/** As the sidecar's shared reader: events go out in pages, one page per interval. */
const PAGE_MS = 50;

type Spec = Record<'job' | 'jobs', Record<string, [rate: number, bytes: number]>>;
const spec = JSON.parse(process.argv[2] ?? '{}') as Partial<Spec>;

function varint(value: number): number[] {
  const out: number[] = [];
  while (value > 0x7f) {
    out.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  out.push(value);
  return out;
}

/** An event of `bytes` bytes that a reader classifies as `field` (seq first, then the event's tag). */
function eventBytes(field: number, bytes: number): Buffer {
  const head = [0x08, ...varint(1 << 20)]; // a seq of a few bytes, as a live feed's
  const room = Math.max(0, bytes - head.length - 1);
  let length = room - varint(room).length;
  if (length < 0) length = 0;
  return Buffer.from([...head, (field << 3) | 2, ...varint(length), ...new Array(length).fill(0)]);
}

const kinds = (rpc: 'job' | 'jobs') =>
  Object.entries(spec[rpc] ?? {}).map(([kind, [rate, bytes]]) => ({
    perPage: (rate * PAGE_MS) / 1000,
    payload: eventBytes(FIELDS[rpc][kind] ?? 2, bytes),
  }));
const plan = { job: kinds('job'), jobs: kinds('jobs') };

interface Follower {
  call: ServerWritableStream<Buffer, Buffer>;
  owed: number[];
}
const followers = new Set<Follower & { rpc: 'job' | 'jobs' }>();

const server = new Server();
for (const rpc of ['job', 'jobs'] as const) {
  server.register<Buffer, Buffer>(
    `${SERVICE}/${rpc === 'jobs' ? 'WatchJobs' : 'WatchJob'}`,
    (call: ServerWritableStream<Buffer, Buffer>) => {
      const follower = { rpc, call, owed: plan[rpc].map((_, i) => (i + Math.random()) / plan[rpc].length) };
      followers.add(follower);
      call.on('cancelled', () => followers.delete(follower));
    },
    (bytes: Buffer) => bytes,
    (bytes: Buffer) => bytes,
    'serverStream',
  );
}
// Owed events by the time passed (not by ticks): on a busy CPU the interval fires late.
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  const pages = (now - last) / PAGE_MS;
  last = now;
  for (const follower of followers) {
    plan[follower.rpc].forEach(({ perPage, payload }, i) => {
      follower.owed[i]! += perPage * pages;
      for (; follower.owed[i]! >= 1; follower.owed[i]!--) follower.call.write(payload);
    });
  }
}, PAGE_MS);
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.log(`listening on 127.0.0.1:${port}`);
});
