// The yardstick of the watch benchmark (watch-bench.ts): the least a server can spend on the same
// fan-out — a bare grpc-js server (no store, no feed, no protobuf-es) that writes ready-made bytes
// to every WatchJob / WatchJobs stream at the rates and sizes the sidecar's streams had. Its CPU is
// what the gRPC writes alone cost, the part of the watchers' cost no change to the sidecar's watch
// code can remove. Prints "listening on ADDR".
//   node --conditions=@training-callbacks/source watch-bench-floor.ts '{"job":[RATE,BYTES,EVENTS],"jobs":[…]}'
// RATE: messages per second per stream of that RPC; BYTES: the mean size of such a message; EVENTS:
// the mean number of events in one.
import { Server, ServerCredentials, type ServerWritableStream } from '@grpc/grpc-js';

const SERVICE = '/trainingcallbacks.v1.TrainingCallbacks';
/** Field numbers of the responses' `repeated events` (as in watch-bench-watchers.ts, from the proto). */
const EVENTS_FIELD = { jobs: 4, job: 8 };
/** The kind every event is given: job (field 2 of WatchJobsEvent and WatchJobEvent). */
const JOB_FIELD = 2;
/** As the sidecar's shared reader (READ_INTERVAL_MS): messages go out once per interval at most. */
const PAGE_MS = 100;

type Spec = Record<'job' | 'jobs', [rate: number, bytes: number, events: number]>;
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

const SEQ = [0x08, ...varint(1 << 20)]; // a seq of a few bytes, as a live feed's

/** A field of `bytes` bytes in all (tag and length included, as far as it can be made that small). */
function field(number: number, bytes: number, head: number[] = []): number[] {
  const room = Math.max(0, bytes - 1 - head.length);
  let length = room - varint(room).length;
  if (length < 0) length = 0;
  const body = [...head, ...new Array(Math.max(0, length - head.length)).fill(0)];
  return [(number << 3) | 2, ...varint(body.length), ...body];
}

/** A response of `events` events and `bytes` bytes in all, each event read as a job event. */
function messageBytes(rpc: 'job' | 'jobs', bytes: number, events: number): Buffer {
  const n = Math.max(1, events);
  const perEvent = Math.max(0, Math.floor((bytes - SEQ.length) / n));
  // An event: its seq, then a job field filling the rest.
  const event = (size: number) => field(EVENTS_FIELD[rpc], size, [...SEQ, ...field(JOB_FIELD, size - 16)]);
  return Buffer.from([...SEQ, ...Array.from({ length: n }, () => event(perEvent)).flat()]);
}

/** Per stream: messages owed per page, and the messages of each event count around the mean. */
const plans = (['job', 'jobs'] as const).map((rpc) => {
  const [rate, bytes, events] = spec[rpc] ?? [0, 0, 1];
  const lower = Math.max(1, Math.floor(events));
  const upper = lower + 1;
  return {
    rpc,
    perPage: (rate * PAGE_MS) / 1000,
    // Alternated so that the mean number of events per message is the sidecar's.
    share: events - lower,
    payloads: [
      messageBytes(rpc, (bytes * lower) / events, lower),
      messageBytes(rpc, (bytes * upper) / events, upper),
    ],
  };
});
const planOf = { job: plans[0]!, jobs: plans[1]! };

interface Follower {
  rpc: 'job' | 'jobs';
  call: ServerWritableStream<Buffer, Buffer>;
  owed: number;
  /** Accumulates the share of the larger messages. */
  larger: number;
}
const followers = new Set<Follower>();

const server = new Server();
for (const rpc of ['job', 'jobs'] as const) {
  server.register<Buffer, Buffer>(
    `${SERVICE}/${rpc === 'jobs' ? 'WatchJobs' : 'WatchJob'}`,
    (call: ServerWritableStream<Buffer, Buffer>) => {
      const follower: Follower = { rpc, call, owed: Math.random(), larger: Math.random() };
      followers.add(follower);
      call.on('cancelled', () => followers.delete(follower));
    },
    (bytes: Buffer) => bytes,
    (bytes: Buffer) => bytes,
    'serverStream',
  );
}
// Owed messages by the time passed (not by ticks): on a busy CPU the interval fires late.
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  const pages = (now - last) / PAGE_MS;
  last = now;
  for (const follower of followers) {
    const plan = planOf[follower.rpc];
    follower.owed += plan.perPage * pages;
    for (; follower.owed >= 1; follower.owed--) {
      follower.larger += plan.share;
      const larger = follower.larger >= 1;
      if (larger) follower.larger--;
      follower.call.write(plan.payloads[larger ? 1 : 0]!);
    }
  }
}, PAGE_MS);
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  console.log(`listening on 127.0.0.1:${port}`);
});
