// The shared watch-feed reader against a real SQLite store: one read and one built event for all the
// live subscribers of a topic; a subscriber that stops reading holds a bounded number of events and
// then catches up from the feed itself, with no gap and no duplicate.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ChangeRecord, openStore, type Store } from '@training-callbacks/store';
import { sampleJob } from '@training-callbacks/store/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FEED_PAGE, type FeedNotice, type Topic, WatchFeed } from './watch-feed.ts';

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

/** Events of `stream` (keepalives skipped) until one at `lastSeq`. */
async function readUntil(stream: AsyncIterator<FeedNotice<Built>>, lastSeq: number): Promise<Built[]> {
  const seen: Built[] = [];
  for (;;) {
    const { value, done } = await stream.next();
    if (done) throw new Error('the stream ended');
    if (value.message) seen.push(value.message);
    if (value.seq >= lastSeq && (value.message || seen.length > 0)) return seen;
  }
}

describe('WatchFeed', () => {
  it('reads the feed once for all live subscribers and hands each the same event objects', async () => {
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
    const seen = await Promise.all(
      streams.map(async (s, i) => {
        const { value } = await first[i]!;
        return [value!.message!, ...(await readUntil(s, last))];
      }),
    );
    expect(seen[0]!.map((e) => e.ref)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (const other of seen.slice(1)) {
      expect(other.length).toBe(seen[0]!.length);
      for (const [i, event] of other.entries()) expect(event).toBe(seen[0]![i]);
    }
    // Built once for eight subscribers, and none of them read the feed on its own after joining.
    expect(counter.built).toBe(20);
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
    const read = [(await readerFirst).value!.message!, ...(await readUntil(reader, last))];
    expect(read.map((e) => e.ref)).toEqual(Array.from({ length: EPOCHS }, (_, i) => i));
    // The stalled one holds no more than its bound (64 events and one page), whatever was written.
    expect(feed.queuedEvents).toBeLessThanOrEqual(64 + FEED_PAGE);
    expect(feed.queuedEvents).toBeLessThan(EPOCHS - 1);
    const caught = [(await stalledFirst).value!.message!, ...(await readUntil(stalled, last))];
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
    const backlog = await readUntil(stream, await store.headSeq());
    expect(backlog.filter((e) => e.kind === 'epoch').map((e) => e.ref)).toEqual(
      Array.from({ length: FEED_PAGE + 10 }, (_, i) => i),
    );
    const next = stream.next();
    await until(() => feed.liveSubscribers === 1, 'the subscriber following the reader');
    await saveEpochs(FEED_PAGE + 10, FEED_PAGE + 11);
    expect((await next).value?.message?.ref).toBe(FEED_PAGE + 10);
  });
});
