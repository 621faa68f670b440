/** What went wrong, for the sidecar's mapping to gRPC status codes. */
export type StoreErrorKind = 'not_found' | 'conflict' | 'invalid_argument' | 'ended' | 'too_large';

/**
 * The one error type the store throws on purpose. Everything else (I/O, a corrupt file) propagates as
 * thrown by MikroORM or the driver.
 * - `not_found`: the job does not exist (also raised when a write names an unknown job and the
 *   foreign key refuses it).
 * - `conflict`: a uniqueness rule refused the write.
 * - `invalid_argument`: an argument the store itself cannot interpret (an unreadable list cursor).
 * - `ended`: a report for a job that is no longer running (checked inside the write's transaction, so
 *   a report racing the job's end, from this sidecar or another, lands before the end or not at all).
 * - `too_large`: one write would change more items than the store records at once (hot-path.ts'
 *   `MAX_FEED_ROWS_PER_WRITE`); refused before anything is written, and resending it cannot help.
 */
export class StoreError extends Error {
  readonly kind: StoreErrorKind;

  constructor(kind: StoreErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreError';
    this.kind = kind;
  }
}
