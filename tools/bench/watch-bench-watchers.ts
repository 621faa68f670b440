// The watchers of the watch benchmark (watch-bench.ts), in a process of their own so that their
// decoding never runs on the load generator's event loop. Commands on stdin, one per line:
//   on      opens the streams (WatchJob on the jobs in turn, every fifth one WatchJobs), from the head
//   off     cancels them
//   report  prints "events N" (events received since start, heartbeats excluded)
//   node --conditions=@training-callbacks/source watch-bench-watchers.ts ADDRESS WATCHERS JOB_ID...
import { createInterface } from 'node:readline';
import { createClient } from '@training-callbacks/grpc-adapter';
import { TrainingCallbacks } from '@training-callbacks/proto';

const [address, countArg, ...jobIds] = process.argv.slice(2);
const count = Number(countArg);
if (!address || !(count > 0) || jobIds.length === 0) {
  console.error('usage: watch-bench-watchers.ts ADDRESS WATCHERS JOB_ID...');
  process.exit(2);
}

// One channel per ten watchers: a dashboard's viewers come from many browsers, not one connection.
const clients = Array.from({ length: Math.ceil(count / 10) }, () => createClient(TrainingCallbacks, address));
let events = 0;
let errors = 0;
let controller: AbortController | undefined;

async function follow(
  stream: AsyncIterable<{ event: { case?: string } }>,
  signal: AbortSignal,
): Promise<void> {
  try {
    for await (const message of stream) if (message.event.case !== 'heartbeat') events++;
  } catch (error) {
    if (!signal.aborted) {
      errors++;
      console.error(`watch stream failed: ${(error as Error).message}`);
    }
  }
}

function open(): void {
  controller = new AbortController();
  const { signal } = controller;
  for (let i = 0; i < count; i++) {
    const client = clients[i % clients.length]!;
    void follow(
      i % 5 === 4
        ? client.watchJobs({ fromHead: true }, { signal })
        : client.watchJob({ jobId: jobIds[i % jobIds.length]!, fromHead: true }, { signal }),
      signal,
    );
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  switch (line.trim()) {
    case 'on':
      if (!controller) open();
      break;
    case 'off':
      controller?.abort();
      controller = undefined;
      break;
    case 'report':
      console.log(`events ${events} errors ${errors}`);
      break;
  }
});
console.log('ready');
