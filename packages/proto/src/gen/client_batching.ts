// Generated from proto/client-batching.json by packages/proto/scripts/generate-client-batching.ts; do not edit.

/** The default interval at which a client sends the points a trainer reported per step, in milliseconds. */
export const BATCH_FLUSH_INTERVAL_MS = 200;
