// WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside the COMMIT that
// crosses its threshold: that commit copies ~1,000 pages into the database and waits for two fsyncs,
// milliseconds during which the sidecar's event loop answers nothing (on this project's bench machine
// the commit's mean cost was 3–6× its median, and such commits were the longest stalls of the loop
// under 50 trainers). A thread with its own connection checkpoints instead, every few tens of ms
// while there is something to copy; the writer's own automatic checkpoint stays as the fallback at a
// higher threshold, so the WAL stays bounded even if the thread cannot keep up or is gone.
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/** The writer's fallback automatic checkpoint while the thread runs (pages; SQLite's default: 1,000). */
export const FALLBACK_AUTOCHECKPOINT_PAGES = 4000;
/** How soon the thread checkpoints again while frames remain behind, and when all were copied. */
const ACTIVE_INTERVAL_MS = 20;
const IDLE_INTERVAL_MS = 250;
/** How long closing waits for the thread to close its connection. */
const STOP_TIMEOUT_MS = 5000;

const THREAD_URL = new URL(
  `./wal-checkpoint-thread${extname(fileURLToPath(import.meta.url))}`,
  import.meta.url,
);

/** The checkpoint thread of one database file; started after migrations, stopped before the writer closes. */
export class WalCheckpoints {
  #thread: Worker | undefined;

  /** Starts the thread on `path` (a WAL database that exists), with the writer's `synchronous` setting. */
  start(path: string, synchronous: 'NORMAL' | 'FULL'): void {
    if (this.#thread) return;
    const thread = new Worker(THREAD_URL, {
      workerData: { path, synchronous, activeMs: ACTIVE_INTERVAL_MS, idleMs: IDLE_INTERVAL_MS },
      name: 'wal-checkpoint',
    });
    // Never what keeps the process alive; a thread that fails leaves the writer's fallback checkpoint.
    thread.unref();
    const gone = () => {
      if (this.#thread === thread) this.#thread = undefined;
    };
    thread.once('error', gone);
    thread.once('exit', gone);
    this.#thread = thread;
  }

  get running(): boolean {
    return this.#thread !== undefined;
  }

  /**
   * Stops the thread and waits until its connection is closed, so the writer's connection is the last
   * one and its close checkpoints the WAL completely and removes it, as without the thread.
   */
  async stop(): Promise<void> {
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
