// The trainers' EndEpoch calls of the watch benchmark (watch-bench.ts), in a process of their own: the
// load generator's event loop, busy with 100 k points/s, would otherwise add its own lag to every round
// trip. Each job ends an epoch once a second, the jobs spread over the second. Commands on stdin:
//   report  prints the round trips (ms) since the last report as one JSON array, and "failed N"
//   node --conditions=@training-callbacks/source watch-bench-epochs.ts ADDRESS JOB_ID...
import { createInterface } from 'node:readline';
import { createClient } from '@training-callbacks/grpc-adapter';
import { TrainingCallbacks } from '@training-callbacks/proto';

const [address, ...jobIds] = process.argv.slice(2);
if (!address || jobIds.length === 0) {
  console.error('usage: watch-bench-epochs.ts ADDRESS JOB_ID...');
  process.exit(2);
}
const EPOCH_MS = 1000;
// A channel per job, as each trainer has its own.
const clients = jobIds.map(() => createClient(TrainingCallbacks, address));
let latencies: number[] = [];
let failed = 0;

jobIds.forEach((jobId, index) => {
  let epoch = 0;
  const tick = () => {
    const e = epoch++;
    const sent = performance.now();
    clients[index]!.endEpoch({
      jobId,
      epoch: e,
      metrics: { accuracy: 0.5 + e / 1e4, train_loss: 1 / (e + 1) },
    }).then(
      () => latencies.push(performance.now() - sent),
      (error: Error) => {
        failed++;
        console.error(`EndEpoch failed: ${error.message}`);
      },
    );
  };
  setTimeout(
    () => {
      tick();
      setInterval(tick, EPOCH_MS);
    },
    (index * EPOCH_MS) / jobIds.length,
  );
});

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'report') return;
  console.log(JSON.stringify({ latencies, failed }));
  latencies = [];
});
console.log('ready');
