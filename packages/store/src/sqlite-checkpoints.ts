// WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside the COMMIT that
// crosses its threshold: that commit copies ~1,000 pages into the database and waits for two fsyncs,
// milliseconds during which the sidecar's event loop answers nothing (on this project's bench machine
// such commits were among the longest stalls of the loop under 50 trainers). A thread with its own
// connection checkpoints instead while the store writes; the writer's own automatic checkpoint stays
// as the fallback at a higher threshold, so the WAL stays bounded if the thread cannot keep up or is
// gone. The thread runs only while there is work (a Node thread costs ~14 MiB of RSS): it starts once
// the writer has committed enough transactions, and ends after a while with nothing to copy.
//
// Nothing here opens the database's files itself: closing any descriptor of a file drops every POSIX
// lock the process holds on it, SQLite's included, and another process opening the database would then
// take the wal-index for its own and rebuild it under this one's feet. Only SQLite touches them.
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/** The writer's fallback automatic checkpoint (pages; SQLite's default: 1,000). */
export const FALLBACK_AUTOCHECKPOINT_PAGES = 4000;
/**
 * Commits after which the thread starts: an epoch report writes ~7 pages, so ~250 frames wait by then,
 * well below the fallback; a sidecar that commits rarely never starts it.
 */
export const THREAD_START_COMMITS = 36;
/** How often the writer's side looks at its count of commits while the thread is not running. */
const WATCH_INTERVAL_MS = 1000;
/** How soon the thread checkpoints again while frames remain behind, and when all were copied. */
const ACTIVE_INTERVAL_MS = 20;
const IDLE_INTERVAL_MS = 250;
/** How long the thread runs on with nothing to copy before it ends. */
const IDLE_EXIT_MS = 30_000;
/** How long closing waits for the thread to close its connection. */
const STOP_TIMEOUT_MS = 5000;

const THREAD_URL = new URL(
  `./wal-checkpoint-thread${extname(fileURLToPath(import.meta.url))}`,
  import.meta.url,
);

/** The checkpoint thread of one database file: watched after migrations, stopped before the writer closes. */
export class WalCheckpoints {
  #thread: Worker | undefined;
  #watch: NodeJS.Timeout | undefined;
  #failed = false;
  /** The writer's commits since the thread last ended (or since the store opened). */
  #commits = 0;

  /** The writer committed a transaction (called by the store's driver after every COMMIT). */
  committed(): void {
    this.#commits++;
  }

  /**
   * Looks at the writer's commits every second and starts the thread on `path` once there were
   * THREAD_START_COMMITS of them; `synchronous` is the writer's setting, which the checkpoint's fsyncs
   * follow.
   */
  watch(path: string, synchronous: 'NORMAL' | 'FULL'): void {
    if (this.#watch) return;
    this.#watch = setInterval(() => {
      if (this.#thread || this.#failed || this.#commits < THREAD_START_COMMITS) return;
      this.#commits = 0;
      this.#start(path, synchronous);
    }, WATCH_INTERVAL_MS).unref();
  }

  #start(path: string, synchronous: 'NORMAL' | 'FULL'): void {
    let thread: Worker;
    try {
      thread = this.#spawn(path, synchronous);
    } catch {
      // No thread to be had (the process is out of threads or memory): the writer's fallback
      // checkpoints, as without this class. An optional helper must never take the sidecar down.
      this.#failed = true;
      return;
    }
    this.#thread = thread;
  }

  #spawn(path: string, synchronous: 'NORMAL' | 'FULL'): Worker {
    const thread = new Worker(THREAD_URL, {
      workerData: {
        path,
        synchronous,
        activeMs: ACTIVE_INTERVAL_MS,
        idleMs: IDLE_INTERVAL_MS,
        idleExitMs: IDLE_EXIT_MS,
      },
      name: 'wal-checkpoint',
    });
    // Never what keeps the process alive.
    thread.unref();
    const gone = () => {
      if (this.#thread !== thread) return;
      this.#thread = undefined;
      // Commits made while it ran were its work: the next thread waits for as many new ones.
      this.#commits = 0;
    };
    // A thread that fails (its connection cannot open) is not started again: the fallback checkpoints.
    // `on`, not `once`: an 'error' event without a listener would throw in the sidecar's process.
    thread.on('error', () => {
      this.#failed = true;
      gone();
    });
    thread.once('exit', gone);
    return thread;
  }

  /**
   * Stops watching and stops the thread, waiting until its connection is closed, so the writer's
   * connection is the last one and its close checkpoints the WAL completely and removes it.
   */
  async stop(): Promise<void> {
    clearInterval(this.#watch);
    this.#watch = undefined;
    const thread = this.#thread;
    if (!thread) return;
    this.#thread = undefined;
    const exited = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
    // Waited for: an unref'd thread would let a process that awaits its close end with the await unsettled.
    thread.ref();
    thread.postMessage('stop');
    const timeout = new Promise<'timeout'>((resolve) =>
      setTimeout(resolve, STOP_TIMEOUT_MS, 'timeout').unref(),
    );
    if ((await Promise.race([exited, timeout])) === 'timeout') await thread.terminate();
  }
}
