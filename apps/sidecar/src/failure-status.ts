// The one table from a failure that is not the client's fault to the gRPC status it answers, with the
// message that says what to do. The grpc-adapter's error edge (toStatusObject) consults it for every
// throw that is not an RpcError; what it does not know is a bug and travels as INTERNAL.
//
// Clients classify by status alone (proto/status-table.json): every failure an operator or time can
// clear answers UNAVAILABLE (transient: resend the same request; nothing of the refused call was
// written). RESOURCE_EXHAUSTED is left to "this request is too large", which retrying cannot fix, so a
// full disk is UNAVAILABLE. A damaged database answers DATA_LOSS: it does not heal by itself, retrying
// cannot help, and the operator must restore it; UNAVAILABLE would promise a recovery that never comes.
import { statfsSync } from 'node:fs';
import path from 'node:path';
import { type ErrorMapper, RpcError, Status, type StatusCode } from '@training-callbacks/grpc-adapter';
import {
  dialectOf,
  postgresCode,
  redactedDatabaseUrl,
  StoreError,
  sqliteCode,
} from '@training-callbacks/store';

/** A failure of the machine under the sidecar, not of the request. */
export type StorageFailure = 'disk_full' | 'busy' | 'io' | 'read_only' | 'damaged' | 'unreachable';

/** Where it happened: the database, or a file of the artifact store. */
interface FailureRow {
  readonly status: StatusCode;
  /** What went wrong and what to do, for the file `where`. */
  readonly message: (where: string, detail: string) => string;
}

const NOTHING_STORED = 'Nothing of this call was stored';

/** The table. */
export const FAILURE_STATUS: Readonly<Record<StorageFailure, FailureRow>> = {
  disk_full: {
    status: Status.UNAVAILABLE,
    message: (where, detail) =>
      `cannot write ${where}: the file system holding it is full (${detail}). ${NOTHING_STORED}. ` +
      'Free space on that file system; the sidecar notices by itself (health turns SERVING again), then resend',
  },
  busy: {
    status: Status.UNAVAILABLE,
    message: (where, detail) =>
      `the database ${where} stayed locked by another process beyond the sidecar's busy wait, or another ` +
      `writer's transaction conflicted with this one (${detail}). ${NOTHING_STORED}. Resend; if it ` +
      `persists, find the process holding it (${whoHolds(where)})`,
  },
  io: {
    status: Status.UNAVAILABLE,
    message: (where, detail) =>
      `an I/O error while writing ${where} (${detail}). ${NOTHING_STORED}. Check the disk or mount ` +
      '(dmesg); the sidecar retries by itself (health turns SERVING again), then resend',
  },
  read_only: {
    status: Status.UNAVAILABLE,
    message: (where, detail) =>
      `cannot write ${where}: it is read-only or not writable by the sidecar (${detail}). ${NOTHING_STORED}. ` +
      'Make it (and its directory) writable again; the sidecar notices by itself, then resend',
  },
  unreachable: {
    status: Status.UNAVAILABLE,
    message: (where, detail) =>
      `the database server of ${where} cannot be reached or closed the connection (${detail}). ` +
      `${NOTHING_STORED}. The sidecar reconnects by itself once the server is back (health turns SERVING ` +
      'again), then resend; if it persists, check that the server runs and accepts connections',
  },
  damaged: {
    status: Status.DATA_LOSS,
    message: (where, detail) =>
      `the database ${where} is damaged (${detail}). ${NOTHING_STORED}. Retrying cannot help: stop the ` +
      'sidecar, restore the file from a backup (or start with a new --db); start-up checks the file',
  },
};

/** How to find the holder of a lock on the database `where` (a file, or a PostgreSQL URL). */
function whoHolds(where: string): string {
  return dialectOf(where) === 'postgresql'
    ? 'PostgreSQL: pg_locks joined with pg_stat_activity shows the session and its query'
    : `\`fuser ${where}\``;
}

/** The storage failure an error is, by its SQLite result code, PostgreSQL SQLSTATE or errno code. */
export function storageFailureOf(error: unknown): { failure: StorageFailure; code: string } | undefined {
  const code = sqliteCode(error) ?? postgresCode(error) ?? errnoCode(error);
  if (code === undefined) return undefined;
  const failure = FAILURE_OF_CODE.find(([prefix]) => code === prefix || code.startsWith(`${prefix}_`))?.[1];
  return failure && { failure, code };
}

/** Result codes (with their extended `_…` variants) and errno codes, by failure. */
const FAILURE_OF_CODE: readonly (readonly [string, StorageFailure])[] = [
  ['SQLITE_FULL', 'disk_full'],
  ['ENOSPC', 'disk_full'],
  ['EDQUOT', 'disk_full'],
  ['SQLITE_BUSY', 'busy'],
  ['SQLITE_LOCKED', 'busy'],
  ['SQLITE_IOERR', 'io'],
  ['EIO', 'io'],
  ['SQLITE_READONLY', 'read_only'],
  ['SQLITE_CANTOPEN', 'read_only'],
  ['SQLITE_PERM', 'read_only'],
  ['EROFS', 'read_only'],
  ['EACCES', 'read_only'],
  ['EPERM', 'read_only'],
  ['SQLITE_CORRUPT', 'damaged'],
  ['SQLITE_NOTADB', 'damaged'],
  // PostgreSQL's SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
  ['53100', 'disk_full'], // disk_full
  ['55P03', 'busy'], // lock_not_available (a lock_timeout ran out)
  // Two transactions that could not both commit; the database rolled this one back.
  ['40001', 'busy'], // serialization_failure
  ['40P01', 'busy'], // deadlock_detected
  ['58030', 'io'], // io_error
  ['25006', 'read_only'], // read_only_sql_transaction: a standby, or default_transaction_read_only
  ['XX001', 'damaged'], // data_corrupted
  ['XX002', 'damaged'], // index_corrupted
  // The server went away (a restart, a failover, a pooler) or refuses connections for now.
  ['08000', 'unreachable'], // connection_exception
  ['08001', 'unreachable'], // sqlclient_unable_to_establish_sqlconnection
  ['08003', 'unreachable'], // connection_does_not_exist
  ['08004', 'unreachable'], // sqlserver_rejected_establishment_of_sqlconnection
  ['08006', 'unreachable'], // connection_failure
  ['57P01', 'unreachable'], // admin_shutdown (pg_terminate_backend, a fast shutdown)
  ['57P02', 'unreachable'], // crash_shutdown
  ['57P03', 'unreachable'], // cannot_connect_now (starting up, shutting down, recovering)
  ['53300', 'unreachable'], // too_many_connections
  ['ECONNREFUSED', 'unreachable'],
  ['ECONNRESET', 'unreachable'],
  ['ETIMEDOUT', 'unreachable'],
  ['EHOSTUNREACH', 'unreachable'],
  ['ENETUNREACH', 'unreachable'],
];

function errnoCode(error: unknown): string | undefined {
  for (let e = error; e instanceof Error; e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
}

function errnoPath(error: unknown): string | undefined {
  for (let e = error; e instanceof Error; e = e.cause) {
    const where = (e as NodeJS.ErrnoException).path;
    if (typeof where === 'string') return where;
  }
  return undefined;
}

/** Free bytes for an unprivileged writer on the file system holding `file`, or undefined. */
function freeBytes(file: string): number | undefined {
  try {
    const stats = statfsSync(path.dirname(file));
    return stats.bavail * stats.bsize;
  } catch {
    return undefined;
  }
}

const STORE_ERROR_STATUS: Readonly<Record<StoreError['kind'], StatusCode>> = {
  not_found: Status.NOT_FOUND,
  conflict: Status.FAILED_PRECONDITION,
  invalid_argument: Status.INVALID_ARGUMENT,
  ended: Status.FAILED_PRECONDITION,
  too_large: Status.RESOURCE_EXHAUSTED,
};

/** Options of {@link createFailureMapper}. */
export interface FailureMapperOptions {
  /** The database file or PostgreSQL URL, named in the messages of database failures (without a password). */
  dbPath: string;
  /**
   * The artifact store, named for a file-system error that carries no path (a failed write on an
   * open stream): only the artifact files are written through `node:fs`; SQLite reports its own codes.
   */
  artifactStore: string;
  /** Told of every storage failure a call met (health turns NOT_SERVING). */
  onStorageFailure?: (failure: StorageFailure, error: unknown) => void;
}

/** The error mapper for the grpc-adapter's `addService({ mapError })`, built on the table. */
export function createFailureMapper(options: FailureMapperOptions): ErrorMapper {
  return (error) => {
    if (error instanceof StoreError) {
      return new RpcError(STORE_ERROR_STATUS[error.kind], error.message, { cause: error });
    }
    const found = storageFailureOf(error);
    if (!found) return undefined;
    const onDatabase =
      sqliteCode(error) !== undefined || postgresCode(error) !== undefined || found.failure === 'unreachable';
    const where = onDatabase
      ? redactedDatabaseUrl(options.dbPath)
      : (errnoPath(error) ?? options.artifactStore);
    // SQLite reports some writes on a full disk (fsync, the WAL index) as a plain I/O error.
    const failure = found.failure === 'io' && freeBytes(where) === 0 ? 'disk_full' : found.failure;
    options.onStorageFailure?.(failure, error);
    return new RpcError(FAILURE_STATUS[failure].status, FAILURE_STATUS[failure].message(where, found.code), {
      cause: error,
    });
  };
}
