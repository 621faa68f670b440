// Keeps the store's change feed (what WatchJobs / WatchJob follow) from growing with every write: every
// job sync, resent epoch and rewritten block appends a row, and a long-lived sidecar would keep them all.
// Once enough rows were appended since the last pass, a pass walks the feed in short transactions
// (Store.compactChanges: a row is deleted only when a later row of the same item exists, or its item is
// gone), yielding to the RPCs between them. Watchers are unaffected, wherever they resume from: each
// item changed after their seq is still in the feed at its latest seq, and its event carries the
// item's current state, as coalescing already did. So no reader is ever told to re-list.
import type { Store } from '@training-callbacks/store';
import type { LogFn } from './logging.ts';

export interface FeedCompactionOptions {
  readonly store: Pick<Store, 'headSeq' | 'firstSeq' | 'changeSeqAt' | 'compactChanges'>;
  /** A pass starts once this many rows were appended since the last one (default 50 000). */
  readonly everyRows?: number;
  /** The newest rows a pass leaves alone (default 10 000): writes are still superseding them. */
  readonly keepRecent?: number;
  /** Rows per compaction transaction (default 2000: a few milliseconds of the writer). */
  readonly chunk?: number;
  /** How often the feed's head is looked at (default 30 s). */
  readonly intervalMs?: number;
  /** One line per pass that deleted rows; failures (a full disk) are logged and retried next time. */
  readonly log?: LogFn;
}

export interface FeedCompaction {
  /** One pass over the feed (joins one under way): the rows deleted and the seq range looked at. */
  runPass(): Promise<{ deleted: number; fromSeq: number; toSeq: number }>;
  /** Stops the timer and waits for a pass under way (it stops after its current transaction). */
  stop(): Promise<void>;
}

export function startFeedCompaction(options: FeedCompactionOptions): FeedCompaction {
  const { store } = options;
  const everyRows = options.everyRows ?? 50_000;
  const keepRecent = options.keepRecent ?? 10_000;
  const chunk = Math.max(1, options.chunk ?? 2000);
  let stopped = false;
  let passing: Promise<{ deleted: number; fromSeq: number; toSeq: number }> | undefined;
  let lastPassHead = 0;

  // Seqs are not consecutive (PostgreSQL's follow the writing transactions): ranges are found in rows.
  const pass = async () => {
    const head = await store.headSeq();
    const fromSeq = await store.firstSeq();
    const toSeq =
      keepRecent === 0
        ? head + 1
        : Math.min(head + 1, (await store.changeSeqAt({ fromHead: true, rows: keepRecent })) ?? fromSeq);
    let deleted = 0;
    for (let lo = fromSeq; lo < toSeq && !stopped; ) {
      const hi = Math.min((await store.changeSeqAt({ afterSeq: lo, rows: chunk })) ?? toSeq, toSeq);
      deleted += await store.compactChanges({ fromSeq: lo, toSeq: hi });
      lo = hi;
      // Trainers' calls go between two transactions.
      await new Promise((resolve) => setImmediate(resolve));
    }
    lastPassHead = head;
    return { deleted, fromSeq, toSeq: Math.max(fromSeq, toSeq) };
  };

  const runPass = () => {
    passing ??= pass().finally(() => {
      passing = undefined;
    });
    return passing;
  };

  const timer = setInterval(async () => {
    try {
      if (passing || (await store.changeSeqAt({ afterSeq: lastPassHead, rows: everyRows })) === undefined)
        return;
      const started = Date.now();
      const { deleted, fromSeq, toSeq } = await runPass();
      if (deleted > 0)
        options.log?.(
          `training-callbacks: change feed compacted: ${deleted} superseded row(s) of seqs ${fromSeq}–${toSeq - 1} deleted in ${Date.now() - started} ms`,
          { event: 'change_feed_compacted', deleted },
        );
    } catch (error) {
      options.log?.(
        `training-callbacks: change feed compaction failed, retried later: ${(error as Error).message}`,
        {
          event: 'change_feed_compaction_failed',
        },
      );
    }
  }, options.intervalMs ?? 30_000);
  timer.unref();

  return {
    runPass,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await passing?.catch(() => undefined);
    },
  };
}
