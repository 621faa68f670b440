// SQLite settings of the store's connection (sqlite-dialect.ts). Imports nothing.

/** How long a connection waits for another one's lock before failing with SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5000;
