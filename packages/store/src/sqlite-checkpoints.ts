// WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside the COMMIT that
// crosses its threshold: that commit copies ~1,000 pages into the database and waits for two fsyncs,
// milliseconds during which the sidecar's event loop answers nothing (on this project's bench machine
// such commits were among the longest stalls of the loop under 50 trainers). A thread with its own
// connection checkpoints instead while the store writes; the writer's own automatic checkpoint stays
// as the fallback at a higher threshold, so the WAL stays bounded if the thread cannot keep up or is
// gone. The thread runs only while there is work (a Node thread costs ~14 MiB of RSS): it starts when
// the WAL holds enough frames not yet copied, and ends after a while with nothing to copy.
import { closeSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/** The writer's fallback automatic checkpoint (pages; SQLite's default: 1,000). */
export const FALLBACK_AUTOCHECKPOINT_PAGES = 4000;
/** Frames written and not yet copied at which the thread starts (well below the fallback). */
export const THREAD_START_FRAMES = 256;
/** How often the writer's side looks at the WAL while the thread is not running. */
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

/**
 * The WAL's frames not yet copied into the database, from the wal-index (`-shm`; its layout is part
 * of SQLite's documented file format): two copies of the 48-byte header, whose `mxFrame` is at byte
 * 16, then the checkpoint info, whose `nBackfill` is at byte 96, both in the machine's byte order.
 * Undefined when the file cannot be read (no WAL yet).
 */
export function walFramesBehind(dbPath: string): number | undefined {
  const header = Buffer.alloc(100);
  let fd: number | undefined;
  try {
    fd = openSync(`${dbPath}-shm`, 'r');
    if (readSync(fd, header, 0, header.length, 0) < header.length) return undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  const read = (offset: number) =>
    endianness() === 'LE' ? header.readUInt32LE(offset) : header.readUInt32BE(offset);
  return Math.max(0, read(16) - read(96));
}

/** The checkpoint thread of one database file: watched after migrations, stopped before the writer closes. */
export class WalCheckpoints {
  #thread: Worker | undefined;
  #watch: NodeJS.Timeout | undefined;
  #failed = false;

  /**
   * Looks at the WAL of `path` every second and starts the thread once THREAD_START_FRAMES frames
   * wait to be copied; `synchronous` is the writer's setting, which the checkpoint's fsyncs follow.
   */
  watch(path: string, synchronous: 'NORMAL' | 'FULL'): void {
    if (this.#watch) return;
    this.#watch = setInterval(() => {
      if (!this.#thread && !this.#failed && (walFramesBehind(path) ?? 0) >= THREAD_START_FRAMES)
        this.#start(path, synchronous);
    }, WATCH_INTERVAL_MS).unref();
  }

  /** Whether the thread runs now. */
  get running(): boolean {
    return this.#thread !== undefined;
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
      if (this.#thread === thread) this.#thread = undefined;
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
