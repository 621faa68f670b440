/** What went wrong, for the sidecar's mapping to gRPC status codes. */
export type StoreErrorKind = 'not_found' | 'conflict' | 'invalid_argument';

/**
 * The one error type the store throws on purpose. Everything else (I/O, a corrupt file) propagates as
 * thrown by MikroORM or the driver.
 * - `not_found`: the job does not exist (also raised when a write names an unknown job and the
 *   foreign key refuses it).
 * - `conflict`: a uniqueness rule refused the write.
 * - `invalid_argument`: an argument the store itself cannot interpret (an unreadable list cursor).
 */
export class StoreError extends Error {
  readonly kind: StoreErrorKind;

  constructor(kind: StoreErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreError';
    this.kind = kind;
  }
}
