// Whether the database can be written right now, kept current by itself: a cheap write probe on a
// timer (and at once after a call met a storage failure) plus the free space of the file system that
// holds the file. The sidecar's grpc.health.v1 statuses follow it; so can any readiness endpoint.
import { statfs } from 'node:fs/promises';
import path from 'node:path';
import { type StorageFailure, storageFailureOf } from './failure-status.ts';

/** What {@link DatabaseHealth} knows. */
export type DatabaseHealthState =
  | { readonly writable: true; readonly since: Date }
  | {
      readonly writable: false;
      readonly since: Date;
      /** What stops writes, with what to do; for logs and readiness answers. */
      readonly reason: string;
      /** `low_space`: the file system holds less than `minFreeBytes`; `unknown`: an unclassified error. */
      readonly failure: StorageFailure | 'low_space' | 'unknown';
    };

/** Options of {@link startDatabaseHealth}. */
export interface DatabaseHealthOptions {
  /**
   * The database file; the free space of the file system holding it is checked. Undefined for a
   * database server (PostgreSQL), whose disk is the server's to watch: the probe write alone tells.
   */
  readonly dbPath?: string;
  /** One write that really commits, throwing when the database cannot be written (`Store.probeWrite`). */
  readonly probeWrite: () => Promise<void>;
  /** Below this many free bytes the database counts as not writable (default 1 MiB). */
  readonly minFreeBytes?: number;
  /** Probe interval while writable (default 5000 ms). */
  readonly intervalMs?: number;
  /** Probe interval while not writable (default 1000 ms). */
  readonly failingIntervalMs?: number;
  /** Receives one line per change of state. */
  readonly log?: (line: string) => void;
}

/** The database's writability, for health checks. */
export interface DatabaseHealth {
  /** The current state. */
  readonly state: DatabaseHealthState;
  /** Calls `listener` on every change of state (not with the current one); returns an unsubscribe. */
  onChange(listener: (state: DatabaseHealthState) => void): () => void;
  /**
   * A call met a storage failure: probe now (a full disk or a lock shows at once). A damaged database
   * stays not writable until the sidecar restarts (and start-up checks the file): it does not heal.
   */
  reportFailure(failure: StorageFailure, error: unknown): void;
  /** Probes now (joins a probe under way) and returns the resulting state. */
  check(): Promise<DatabaseHealthState>;
  /** Stops the timer; the state stays as it was. */
  stop(): void;
}

const MIB = 1024 * 1024;

/** Starts probing at once; `state` is writable until the first probe says otherwise. */
export function startDatabaseHealth(options: DatabaseHealthOptions): DatabaseHealth {
  const minFreeBytes = options.minFreeBytes ?? MIB;
  const intervalMs = options.intervalMs ?? 5000;
  const failingIntervalMs = options.failingIntervalMs ?? 1000;
  const directory = options.dbPath === undefined ? undefined : path.dirname(options.dbPath);
  const listeners = new Set<(state: DatabaseHealthState) => void>();
  let state: DatabaseHealthState = { writable: true, since: new Date() };
  let damaged: DatabaseHealthState | undefined;
  let probing: Promise<DatabaseHealthState> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const set = (next: DatabaseHealthState) => {
    if (next.writable === state.writable && (next.writable || state.writable || next.reason === state.reason))
      return;
    state = next;
    options.log?.(
      next.writable
        ? `training-callbacks: database ${options.dbPath} is writable again; health SERVING`
        : `training-callbacks: database ${options.dbPath} cannot be written; health NOT_SERVING: ${next.reason}`,
    );
    for (const listener of listeners) listener(next);
  };

  const notWritable = (
    failure: Extract<DatabaseHealthState, { writable: false }>['failure'],
    reason: string,
  ) => ({ writable: false, since: new Date(), failure, reason }) as const;

  const probe = async (): Promise<DatabaseHealthState> => {
    if (damaged) return damaged;
    try {
      const stats = directory === undefined ? undefined : await statfs(directory);
      const free = stats ? stats.bavail * stats.bsize : Number.POSITIVE_INFINITY;
      if (free < minFreeBytes) {
        return notWritable(
          'low_space',
          `only ${free} bytes are free on the file system holding ${directory} (less than ${minFreeBytes}); free space there`,
        );
      }
      await options.probeWrite();
      return { writable: true, since: new Date() };
    } catch (error) {
      const found = storageFailureOf(error);
      const detail = error instanceof Error ? error.message : String(error);
      return notWritable(found?.failure ?? 'unknown', `${found?.code ?? 'probe write failed'}: ${detail}`);
    }
  };

  const schedule = () => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => void check(), state.writable ? intervalMs : failingIntervalMs);
    timer.unref();
  };

  const check = (): Promise<DatabaseHealthState> => {
    probing ??= probe()
      .then((next) => {
        set(next);
        return state;
      })
      .finally(() => {
        probing = undefined;
        schedule();
      });
    return probing;
  };

  void check();
  return {
    get state() {
      return state;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    reportFailure(failure, error) {
      if (failure === 'damaged') {
        const detail = error instanceof Error ? error.message : String(error);
        damaged = notWritable('damaged', `the database is damaged (${detail}); restore it from a backup`);
        set(damaged);
        return;
      }
      void check();
    },
    check,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
