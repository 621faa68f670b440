// The sidecar's exit codes, one per cause an operator handles differently, and the start-up failure
// → exit code + hint mapping. `--help` and the README list this table.
import { DatabaseOpenError, type DatabaseRefusal } from '@training-callbacks/store';

/** Exit codes, with what each means. */
export const EXIT_CODES = {
  ok: { code: 0, meaning: 'stopped cleanly (SIGTERM/SIGINT), or --help' },
  failure: { code: 1, meaning: 'any other failure; the message says what happened' },
  config: { code: 2, meaning: 'a bad flag or environment variable' },
  addressInUse: {
    code: 3,
    meaning: 'the --listen address is in use (another process, or a stale unix socket)',
  },
  permission: {
    code: 4,
    meaning: 'no permission to bind --listen or to write the database or its directory',
  },
  databaseInUse: { code: 5, meaning: 'another sidecar holds the database (its <db>-lock file)' },
  foreignDatabase: { code: 6, meaning: "--db is not this sidecar's database (another application's file)" },
  damagedDatabase: { code: 7, meaning: 'the database is damaged (start-up integrity check)' },
  diskFull: { code: 8, meaning: 'the file system holding the database is full' },
} as const;

/** The table as `--help` prints it. */
export function exitCodesHelp(): string {
  return Object.values(EXIT_CODES)
    .map(({ code, meaning }) => `  ${String(code).padStart(2)}  ${meaning}`)
    .join('\n');
}

const REFUSAL_EXIT: Readonly<Record<DatabaseRefusal, keyof typeof EXIT_CODES>> = {
  in_use: 'databaseInUse',
  foreign: 'foreignDatabase',
  damaged: 'damagedDatabase',
  disk_full: 'diskFull',
  permission: 'permission',
};

/** Binding `--listen` failed (grpc-js reports the cause only in its message). */
export class ListenError extends Error {
  override readonly name = 'ListenError';
  readonly listen: string;

  constructor(listen: string, cause: Error) {
    super(cause.message, { cause });
    this.listen = listen;
  }
}

/** What main prints and exits with when the sidecar could not start. */
export function startupFailure(
  error: unknown,
  where: { listen: string; dbPath: string },
): { exitCode: number; message: string } {
  const message = error instanceof Error ? error.message : String(error);
  const exit = (name: keyof typeof EXIT_CODES, text: string) => ({
    exitCode: EXIT_CODES[name].code,
    message: `training-callbacks: could not start: ${text}`,
  });
  if (error instanceof DatabaseOpenError) return exit(REFUSAL_EXIT[error.reason], error.message);
  if (error instanceof ListenError) {
    const unix = error.listen.startsWith('unix:');
    if (/\bEADDRINUSE\b/.test(message)) {
      return exit(
        'addressInUse',
        `${error.listen} is already in use (${message}). ` +
          (unix
            ? `Another process serves on that socket, or a crashed sidecar left it behind: if none runs, remove ${error.listen.slice(5)}; or pick another --listen`
            : 'Another process (perhaps another sidecar) listens there: stop it, or pick another --listen (port 0 = any free port)'),
      );
    }
    if (/\bEACCES\b|\bEPERM\b/.test(message)) {
      return exit(
        'permission',
        `no permission to listen on ${error.listen} (${message}). ` +
          (unix
            ? "Choose a socket path in a directory the sidecar's user can write"
            : 'Ports below 1024 need privileges: pick a port ≥ 1024'),
      );
    }
    return exit(
      'failure',
      `cannot listen on ${error.listen} (${message}); check --listen (host:port or unix:/path)`,
    );
  }
  return exit('failure', `with --listen ${where.listen} and --db ${where.dbPath}: ${message}`);
}
