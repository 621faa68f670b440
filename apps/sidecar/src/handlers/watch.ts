// WatchJobs and WatchJob: server streams that follow the store's change feed. A subscriber holds only
// its cursor (the last seq it has passed on) and reads the feed in bounded pages when the stream can
// take more — the adapter pulls the next event only once the previous one was written — so a viewer
// that stops reading costs one page of feed rows, never a queue. Each page is coalesced (one event per
// job, epoch, block or artifact, carrying its current state at the largest seq of its changes), and
// events go out in seq order, so resuming after the last seq received misses and repeats nothing.
// The feed lives in the database; the in-process commit signal only wakes readers early, and the
// keepalive tick re-reads the feed too (writes of another sidecar sharing the database).

import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { type CallContext, RpcError, Status } from '@training-callbacks/grpc-adapter';
import type {
  Job,
  WatchJobRequest,
  WatchJobResponse,
  WatchJobResponseSchema,
  WatchJobsRequest,
  WatchJobsResponseSchema,
} from '@training-callbacks/proto';
import type { ChangeRecord, Store } from '@training-callbacks/store';
import { artifactToProto, blockToProto, epochToProto } from '../convert.ts';
import { checkJobId } from '../validation.ts';
import type { HandlerContext, HandlerGroup } from './context.ts';

/** Feed rows read at once: what a subscriber holds at most besides the event being written. */
const FEED_PAGE = 256;
/** Least time between two reads of the feed by one subscriber while writes keep coming. */
const MIN_READ_INTERVAL_MS = 50;

export interface WatchOptions {
  /** A heartbeat after this long without an event (and a re-read of the feed). */
  keepaliveMs: number;
}

type JobsEvent = MessageInitShape<typeof WatchJobsResponseSchema>;
type JobEvent = MessageInitShape<typeof WatchJobResponseSchema>;

/** A group of changes that one event stands for, and the largest seq among them. */
interface Coalesced {
  key: string;
  change: ChangeRecord;
  seq: number;
}

/** One event per key, each at its largest seq, in seq order. */
export function coalesce(page: readonly ChangeRecord[], keyOf: (c: ChangeRecord) => string): Coalesced[] {
  const groups = new Map<string, Coalesced>();
  for (const change of page) {
    const key = keyOf(change);
    groups.set(key, { key, change, seq: change.seq });
  }
  return [...groups.values()].sort((a, b) => a.seq - b.seq);
}

/**
 * Which event of WatchJob a change belongs to: the job row (job, MLflow sync) or an item. An epoch
 * event carries the job too, so every change belongs to exactly one event and every event has a seq
 * of its own.
 */
function jobEventKey(change: ChangeRecord): string {
  return change.kind === 'job' || change.kind === 'mlflow' ? 'job' : `${change.kind}:${change.ref}`;
}

function startCursor(request: { afterSeq: bigint; fromHead: boolean }): bigint | 'head' {
  if (request.fromHead && request.afterSeq !== 0n) {
    throw new RpcError(
      Status.INVALID_ARGUMENT,
      'from_head and after_seq were both given; send after_seq to resume, or from_head to start now',
    );
  }
  if (request.afterSeq > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RpcError(Status.INVALID_ARGUMENT, `after_seq ${request.afterSeq} is beyond any change`);
  }
  return request.fromHead ? 'head' : request.afterSeq;
}

/**
 * Follows the feed from `after`: yields each non-empty page, or `undefined` when a keepalive is due.
 * Ends when the call is cancelled.
 */
async function* followFeed(
  store: Store,
  signal: AbortSignal,
  after: number,
  options: WatchOptions & { jobId?: string },
): AsyncGenerator<ChangeRecord[] | undefined, void, undefined> {
  let cursor = after;
  let dirty = false;
  let wake: (() => void) | undefined;
  const stop = store.onCommit((jobId) => {
    if (options.jobId !== undefined && jobId !== undefined && jobId !== options.jobId) return;
    dirty = true;
    wake?.();
  });
  const aborted = () => wake?.();
  signal.addEventListener('abort', aborted);
  let lastSent = Date.now();
  let lastRead = 0;
  try {
    while (!signal.aborted) {
      const sinceRead = Date.now() - lastRead;
      if (sinceRead < MIN_READ_INTERVAL_MS) await sleep(MIN_READ_INTERVAL_MS - sinceRead, signal);
      dirty = false;
      lastRead = Date.now();
      const page = await store.readChanges({
        afterSeq: cursor,
        limit: FEED_PAGE,
        ...(options.jobId !== undefined && { jobId: options.jobId }),
      });
      if (page.length > 0) {
        cursor = page[page.length - 1]!.seq;
        yield page;
        lastSent = Date.now();
        continue;
      }
      if (dirty) continue;
      const due = lastSent + options.keepaliveMs - Date.now();
      if (due <= 0) {
        yield undefined;
        lastSent = Date.now();
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, due);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    stop();
    signal.removeEventListener('abort', aborted);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

function heartbeat(seq: number) {
  return {
    seq: BigInt(seq),
    event: { case: 'heartbeat' as const, value: { at: timestampFromDate(new Date()) } },
  };
}

export function watchHandlers(
  ctx: HandlerContext,
  options: WatchOptions,
): HandlerGroup<'watchJobs' | 'watchJob'> {
  const { store, jobsToProto } = ctx;

  async function resolveStart(request: { afterSeq: bigint; fromHead: boolean }): Promise<number> {
    const start = startCursor(request);
    return start === 'head' ? store.headSeq() : Number(start);
  }

  return {
    async *watchJobs(request: WatchJobsRequest, call: CallContext): AsyncGenerator<JobsEvent> {
      let seq = await resolveStart(request);
      yield heartbeat(seq);
      for await (const page of followFeed(store, call.signal, seq, options)) {
        if (page === undefined) {
          yield heartbeat(seq);
          continue;
        }
        // Batch blocks and artifacts leave the job row as it was: nothing to tell the job list.
        const groups = coalesce(
          page.filter((c) => c.kind === 'job' || c.kind === 'epoch' || c.kind === 'mlflow'),
          (c) => c.jobId,
        );
        for (const group of groups) {
          const job = await store.getJob(group.change.jobId);
          if (!job) continue;
          const [proto] = await jobsToProto([job]);
          yield { seq: BigInt(group.seq), event: { case: 'job', value: proto! } };
        }
        seq = page[page.length - 1]!.seq;
      }
    },

    async *watchJob(request: WatchJobRequest, call: CallContext): AsyncGenerator<JobEvent> {
      checkJobId(request.jobId);
      await ctx.jobs.existing(request.jobId);
      const jobId = request.jobId;
      let seq = await resolveStart(request);
      yield heartbeat(seq);
      for await (const page of followFeed(store, call.signal, seq, { ...options, jobId })) {
        if (page === undefined) {
          yield heartbeat(seq);
          continue;
        }
        for (const group of coalesce(page, jobEventKey)) {
          const event = await jobEvent(group);
          if (event)
            yield {
              seq: BigInt(group.seq),
              event: event.event,
              ...(event.epochJob && { epochJob: event.epochJob }),
            };
        }
        seq = page[page.length - 1]!.seq;
      }
    },
  };

  async function jobProto(jobId: string) {
    const job = await store.getJob(jobId);
    return job && (await jobsToProto([job]))[0]!;
  }

  async function jobEvent(
    group: Coalesced,
  ): Promise<{ event: NonNullable<WatchJobResponse['event']>; epochJob?: Job } | undefined> {
    const { change } = group;
    if (group.key === 'job') {
      const job = await jobProto(change.jobId);
      return job && { event: { case: 'job', value: job } };
    }
    if (change.kind === 'epoch') {
      const epoch = await store.getEpoch(change.jobId, change.ref!);
      const job = await jobProto(change.jobId);
      return epoch && job && { event: { case: 'epoch', value: epochToProto(epoch) }, epochJob: job };
    }
    if (change.kind === 'batch') {
      const block = await store.getBatchBlock(change.ref!);
      return block && { event: { case: 'batch', value: blockToProto(block) } };
    }
    const artifact = await store.getArtifact(change.ref!);
    return artifact && { event: { case: 'artifact', value: artifactToProto(artifact) } };
  }
}
