// A trainer process for the verdict specs: a raw gRPC client generated from the proto (not a client
// SDK — those test their own heartbeats), run as its own process so that it can be SIGKILLed.
//
//   node --conditions=@training-callbacks/source verdict-trainer.ts <address> <job id> [--boot-id ID]
//
// It begins the job naming itself (pid, /proc/self/stat start time, host, boot id, a session id),
// prints `begun {json}`, then heartbeats at the interval the sidecar answered, printing each answer
// (`heartbeat {json}`), and obeys lines on stdin: `epoch N` reports epoch N, `end` ends the job
// COMPLETED and exits, `silent` stops heartbeating.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { createInterface } from 'node:readline';
import { createClient } from '@training-callbacks/grpc-adapter';
import {
  enumNames,
  JobStatusSchema,
  TaskType,
  TrainingCallbacks,
  TrainingOutcome,
} from '@training-callbacks/proto';

const statuses = enumNames<string>()(JobStatusSchema);
/** `RUNNING`, `COMPLETED`, … as the specs match them (from the contract's enum, not re-typed). */
const statusName = (status: number): string => statuses.name(status)?.toUpperCase() ?? 'UNSPECIFIED';

const [address, jobId, ...rest] = process.argv.slice(2);
if (!address || !jobId) throw new Error('usage: verdict-trainer.ts <address> <job id> [--boot-id ID]');
const bootIdArg = rest.indexOf('--boot-id');
const bootId =
  bootIdArg >= 0 ? rest[bootIdArg + 1]! : readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

/** Field 22 of /proc/self/stat (counted after the command name's closing parenthesis). */
const stat = readFileSync('/proc/self/stat', 'utf8');
const startTimeTicks = BigInt(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!);
const sessionId = randomUUID();

const rpc = createClient(TrainingCallbacks, address);
const begun = await rpc.beginTraining({
  jobId,
  taskType: TaskType.IMAGE_CLASSIFICATION,
  framework: 'verdict-trainer',
  trainer: { pid: process.pid, startTimeTicks, hostname: hostname(), bootId, sessionId },
});
const line = (what: string, value: unknown) =>
  process.stdout.write(
    `${what} ${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}\n`,
  );
line('begun', {
  pid: process.pid,
  sessionId,
  heartbeatIntervalSeconds: begun.heartbeatIntervalSeconds,
  leaseSeconds: begun.leaseSeconds,
  processWatched: begun.processWatched,
});

let beating = true;
const timer = setInterval(async () => {
  if (!beating) return;
  try {
    const answer = await rpc.heartbeat({ jobId, sessionId }, { deadline: 1000 });
    line('heartbeat', { status: statusName(answer.status), revived: answer.revived });
  } catch (error) {
    line('heartbeat-failed', { message: (error as Error).message.split('\n')[0] });
  }
}, begun.heartbeatIntervalSeconds * 1000);

for await (const command of createInterface({ input: process.stdin })) {
  const [verb, arg] = command.trim().split(' ');
  if (verb === 'epoch') {
    await rpc.endEpoch({ jobId, epoch: Number(arg), metrics: { accuracy: 0.5 }, sessionId });
    line('reported', { epoch: Number(arg) });
  } else if (verb === 'silent') {
    beating = false;
    line('silent', {});
  } else if (verb === 'end') {
    const { job } = await rpc.endTraining({ jobId, outcome: TrainingOutcome.COMPLETED, sessionId });
    line('ended', { status: statusName(job!.status) });
    break;
  }
}
clearInterval(timer);
rpc.close();
