// The messages of the watch streams. A response carries the events of a short window (a page of the
// shared reader, or of a subscriber catching up), not one event: with one event per gRPC message the
// writes alone took most of what the watchers may cost the sidecar (docs/benchmarks.md, the
// yardstick). Each event is encoded once (job-event.ts, batch-event.ts); a response is written around
// the events' bytes as they are (a repeated message field on the wire is its elements one after the
// other) and is encoded once for all the subscribers it goes to (sendsToMany).
import { sendsToMany } from '@training-callbacks/grpc-adapter';
import { encodeEnvelope } from './job-event.ts';
import type { FeedEvent } from './watch-feed.ts';

/** A watch event (WatchJobsEvent, WatchJobEvent) and its wire bytes. */
export interface EncodedEvent<E> {
  /** Read by transports that encode on their own (Connect). */
  readonly message: E;
  /** What protobuf-es writes for `message`. */
  readonly bytes: Uint8Array;
}

/**
 * Bytes of events in one response, at most (a single event larger than that goes alone): well under
 * the 4 MiB a gRPC client accepts by default, for a resumed stream that catches up a long way.
 */
export const MAX_RESPONSE_BYTES = 1 << 20;

type Events<E> = readonly FeedEvent<EncodedEvent<E>>[];

/** `events` cut, in order, into runs of at most `maxBytes` of event bytes (each run non-empty). */
export function runsBySize<E>(events: Events<E>, maxBytes = MAX_RESPONSE_BYTES): Events<E>[] {
  const runs: Events<E>[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < events.length; i++) {
    const size = events[i]!.message.bytes.length;
    if (i > start && bytes + size > maxBytes) {
      runs.push(events.slice(start, i));
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (start < events.length) runs.push(start === 0 ? events : events.slice(start));
  return runs;
}

/**
 * Packs a run of events into responses (one, unless the run is longer than MAX_RESPONSE_BYTES), each
 * at the seq of its last event. A run handed to several subscribers (the same array: one page of the
 * reader) is packed once for all of them. `create` makes an empty response; `eventsField` is the
 * number of its `repeated events` field.
 */
export function responsePacker<E, R extends { seq: bigint; events: E[] }>(
  create: () => R,
  eventsField: number,
): (events: Events<E>) => readonly R[] {
  const packed = new WeakMap<Events<E>, readonly R[]>();
  return (events) => {
    let responses = packed.get(events);
    if (!responses) {
      responses = runsBySize(events).map((run) => {
        const last = run[run.length - 1]!.seq;
        const response = create();
        response.seq = BigInt(last);
        response.events = run.map((e) => e.message.message);
        const bytes = encodeEnvelope(
          last,
          run.map((e) => [eventsField, e.message.bytes] as const),
        );
        return sendsToMany(response, bytes);
      });
      packed.set(events, responses);
    }
    return responses;
  };
}
