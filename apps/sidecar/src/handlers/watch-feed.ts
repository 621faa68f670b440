// One reader of the store's change feed for every watch stream of the sidecar. It reads the rows
// committed since the last page once per wake-up (a commit signal, at most every READ_INTERVAL_MS;
// or the poll interval, for writes of another sidecar sharing the database), builds each topic's
// events once — the job list's, and each watched job's — and hands the same event objects to every
// subscriber of the topic that is live (at the reader's seq).
//
// A subscriber passes on what it has as one notice: a page's events (the same array for all the live
// subscribers of the topic, so that watch.ts packs them into one response for all of them), or what
// it holds of several pages, or a catching-up page's. So the read interval is the window of a watch
// message: under a steady stream of writes a live subscriber gets at most one notice per interval.
//
// A subscriber is its cursor: the last seq it has passed on. It is live while the reader's pages join
// its cursor with no gap; otherwise it catches up on its own, reading the feed from its cursor in
// bounded pages when its stream can take more (as a resumed stream does first), and rejoins once it
// has reached the reader. A live subscriber whose stream does not keep up holds at most
// MAX_QUEUED_EVENTS shared events (and one page more): past that it drops them and catches up on its
// own, from the database, coalesced. So a stalled viewer costs a cursor, never a queue.
//
// Why no gap and no duplicate: the reader's pages follow each other (each starts after the previous
// one's last seq); a subscriber takes a page's events only when the page starts at or before its
// cursor, and only the events after its cursor. An event is a coalesced group (one job, epoch, block or
// artifact) at the largest seq of its rows and carries the item's current state, so an event after the
// cursor covers every row of its group after the cursor.
import type { ChangeRecord, Store } from '@training-callbacks/store';

/** Feed rows read at once, by the shared reader and by a subscriber catching up. */
export const FEED_PAGE = 256;
/**
 * Least time between two reads of the feed while writes keep coming: the window of events that go
 * out in one message (≤ 5 messages a second per stream; well within the ≤ 1 s from a trainer's
 * acknowledgement to the dashboard's chart). Each message costs the sidecar a gRPC write per
 * subscriber, whatever it carries: at 100 ms a job's stream got about one message per stored block
 * (clients flush every 200 ms), at 200 ms half as many (docs/benchmarks.md, the watch target).
 */
export const READ_INTERVAL_MS = 200;
/**
 * Shared events a live subscriber may hold besides one page's; past that it catches up on its own.
 * Also the most events a catching-up subscriber passes on (and holds) at once.
 */
const MAX_QUEUED_EVENTS = 64;
/** Longest stretch of building events before the reader lets other work in (the RPCs). */
const BUILD_SLICE_MS = 2;
/** Subscribers woken at once after a page; the next ones after the event loop has run. */
const WAKE_TURN = 16;
/** After a failed read, the shared reader tries again after this long (subscribers read on their own). */
const RETRY_MS = 1000;

/** An event of a topic, at the largest seq of the rows it stands for. */
export interface FeedEvent<M> {
  readonly seq: number;
  readonly message: M;
}

/**
 * What a subscriber is told: events in seq order, `seq` the last one's; or (no events) a keepalive at
 * its cursor. A live subscriber's page is the very array every live subscriber of the topic gets.
 */
export interface FeedNotice<M> {
  readonly seq: number;
  readonly events: readonly FeedEvent<M>[];
}

/** A stream of events made from the feed: the job list, or one job. */
export interface Topic<M> {
  /** The topic's key: subscribers of one key share its events. */
  readonly key: string;
  /** Only this job's rows (lets a catching-up subscriber read them by the feed's job index). */
  readonly jobId?: string;
  /** The rows of a page that belong to this topic. */
  rows(page: readonly ChangeRecord[]): ChangeRecord[];
  /**
   * The events of the topic's `rows` (coalesced, in seq order), each built when it is pulled (a
   * catching-up subscriber holds MAX_QUEUED_EVENTS at most). `coveredSeq`: every feed row up to it has committed
   * (what the state read now reflects at least).
   */
  events(rows: readonly ChangeRecord[], coveredSeq: number): AsyncIterable<FeedEvent<M>>;
}

interface Subscriber {
  readonly topic: Topic<unknown>;
  /** The last seq passed on (or known to hold nothing for this topic). */
  cursor: number;
  live: boolean;
  /**
   * Live only: runs of shared events not yet passed on (a page's array when the subscriber takes all
   * of it), how many events they hold, and the seq up to which pages were taken.
   */
  queue: (readonly FeedEvent<unknown>[])[];
  queued: number;
  queueEnd: number;
  /** Set while the subscriber waits for events. */
  wake: (() => void) | undefined;
}

interface TopicState {
  readonly topic: Topic<unknown>;
  readonly subscribers: Set<Subscriber>;
}

export interface WatchFeedOptions {
  /** A keepalive after this long without an event; the shared reader polls the feed as often. */
  readonly keepaliveMs: number;
}

export class WatchFeed {
  readonly #store: Pick<Store, 'readChanges' | 'headSeq' | 'onCommit'>;
  readonly #keepaliveMs: number;
  readonly #topics = new Map<string, TopicState>();
  #subscribers = 0;
  #running = false;
  /** The last seq of the last page the reader handed out; -1 while it has not started. */
  #published = -1;
  #dirty = false;
  /** Subscribers given events and not woken yet (see #wakeInTurns). */
  #toWake: Subscriber[] = [];
  #waking = false;
  /** The reader waits for a commit (not merely for its read interval to pass). */
  #idle = false;
  #wakeReader: (() => void) | undefined;
  #stopSignal: (() => void) | undefined;

  /** Subscribers following the shared reader (the others catch up on their own). */
  get liveSubscribers(): number {
    let live = 0;
    for (const state of this.#topics.values()) for (const sub of state.subscribers) if (sub.live) live++;
    return live;
  }

  /** Events handed to live subscribers and not yet passed on, over all of them. */
  get queuedEvents(): number {
    let queued = 0;
    for (const state of this.#topics.values()) for (const sub of state.subscribers) queued += sub.queued;
    return queued;
  }

  constructor(store: Pick<Store, 'readChanges' | 'headSeq' | 'onCommit'>, options: WatchFeedOptions) {
    this.#store = store;
    this.#keepaliveMs = options.keepaliveMs;
  }

  /**
   * Follows `topic` from `after`: its events in seq order, and a keepalive notice whenever nothing was
   * passed on for the keepalive interval. Ends when `signal` aborts.
   */
  async *follow<M>(topic: Topic<M>, after: number, signal: AbortSignal): AsyncGenerator<FeedNotice<M>> {
    const sub: Subscriber = {
      topic: topic as Topic<unknown>,
      cursor: after,
      live: false,
      queue: [],
      queued: 0,
      queueEnd: after,
      wake: undefined,
    };
    this.#add(sub);
    const aborted = () => sub.wake?.();
    signal.addEventListener('abort', aborted);
    let lastSent = Date.now();
    try {
      while (!signal.aborted) {
        if (sub.live) {
          if (sub.queue.length > 0) {
            // All it holds in one notice; one page as the page's own array (packed once for all).
            const runs = sub.queue as (readonly FeedEvent<M>[])[];
            const events = runs.length === 1 ? runs[0]! : runs.flat();
            sub.queue = [];
            sub.queued = 0;
            sub.cursor = events[events.length - 1]!.seq;
            yield { seq: sub.cursor, events };
            lastSent = Date.now();
            continue;
          }
          sub.cursor = Math.max(sub.cursor, sub.queueEnd);
        } else {
          const caughtUp = yield* this.#catchUp(sub, topic);
          if (caughtUp === 'sent') lastSent = Date.now();
          if (caughtUp !== 'waiting' || sub.live) continue;
        }
        const due = lastSent + this.#keepaliveMs - Date.now();
        if (due <= 0) {
          yield { seq: sub.cursor, events: [] };
          lastSent = Date.now();
          continue;
        }
        // Live: until the reader hands out a page. Catching up: until the reader has started or
        // moved on (a page the subscriber can rejoin at), polling in case it is waiting itself.
        await this.#wait(sub, sub.live ? due : Math.min(due, READ_INTERVAL_MS));
      }
    } finally {
      signal.removeEventListener('abort', aborted);
      this.#remove(sub);
    }
  }

  /**
   * One page of catching up: the subscriber's rows after its cursor, read from the feed, passed on
   * (MAX_QUEUED_EVENTS events at most to a notice); live again once its cursor has reached the
   * reader's. 'waiting' when there was nothing to read and the subscriber cannot rejoin yet.
   */
  async *#catchUp<M>(
    sub: Subscriber,
    topic: Topic<M>,
  ): AsyncGenerator<FeedNotice<M>, 'sent' | 'read' | 'waiting'> {
    // Every row up to the reader's seq had committed before this read began, so a short page holds
    // all of this subscriber's rows up to it.
    const published = this.#published;
    const page = await this.#store.readChanges({
      afterSeq: sub.cursor,
      limit: FEED_PAGE,
      ...(topic.jobId !== undefined && { jobId: topic.jobId }),
    });
    let sent = false;
    if (page.length > 0) {
      const rows = topic.rows(page);
      let events: FeedEvent<M>[] = [];
      for await (const event of topic.events(rows, page[page.length - 1]!.seq)) {
        if (event.seq <= sub.cursor) continue;
        events.push(event);
        if (events.length === MAX_QUEUED_EVENTS) {
          sub.cursor = event.seq;
          yield { seq: event.seq, events };
          events = [];
          sent = true;
        }
      }
      if (events.length > 0) {
        sub.cursor = events[events.length - 1]!.seq;
        yield { seq: sub.cursor, events };
        sent = true;
      }
      sub.cursor = Math.max(sub.cursor, page[page.length - 1]!.seq);
      if (page.length === FEED_PAGE) return sent ? 'sent' : 'read';
    }
    sub.cursor = Math.max(sub.cursor, published);
    if (this.#published >= 0 && sub.cursor >= this.#published) {
      sub.live = true;
      sub.queue = [];
      sub.queued = 0;
      sub.queueEnd = sub.cursor;
      return sent ? 'sent' : 'read';
    }
    // The reader moved on during the read: read again at once; not started yet: wait for it.
    if (sent) return 'sent';
    return this.#published > published ? 'read' : 'waiting';
  }

  #add(sub: Subscriber): void {
    let state = this.#topics.get(sub.topic.key);
    if (!state) {
      state = { topic: sub.topic, subscribers: new Set() };
      this.#topics.set(sub.topic.key, state);
    }
    state.subscribers.add(sub);
    this.#subscribers++;
    if (!this.#running) {
      this.#running = true;
      void this.#run();
    }
  }

  #remove(sub: Subscriber): void {
    const state = this.#topics.get(sub.topic.key);
    if (state?.subscribers.delete(sub)) {
      this.#subscribers--;
      if (state.subscribers.size === 0) this.#topics.delete(sub.topic.key);
    }
    if (this.#subscribers === 0) this.#wakeReader?.();
  }

  #wait(sub: Subscriber, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      sub.wake = done;
      function done() {
        clearTimeout(timer);
        sub.wake = undefined;
        resolve();
      }
    });
  }

  /** The shared reader: runs while there are subscribers. */
  async #run(): Promise<void> {
    this.#stopSignal = this.#store.onCommit(() => {
      this.#dirty = true;
      if (this.#idle) this.#wakeReader?.();
    });
    let lastRead = 0;
    try {
      while (this.#subscribers > 0) {
        try {
          if (this.#published < 0) {
            this.#published = await this.#store.headSeq();
            this.#wakeAll();
            continue;
          }
          const sinceRead = Date.now() - lastRead;
          if (sinceRead < READ_INTERVAL_MS) await this.#readerSleep(READ_INTERVAL_MS - sinceRead);
          if (this.#subscribers === 0) break;
          this.#dirty = false;
          lastRead = Date.now();
          const page = await this.#store.readChanges({ afterSeq: this.#published, limit: FEED_PAGE });
          if (page.length > 0) {
            await this.#publish(page);
            // A full page: more is waiting, read it at once.
            if (page.length === FEED_PAGE) lastRead = 0;
            continue;
          }
          if (this.#dirty) continue;
          this.#idle = true;
          await this.#readerSleep(this.#keepaliveMs);
          this.#idle = false;
        } catch {
          // A failed read (a locked or full database): the live subscribers read on their own, where
          // the failure ends their streams with its status; the reader tries again later.
          this.#idle = false;
          for (const state of this.#topics.values()) for (const sub of state.subscribers) this.#demote(sub);
          await this.#readerSleep(RETRY_MS);
        }
      }
    } finally {
      // No await between the loop's last check and here: a subscriber added now starts a new reader.
      this.#stopSignal?.();
      this.#stopSignal = undefined;
      this.#running = false;
      this.#published = -1;
    }
  }

  #readerSleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      this.#wakeReader = done;
      const self = this;
      function done() {
        clearTimeout(timer);
        self.#wakeReader = undefined;
        resolve();
      }
    });
  }

  /** Builds each live topic's events of `page` once and hands them to its live subscribers. */
  async #publish(page: readonly ChangeRecord[]): Promise<void> {
    const endSeq = page[page.length - 1]!.seq;
    const built = new Map<TopicState, FeedEvent<unknown>[]>();
    const rowsOf = new Map<TopicState, number>();
    let slice = performance.now();
    for (const state of [...this.#topics.values()]) {
      const rows = state.topic.rows(page);
      rowsOf.set(state, rows.length);
      if (rows.length === 0 || ![...state.subscribers].some((s) => s.live)) continue;
      const events: FeedEvent<unknown>[] = [];
      for await (const event of state.topic.events(rows, endSeq)) {
        events.push(event);
        // The store's reads are synchronous underneath: let the trainers' calls in between.
        if (performance.now() - slice > BUILD_SLICE_MS) {
          await new Promise((resolve) => setImmediate(resolve));
          slice = performance.now();
        }
      }
      built.set(state, events);
    }
    // From here on, synchronous: no subscriber can join or pass events on half-way.
    this.#published = endSeq;
    for (const state of this.#topics.values()) {
      const events = built.get(state);
      for (const sub of state.subscribers) {
        if (!sub.live) {
          sub.wake?.(); // catching up: it may rejoin at the new seq
          continue;
        }
        // Joined during the build (its topic had no live subscriber then), or its topic is new.
        if (events === undefined && (rowsOf.get(state) ?? state.topic.rows(page).length) > 0)
          this.#demote(sub);
        else if (events !== undefined) this.#deliver(sub, events, endSeq);
        else sub.queueEnd = Math.max(sub.queueEnd, endSeq);
      }
    }
    this.#wakeInTurns();
  }

  /**
   * Wakes the subscribers given events, WAKE_TURN at a time with the event loop in between: each
   * writes its events to its stream at once, and a hundred of them in one go would hold the trainers'
   * calls back for as long.
   */
  #wakeInTurns(): void {
    if (this.#waking) return;
    this.#waking = true;
    const turn = () => {
      for (const sub of this.#toWake.splice(0, WAKE_TURN)) sub.wake?.();
      if (this.#toWake.length > 0) setImmediate(turn);
      else this.#waking = false;
    };
    turn();
  }

  #deliver(sub: Subscriber, events: readonly FeedEvent<unknown>[], endSeq: number): void {
    let first = 0;
    while (first < events.length && events[first]!.seq <= sub.queueEnd) first++;
    if (sub.queued > 0 && sub.queued + events.length - first > MAX_QUEUED_EVENTS) {
      this.#demote(sub);
      return;
    }
    if (first < events.length) {
      // The page's own array when all of it is new: the response is then packed once for all.
      sub.queue.push(first === 0 ? events : events.slice(first));
      sub.queued += events.length - first;
    }
    sub.queueEnd = Math.max(sub.queueEnd, endSeq);
    // Only a subscriber with something new is woken; the others' keepalive timers run on.
    if (first < events.length) this.#toWake.push(sub);
  }

  /** The subscriber drops what it holds and catches up from its cursor on its own. */
  #demote(sub: Subscriber): void {
    if (!sub.live) return;
    sub.live = false;
    sub.queue = [];
    sub.queued = 0;
    sub.wake?.();
  }

  #wakeAll(): void {
    for (const state of this.#topics.values()) for (const sub of state.subscribers) sub.wake?.();
  }
}
