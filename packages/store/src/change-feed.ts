// The change feed: a `store_change` row per committed write (appended in the write's own transaction)
// and the in-process signal that wakes readers after a commit. The rows are the source of truth — a
// reader keeps only its last seq and reads the feed in bounded pages — so sidecars sharing one database
// see the same feed; the signal only saves an in-process reader its polling delay.
/** Listeners called after a commit; a listener that throws is a bug of its own and never fails the write. */
export class CommitSignal {
  readonly #listeners = new Set<(jobId: string | undefined) => void>();

  add(listener: (jobId: string | undefined) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Called once a write that appended to the feed has committed: of one job, or of several (undefined). */
  fire(jobId: string | undefined): void {
    if (this.#listeners.size === 0) return;
    for (const listener of this.#listeners) {
      try {
        listener(jobId);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
