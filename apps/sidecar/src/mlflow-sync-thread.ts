// The MLflow sync thread: the bridge's sync worker and HTTP client, with a read-only connection of its
// own to the store. Reading the outbox, decoding payloads, building and sending log-batch bodies all
// happen here, so none of it ever runs between two of a trainer's RPCs on the main thread. Writes (an
// item delivered, rescheduled or parked; a run's ids) go to the main thread, the database's one
// writer: SQLite allows one writer at a time, and a second one would make the RPCs' commits wait in
// SQLite's busy handler (≥ 1 ms a time).
//
// The reads go through the store's outbox reader (better-sqlite3 and the store's outbox queries,
// compiled by the main thread's store), not through a second store: this thread must not load
// MikroORM, which would cost some 17 MB of memory. Import nothing of `@training-callbacks/store` here
// but its `outbox-reader` entry (and types).
import { readlinkSync } from 'node:fs';
import { constants, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import {
  createMlflowClient,
  createSyncWorker,
  type MlflowOutbox,
  type MlflowRequestOutcome,
} from '@training-callbacks/mlflow-bridge';
import { openOutboxReader } from '@training-callbacks/store/outbox-reader';
import type { LogFields } from './logging.ts';
import {
  type FromSyncThread,
  MAX_POINTS_PER_STEP,
  OUTBOX_WRITES,
  type OutboxWrite,
  outboxReads,
  type SyncThreadData,
  type ToSyncThread,
} from './mlflow-outbox.ts';
import { RUN_GONE_HINT, syncEventLogger } from './mlflow-sync-log.ts';

/**
 * Runs this thread below the RPC thread's CPU priority (Linux: nice is per thread, and a thread may
 * always lower its own). When the sidecar's cores are busy, a trainer's calls go first and the mirror
 * catches up in the idle time; elsewhere, or if refused, the thread keeps the normal priority.
 */
function lowerThreadPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, constants.priority.PRIORITY_BELOW_NORMAL);
  } catch {}
}
lowerThreadPriority();

const port = parentPort;
if (!port) throw new Error('mlflow-sync-thread.ts runs as a worker thread (started by mlflow-mirror.ts)');
const data = workerData as SyncThreadData;
const post = (message: FromSyncThread) => port.postMessage(message);
const log = (line: string, fields: LogFields | undefined, error = false) =>
  post({ type: 'log', error, line, ...(fields && { fields }) });

const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextId = 1;
function write(method: OutboxWrite, args: unknown[]): Promise<unknown> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    post({ type: 'write', id, method, args });
  });
}

const reader = openOutboxReader({ dbPath: data.dbPath, plan: data.readerPlan });
const writes = Object.fromEntries(
  OUTBOX_WRITES.map((method) => [method, (...args: unknown[]) => write(method, args)]),
) as unknown as Pick<MlflowOutbox, OutboxWrite>;
const outbox: MlflowOutbox = { ...outboxReads(reader), ...writes };

// Request outcomes go to the main thread's /metrics in one message a second at most, not one per request.
const REQUESTS_REPORT_MS = 1000;
let observations: Array<[MlflowRequestOutcome, number]> = [];
let reportTimer: NodeJS.Timeout | undefined;
const reportRequests = () => {
  clearTimeout(reportTimer);
  reportTimer = undefined;
  if (observations.length === 0) return;
  post({ type: 'requests', observations });
  observations = [];
};
const client = createMlflowClient(data.config, {
  onRequest(outcome, seconds) {
    observations.push([outcome, seconds]);
    reportTimer ??= setTimeout(reportRequests, REQUESTS_REPORT_MS).unref();
  },
});
const worker = createSyncWorker({
  client,
  outbox,
  retryHorizonMs: data.retryHorizonMs,
  backoff: { maxMs: data.maxBackoffMs },
  maxRetryAfterMs: Math.max(data.maxBackoffMs, 1000),
  // The main thread already folds the notifications of many fast RPCs into one message.
  notifyDelayMs: 0,
  maxPointsPerStep: MAX_POINTS_PER_STEP,
  // Two log-batch requests in flight by default: a server with several workers (MLflow's default is 4)
  // parses one while it commits the other. Against a one-worker server they only contend (≈ 15 % slower).
  requestConcurrency: data.requestConcurrency,
  runGoneHint: RUN_GONE_HINT,
  onEvent: syncEventLogger({
    log: (line, fields) => log(line, fields),
    logError: (line, fields) => log(line, fields, true),
  }),
});

port.on('message', (message: ToSyncThread) => {
  switch (message.type) {
    case 'notify':
      worker.notify();
      break;
    case 'result': {
      const call = pending.get(message.id);
      pending.delete(message.id);
      if (message.error === undefined) call?.resolve(message.value);
      else call?.reject(new Error(message.error));
      break;
    }
    case 'stop':
      void (async () => {
        await worker.stop();
        // Whatever was in flight and not confirmed stays in the outbox; MLflow drops the exact resend.
        await client.close().catch(() => undefined);
        reportRequests();
        reader.close();
        post({ type: 'stopped' });
        port.close();
      })();
      break;
  }
});
worker.start();
post({ type: 'ready' });
