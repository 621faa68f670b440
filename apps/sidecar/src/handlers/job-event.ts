// The watch events that carry a job — WatchJobs' job event, WatchJob's job event and its epoch event
// (with epoch_job) — as wire bytes around the job's own bytes, encoded once per job change for both
// streams (a response then carries the events' bytes as they are: watch-response.ts). protobuf-es would encode the job again for each event that carries it, and a job message
// (configs, params, tags, custom metrics, timestamps) is the largest of them: after the store's reads
// of the job and the epoch, that encoding was the next cost of the watchers (docs/benchmarks.md). The
// bytes are the ones protobuf-es writes for the same message (job-event.spec.ts checks it).
import { create, toBinary } from '@bufbuild/protobuf';
import {
  type EpochRecord,
  EpochRecordSchema,
  type Job,
  JobSchema,
  type WatchJobEvent,
  WatchJobEventSchema,
  type WatchJobsEvent,
  WatchJobsEventSchema,
} from '@training-callbacks/proto';
import { varintSize, writeVarint } from './batch-event.ts';
import type { EncodedEvent } from './watch-response.ts';

const TWO_32 = 2 ** 32;
const SEQ_TAG = (1 << 3) | 0; // uint64 seq = 1, in both events and both responses
const JOB_FIELD = 2; // Job job = 2, in both events
const EPOCH_FIELD = 3; // EpochRecord epoch = 3 (WatchJobEvent)
const EPOCH_JOB_FIELD = 7; // Job epoch_job = 7 (WatchJobEvent)

/** A job message's bytes, encoded on first use (a job message is never changed once built). */
const jobBytes = new WeakMap<Job, Uint8Array>();

function encodedJob(job: Job): Uint8Array {
  let bytes = jobBytes.get(job);
  if (!bytes) {
    bytes = toBinary(JobSchema, job);
    jobBytes.set(job, bytes);
  }
  return bytes;
}

/** The job list's event at `seq`, with its bytes. */
export function jobsJobEvent(seq: number, job: Job): EncodedEvent<WatchJobsEvent> {
  const message = create(WatchJobsEventSchema, { seq: BigInt(seq), job });
  return { message, bytes: encodeEnvelope(seq, [[JOB_FIELD, encodedJob(job)]]) };
}

/** A job stream's job event at `seq`. */
export function jobJobEvent(seq: number, job: Job): EncodedEvent<WatchJobEvent> {
  const message = create(WatchJobEventSchema, { seq: BigInt(seq), event: { case: 'job', value: job } });
  return { message, bytes: encodeEnvelope(seq, [[JOB_FIELD, encodedJob(job)]]) };
}

/** A job stream's epoch event at `seq`, with the job as of that seq or later (epoch_job). */
export function epochEvent(seq: number, epoch: EpochRecord, job: Job): EncodedEvent<WatchJobEvent> {
  const message = create(WatchJobEventSchema, {
    seq: BigInt(seq),
    event: { case: 'epoch', value: epoch },
    epochJob: job,
  });
  const bytes = encodeEnvelope(seq, [
    [EPOCH_FIELD, toBinary(EpochRecordSchema, epoch)],
    [EPOCH_JOB_FIELD, encodedJob(job)],
  ]);
  return { message, bytes };
}

/**
 * A message of field 1 (the seq, left out at 0 as protobuf writes it) and then `fields`, each a
 * message field given as its bytes, in field order (a repeated field's elements one after another): a
 * set message field is written even when empty.
 */
export function encodeEnvelope(
  seq: number,
  fields: ReadonlyArray<readonly [field: number, bytes: Uint8Array]>,
): Uint8Array {
  const seqLo = seq >>> 0;
  const seqHi = Math.floor(seq / TWO_32);
  let size = seq === 0 ? 0 : 1 + varintSize(seqLo, seqHi);
  for (const [, bytes] of fields) size += 1 + varintSize(bytes.length, 0) + bytes.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  if (seq !== 0) {
    out[at++] = SEQ_TAG;
    at = writeVarint(out, at, seqLo, seqHi);
  }
  for (const [field, bytes] of fields) {
    out[at++] = (field << 3) | 2;
    at = writeVarint(out, at, bytes.length, 0);
    out.set(bytes, at);
    at += bytes.length;
  }
  return out;
}
