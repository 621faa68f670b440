// WatchJobs and WatchJob: server streams that follow the store's change feed through one shared
// reader (watch-feed.ts: one read of the feed per wake-up for every subscriber, each event built and
// encoded once for all its subscribers, a slow subscriber catching up on its own from its cursor).
// Events are coalesced (one per job, epoch, block or artifact, carrying its current state at the
// largest seq of its changes) and go out in seq order, the events of a window (the reader's page)
// packed into one message at its last event's seq (watch-response.ts), so resuming after the last seq
// received misses and repeats nothing. The feed lives in the database; the in-process commit signal only wakes the
// reader early, and it polls the feed every keepalive interval too (writes of another sidecar sharing
// the database).

import { create, type MessageInitShape, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { type CallContext, RpcError, Status } from '@training-callbacks/grpc-adapter';
import {
  type Job,
  type WatchJobEvent,
  WatchJobEventSchema,
  type WatchJobRequest,
  WatchJobResponseSchema,
  type WatchJobsEvent,
  type WatchJobsRequest,
  WatchJobsResponseSchema,
} from '@training-callbacks/proto';
import type { ChangeRecord, Store } from '@training-callbacks/store';
import { artifactToProto, epochToProto } from '../convert.ts';
import { checkJobId } from '../validation.ts';
import { batchEventMessage } from './batch-event.ts';
import type { HandlerContext, HandlerGroup } from './context.ts';
import { epochEvent, jobJobEvent, jobsJobEvent } from './job-event.ts';
import { type FeedEvent, type FeedNotice, type Topic, WatchFeed } from './watch-feed.ts';
import { type EncodedEvent, responsePacker } from './watch-response.ts';

export interface WatchOptions {
  /** A heartbeat after this long without an event (and a re-read of the feed). */
  keepaliveMs: number;
}

type JobsResponse = MessageInitShape<typeof WatchJobsResponseSchema>;
type JobResponse = MessageInitShape<typeof WatchJobResponseSchema>;

/** Numbers of the `repeated events` fields of WatchJobsResponse and WatchJobResponse. */
const JOBS_EVENTS_FIELD = 4;
const JOB_EVENTS_FIELD = 8;

/** Job messages kept for reuse (e.g. the job list's event and a job's epoch event of one page). */
const JOB_MESSAGES_KEPT = 1000;

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

/** Changes the job list shows: batch blocks and artifacts leave the job row as it was. */
function changesJobRow(change: ChangeRecord): boolean {
  return change.kind !== 'batch' && change.kind !== 'artifact';
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

function heartbeat(seq: number) {
  return { seq: BigInt(seq), heartbeat: { at: timestampFromDate(new Date()) } };
}

/**
 * Job messages by job, each with the feed seq it is valid for: read after every feed row up to that
 * seq had committed, it stands for the job at any event up to that seq. A cache validated by the feed,
 * never the source of truth: an event after it reads the job again (whichever sidecar wrote).
 */
export class JobMessages {
  readonly #store: Pick<Store, 'getJob'>;
  readonly #toProto: HandlerContext['jobsToProto'];
  readonly #entries = new Map<string, { job: Job; seq: number }>();

  constructor(store: Pick<Store, 'getJob'>, toProto: HandlerContext['jobsToProto']) {
    this.#store = store;
    this.#toProto = toProto;
  }

  /** The job as it is at `seq` or later; `coveredSeq` ≥ `seq`: every feed row up to it has committed. */
  async get(jobId: string, seq: number, coveredSeq: number): Promise<Job | undefined> {
    const entry = this.#entries.get(jobId);
    if (entry && entry.seq >= seq) return entry.job;
    const record = await this.#store.getJob(jobId);
    if (!record) {
      this.#entries.delete(jobId);
      return undefined;
    }
    const [job] = await this.#toProto([record]);
    const current = this.#entries.get(jobId);
    if (!current || current.seq < coveredSeq) {
      this.#entries.delete(jobId); // re-inserted last: the map's order is the order of use
      this.#entries.set(jobId, { job: job!, seq: coveredSeq });
      if (this.#entries.size > JOB_MESSAGES_KEPT) this.#entries.delete(this.#entries.keys().next().value!);
    }
    return job;
  }
}

export function watchHandlers(
  ctx: HandlerContext,
  options: WatchOptions,
): HandlerGroup<'watchJobs' | 'watchJob'> {
  const { store } = ctx;
  const feed = new WatchFeed(store, { keepaliveMs: options.keepaliveMs });
  const jobs = new JobMessages(store, ctx.jobsToProto);
  const jobsResponses = responsePacker(() => create(WatchJobsResponseSchema), JOBS_EVENTS_FIELD);
  const jobResponses = responsePacker(() => create(WatchJobResponseSchema), JOB_EVENTS_FIELD);

  const jobList: Topic<EncodedEvent<WatchJobsEvent>> = {
    key: 'jobs',
    rows: (page) => page.filter(changesJobRow),
    async *events(rows, coveredSeq): AsyncGenerator<FeedEvent<EncodedEvent<WatchJobsEvent>>> {
      for (const group of coalesce(rows, (c) => c.jobId)) {
        const job = await jobs.get(group.change.jobId, group.seq, coveredSeq);
        // The job's bytes are encoded once for this event and the job stream's (job-event.ts).
        if (job) yield { seq: group.seq, message: jobsJobEvent(group.seq, job) };
      }
    },
  };

  function jobTopic(jobId: string): Topic<EncodedEvent<WatchJobEvent>> {
    return {
      key: `job:${jobId}`,
      jobId,
      rows: (page) => page.filter((c) => c.jobId === jobId),
      async *events(rows, coveredSeq): AsyncGenerator<FeedEvent<EncodedEvent<WatchJobEvent>>> {
        for (const group of coalesce(rows, jobEventKey)) {
          if (group.change.kind === 'batch') {
            // The most frequent event by far: encoded straight from the stored block (batch-event.ts).
            const block = await store.getBatchBlock(group.change.ref!);
            if (block) yield { seq: group.seq, message: batchEventMessage(group.seq, block) };
            continue;
          }
          const message = await jobEvent(group, coveredSeq);
          if (message) yield { seq: group.seq, message };
        }
      },
    };
  }

  async function resolveStart(request: { afterSeq: bigint; fromHead: boolean }): Promise<number> {
    const start = startCursor(request);
    return start === 'head' ? store.headSeq() : Number(start);
  }

  return {
    async *watchJobs(request: WatchJobsRequest, call: CallContext): AsyncGenerator<JobsResponse> {
      const seq = await resolveStart(request);
      yield heartbeat(seq);
      yield* responses(feed.follow(jobList, seq, call.signal), jobsResponses);
    },

    async *watchJob(request: WatchJobRequest, call: CallContext): AsyncGenerator<JobResponse> {
      checkJobId(request.jobId);
      await ctx.jobs.existing(request.jobId);
      const seq = await resolveStart(request);
      yield heartbeat(seq);
      yield* responses(feed.follow(jobTopic(request.jobId), seq, call.signal), jobResponses);
    },
  };

  /** The stream's messages: each notice's events packed (see responsePacker), or a heartbeat. */
  async function* responses<E, R>(
    notices: AsyncIterable<FeedNotice<EncodedEvent<E>>>,
    pack: (events: readonly FeedEvent<EncodedEvent<E>>[]) => readonly R[],
  ): AsyncGenerator<R | ReturnType<typeof heartbeat>> {
    for await (const notice of notices) {
      if (notice.events.length === 0) yield heartbeat(notice.seq);
      else yield* pack(notice.events);
    }
  }

  /** The job stream's event of a group other than a batch block (see batchEventMessage). */
  async function jobEvent(
    group: Coalesced,
    coveredSeq: number,
  ): Promise<EncodedEvent<WatchJobEvent> | undefined> {
    const { change, seq } = group;
    if (group.key === 'job') {
      const job = await jobs.get(change.jobId, seq, coveredSeq);
      return job && jobJobEvent(seq, job);
    }
    if (change.kind === 'epoch') {
      const epoch = await store.getEpoch(change.jobId, change.ref!);
      const job = await jobs.get(change.jobId, seq, coveredSeq);
      return epoch && job && epochEvent(seq, epochToProto(epoch), job);
    }
    const artifact = await store.getArtifact(change.ref!);
    if (!artifact) return undefined;
    const message = create(WatchJobEventSchema, {
      seq: BigInt(seq),
      event: { case: 'artifact', value: artifactToProto(artifact) },
    });
    return { message, bytes: toBinary(WatchJobEventSchema, message) };
  }
}
