// SQLite settings shared by the store's connection (sqlite-dialect.ts) and the outbox reader's
// (outbox-reader.ts). Imports nothing: the outbox reader must not load MikroORM.

/** How long a connection waits for another one's lock before failing with SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;
