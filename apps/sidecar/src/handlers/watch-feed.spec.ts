// The shared watch-feed reader against a real SQLite store: one read and one built event for all the
// live subscribers of a topic; a subscriber that stops reading holds a bounded number of events and
// then catches up from the feed itself, with no gap and no duplicate.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ChangeRecord, openStore, type Store } from '@training-callbacks/store';
import { sampleJob } from '@training-callbacks/store/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FEED_PAGE, type FeedEvent, type FeedNotice, type Topic, WatchFeed } from './watch-feed.ts';

let dir: string;
let store: Store;
let controller: AbortController;
beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'watch-feed-'));
  store = await openStore({ dbPath: path.join(dir, 'db.sqlite') });
  controller = new AbortController();
  await store.createOrGetJob(sampleJob('a'));
});
afterEach(async () => {
  controller.abort();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Built {
  seq: number;
  kind: string;
  ref: number | null;
}

/** Job "a"'s changes, one event per (kind, ref) at its last seq, counting the events built. */
function jobTopic(counter: { built: number }): Topic<Built> {
  return {
    key: 'job:a',
    jobId: 'a',
    rows: (page) => page.filter((c) => c.jobId === 'a'),
    async *events(rows: readonly ChangeRecord[]) {
      const last = new Map<string, ChangeRecord>();
      for (const row of rows) {
        last.delete(`${row.kind}:${row.ref}`);
        last.set(`${row.kind}:${row.ref}`, row);
      }
      for (const row of last.values()) {
        counter.built++;
        yield { seq: row.seq, message: { seq: row.seq, kind: row.kind, ref: row.ref } };
      }
    },
  };
}

async function saveEpochs(from: number, to: number): Promise<void> {
  for (let epoch = from; epoch < to; epoch++)
    await store.saveEpoch({
      jobId: 'a',
      epoch,
      metrics: { accuracy: epoch / 1000 },
      columns: { accuracy: epoch / 1000 },
      timestamp: new Date(),
      best: { epoch, value: epoch / 1000 },
    });
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Events of `stream` (keepalives skipped) until one at `lastSeq`, after the `first` notice read;
 * `notices` collects the notices with events.
 */
async function readUntil(
  stream: AsyncIterator<FeedNotice<Built>>,
  lastSeq: number,
  first: FeedNotice<Built>,
  notices: FeedNotice<Built>[] = [],
): Promise<Built[]> {
  notices.push(first);
  const seen: Built[] = first.events.map((e) => e.message);
  if (first.seq >= lastSeq && seen.length > 0) return seen;
  for (;;) {
    const { value, done } = await stream.next();
    if (done) throw new Error('the stream ended');
    if (value.events.length > 0) {
      // A notice is at its last event's seq, its events in seq order.
      expect(value.seq).toBe(value.events.at(-1)!.seq);
      notices.push(value);
    }
    seen.push(...value.events.map((e) => e.message));
    if (value.seq >= lastSeq && (value.events.length > 0 || seen.length > 0)) return seen;
  }
}

describe('WatchFeed', () => {
  it('reads the feed once for all live subscribers and hands each the same event objects, a page at a time', async () => {
    const feed = new WatchFeed(store, { keepaliveMs: 60_000 });
    const counter = { built: 0 };
    const head = await store.headSeq();
    const streams = Array.from({ length: 8 }, () =>
      feed.follow(jobTopic(counter), head, controller.signal)[Symbol.asyncIterator](),
    );
    // Each pulled once: it joins the reader and waits for an event.
    const first = streams.map((s) => s.next());
    await until(() => feed.liveSubscribers === 8, 'eight live subscribers');
    await saveEpochs(0, 20);
    const last = await store.headSeq();
    const notices: FeedNotice<Built>[][] = streams.map(() => []);
    const seen = await Promise.all(
      streams.map(async (s, i) => readUntil(s, last, (await first[i]!).value!, notices[i])),
    );
    expect(seen[0]!.map((e) => e.ref)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (const other of seen.slice(1)) {
      expect(other.length).toBe(seen[0]!.length);
      for (const [i, event] of other.entries()) expect(event).toBe(seen[0]![i]);
    }
    // Built once for eight subscribers, and none of them read the feed on its own after joining.
    expect(counter.built).toBe(20);
    // Several events to a notice (the writes took longer than the read interval only if fewer), and
    // each live subscriber handed the page's very array (so that one response is packed for all).
    expect(notices[0]!.length).toBeLessThan(20);
    for (const other of notices.slice(1))
      for (const [i, notice] of other.entries()) expect(notice.events).toBe(notices[0]![i]!.events);
  });

  it('lets a subscriber that stops reading hold a bounded number of events, then catch up with no gap and no duplicate', async () => {
    const feed = new WatchFeed(store, { keepaliveMs: 60_000 });
    const counter = { built: 0 };
    const head = await store.headSeq();
    const stalled = feed.follow(jobTopic(counter), head, controller.signal)[Symbol.asyncIterator]();
    const reader = feed.follow(jobTopic(counter), head, controller.signal)[Symbol.asyncIterator]();
    const stalledFirst = stalled.next();
    const readerFirst = reader.next();
    await until(() => feed.liveSubscribers === 2, 'two live subscribers');
    const EPOCHS = 600;
    await saveEpochs(0, EPOCHS);
    const last = await store.headSeq();
    // The reading subscriber gets everything through the shared reader meanwhile.
    const read = await readUntil(reader, last, (await readerFirst).value!);
    expect(read.map((e) => e.ref)).toEqual(Array.from({ length: EPOCHS }, (_, i) => i));
    // The stalled one holds no more than its bound (64 events and one page), whatever was written.
    expect(feed.queuedEvents).toBeLessThanOrEqual(64 + FEED_PAGE);
    expect(feed.queuedEvents).toBeLessThan(EPOCHS - 1);
    const catchUps: FeedNotice<Built>[] = [];
    const caught = await readUntil(stalled, last, (await stalledFirst).value!, catchUps);
    // A notice is what the subscriber held: its bound at most.
    for (const notice of catchUps) expect(notice.events.length).toBeLessThanOrEqual(64 + FEED_PAGE);
    const seqs = caught.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(caught.map((e) => e.ref)).toEqual(Array.from({ length: EPOCHS }, (_, i) => i));
  });

  it('starts a subscriber behind the reader on its own and hands it on once it has caught up', async () => {
    await saveEpochs(0, FEED_PAGE + 10);
    const feed = new WatchFeed(store, { keepaliveMs: 60_000 });
    const counter = { built: 0 };
    const stream = feed.follow(jobTopic(counter), 0, controller.signal)[Symbol.asyncIterator]();
    const notices: FeedNotice<Built>[] = [];
    const backlog = await readUntil(stream, await store.headSeq(), (await stream.next()).value!, notices);
    // Caught up from the database in notices of at most 64 events (what it holds at once).
    expect(notices.length).toBeGreaterThan(1);
    for (const notice of notices) expect(notice.events.length).toBeLessThanOrEqual(64);
    expect(backlog.filter((e) => e.kind === 'epoch').map((e) => e.ref)).toEqual(
      Array.from({ length: FEED_PAGE + 10 }, (_, i) => i),
    );
    const next = stream.next();
    await until(() => feed.liveSubscribers === 1, 'the subscriber following the reader');
    await saveEpochs(FEED_PAGE + 10, FEED_PAGE + 11);
    expect((await next).value!.events.map((e: FeedEvent<Built>) => e.message.ref)).toEqual([FEED_PAGE + 10]);
  });
});
