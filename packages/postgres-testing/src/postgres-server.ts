// A real PostgreSQL server for tests and benchmarks: the installed server binaries (Debian's `postgresql`
// package) started on a free loopback port with a throw-away data directory, as a non-root user. Real
// locks and real connections — what the store's multi-sidecar rules must hold against — which an
// in-process substitute (PGlite: one connection) would not give.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Options of {@link startPostgres}. */
export interface PostgresServerOptions {
  /** The database created at start, named in `url`; default `test`. */
  database?: string;
  /** Extra server settings (`-c name=value`), e.g. `{ max_connections: 400 }`; they win over the defaults. */
  settings?: Record<string, string | number>;
}

/** A running server; `stop()` or dispose it. */
export interface PostgresServer extends AsyncDisposable {
  /** `postgres://postgres@127.0.0.1:<port>/<database>` (superuser `postgres`, trust auth on loopback). */
  readonly url: string;
  readonly port: number;
  /** The server's major version, e.g. `15`. */
  readonly version: number;
  /** The server's log file (kept until `stop()`); its tail is quoted in start failures. */
  readonly logFile: string;
  /** False after `kill()` (or a failed restart) until `restart()` brings the server back. */
  readonly running: boolean;
  /** The URL of another database on this server (see `createDatabase`). */
  databaseUrl(database: string): string;
  /** Creates a database (optionally as a copy of `template`, e.g. a migrated one) and returns its URL. */
  createDatabase(database: string, options?: { template?: string }): Promise<string>;
  /**
   * Runs SQL with `psql` (no driver needed) and returns the rows of the last statement, each a list of
   * column texts (NULL as ''). Throws with psql's message on an SQL error.
   */
  sql(statement: string, options?: { database?: string }): Promise<string[][]>;
  /**
   * Fast shutdown (clients are disconnected, as when a database is restarted for maintenance), `downMs` of
   * nothing listening on the port, then the server again on the same port with the same data. Also brings
   * the server back after `kill()`.
   */
  restart(options?: { downMs?: number }): Promise<void>;
  /** SIGKILL the postmaster and all its backends at once (a crash: no shutdown checkpoint, recovery on restart). */
  kill(): Promise<void>;
  /** Shuts the server down and deletes its data directory; idempotent. Also done at process exit. */
  stop(): Promise<void>;
}

const INSTALL_HINT =
  'install them with `apt-get install --no-install-recommends postgresql` (tools/setup/system-packages.sh does it; ' +
  'no service needs to run) or point PG_BIN at a directory holding initdb, postgres, pg_isready and psql';

/** The directory of the server binaries: `PG_BIN`, else the newest `/usr/lib/postgresql/<major>/bin`. */
function findBinaries(): string {
  const explicit = process.env.PG_BIN;
  const candidates = explicit
    ? [explicit]
    : (existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql') : [])
        .filter((name) => /^\d+$/.test(name))
        .sort((a, b) => Number(b) - Number(a))
        .map((major) => `/usr/lib/postgresql/${major}/bin`);
  const found = candidates.find((dir) =>
    ['initdb', 'postgres', 'pg_isready', 'psql'].every((bin) => existsSync(join(dir, bin))),
  );
  if (!found) {
    const looked = explicit ? `PG_BIN=${explicit}` : '/usr/lib/postgresql/<major>/bin';
    throw new Error(`PostgreSQL server binaries not found (looked in ${looked}): ${INSTALL_HINT}`);
  }
  return found;
}

/** Who runs the server: PostgreSQL refuses root, so root hands it to the `postgres` user (or `PG_TEST_USER`). */
export async function serverUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const name = process.env.PG_TEST_USER ?? 'postgres';
  try {
    const uid = Number((await run('id', ['-u', name])).stdout.trim());
    const gid = Number((await run('id', ['-g', name])).stdout.trim());
    return { uid, gid };
  } catch {
    throw new Error(
      `running as root, and PostgreSQL refuses to run as root, but there is no user "${name}" to run it as: ` +
        `create one (useradd --system ${name}), set PG_TEST_USER to another, or ${INSTALL_HINT}`,
    );
  }
}

type User = Awaited<ReturnType<typeof serverUser>>;

/** A temp directory the server user owns (the server user must be able to enter it). */
export function ownedTempDir(prefix: string, user: User): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (user) chownSync(dir, user.uid, user.gid);
  return dir;
}

/**
 * An initdb'd data directory, made once per machine, user and major version and copied for each server:
 * initdb takes seconds on a busy 2-core machine, a copy a fraction of one. Built aside and renamed into
 * place, so concurrent test processes never see half a template.
 */
async function templateDataDir(bin: string, version: number, user: User): Promise<string> {
  const template = join(
    tmpdir(),
    `training-callbacks-postgres-${version}-template-uid${user?.uid ?? process.getuid?.()}`,
  );
  if (existsSync(join(template, 'PG_VERSION'))) return template;
  const build = ownedTempDir('training-callbacks-postgres-initdb-', user);
  try {
    const data = join(build, 'data');
    await run(
      join(bin, 'initdb'),
      [
        '-D',
        data,
        '-U',
        'postgres',
        '--auth=trust',
        '--no-sync',
        '-E',
        'UTF8',
        '--locale=C.UTF-8',
        '--no-instructions',
      ],
      { ...user },
    ).catch((error: { stderr?: string }) => {
      throw new Error(`initdb failed: ${error.stderr?.trim() || String(error)}`);
    });
    try {
      renameSync(data, template);
    } catch (error) {
      // Another process put its template in place first: use that one.
      if (!existsSync(join(template, 'PG_VERSION'))) throw error;
    }
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
  return template;
}

let databasesMade = 0;

/**
 * Creates a fresh, uniquely named database on the server of `serverUrl` (any database's URL on it, e.g. a
 * {@link PostgresServer}'s `url`, passed between processes through the environment) and returns its URL.
 * For helpers that give every sidecar of a run its own database on one shared server.
 */
export async function createTestDatabase(serverUrl: string, prefix = 'tc'): Promise<string> {
  const name = `${prefix}_${process.pid}_${++databasesMade}_${Math.random().toString(36).slice(2, 8)}`;
  const url = new URL(serverUrl);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  await run(join(findBinaries(), 'psql'), [
    '-X',
    '-q',
    '-v',
    'ON_ERROR_STOP=1',
    '-d',
    admin.href,
    '-c',
    `CREATE DATABASE "${name}"`,
  ]).catch((error: { stderr?: string }) => {
    throw new Error(`creating a test database on ${url.host}: ${error.stderr?.trim() || String(error)}`);
  });
  url.pathname = `/${name}`;
  return url.href;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === 'string') throw new Error('no loopback port');
  return address.port;
}

const live = new Set<{ killNow(): void }>();
process.once('exit', () => {
  for (const server of live) server.killNow();
});

// Settings for speed, not durability: tests crash the server on purpose, never the machine.
const DEFAULT_SETTINGS: Record<string, string | number> = {
  listen_addresses: '127.0.0.1',
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_connections: 300,
  shared_buffers: '64MB',
  max_wal_size: '1GB',
  log_min_messages: 'warning',
  log_statement: 'none',
};

/**
 * Starts a PostgreSQL server on a free `127.0.0.1` port with its own temp data and socket directories and a
 * database (`test` unless named), ready for connections. One server per test file is the intended use:
 * files can then restart or kill theirs without disturbing others. Throws with what to install when the
 * server binaries are missing.
 */
export async function startPostgres(options: PostgresServerOptions = {}): Promise<PostgresServer> {
  const bin = findBinaries();
  const { stdout: versionText } = await run(join(bin, 'postgres'), ['--version']);
  const version = Number(/\(PostgreSQL\) (\d+)/.exec(versionText)?.[1] ?? 0);
  const user = await serverUser();
  const template = await templateDataDir(bin, version, user);
  const root = ownedTempDir('training-callbacks-postgres-', user);
  const data = join(root, 'data');
  const sockets = join(root, 'sockets');
  const logFile = join(root, 'server.log');
  mkdirSync(sockets);
  if (user) chownSync(sockets, user.uid, user.gid);
  await run('cp', ['-a', template, data], { ...user });

  const database = options.database ?? 'test';
  const settings = { ...DEFAULT_SETTINGS, ...options.settings };
  let port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stopped = false;

  const logTail = () => {
    try {
      return readFileSync(logFile, 'utf8').trim().split('\n').slice(-15).join('\n');
    } catch {
      return '(no log)';
    }
  };

  const spawnServer = async () => {
    const log = openSync(logFile, 'a');
    const args = ['-D', data, '-p', String(port), '-k', sockets];
    for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
    // Own process group, so kill() takes the backends down with the postmaster, as a crash would.
    const proc = spawn(join(bin, 'postgres'), args, { ...user, detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    child = proc;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    proc.once('exit', () => {
      if (child === proc) child = undefined;
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child !== proc) throw new Error(`PostgreSQL did not start (log ${logFile}):\n${logTail()}`);
      const ready = await run(join(bin, 'pg_isready'), [
        '-q',
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-U',
        'postgres',
      ]).then(
        () => true,
        () => false,
      );
      if (ready) return;
      if (Date.now() > deadline)
        throw new Error(`PostgreSQL did not get ready in 30 s (log ${logFile}):\n${logTail()}`);
      await sleep(50);
    }
  };

  const signal = (name: NodeJS.Signals, group: boolean) => {
    const pid = child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(group ? -pid : pid, name);
    } catch {
      // Already gone.
    }
  };

  const shutDown = async () => {
    if (!child) return;
    signal('SIGINT', false); // fast shutdown: disconnect clients, checkpoint, exit
    const gone = await Promise.race([
      exited.then(() => true),
      sleep(15_000, undefined, { ref: false }).then(() => false),
    ]);
    if (!gone) signal('SIGKILL', true);
    await exited;
  };

  const sql = async (statement: string, opts: { database?: string } = {}) => {
    const args = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-F', '\x1f', '-R', '\x1e'];
    const target = ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', opts.database ?? database];
    args.push(...target, '-c', statement);
    const { stdout } = await run(join(bin, 'psql'), args, { maxBuffer: 256 * 1024 * 1024 }).catch(
      (error: { stderr?: string }) => {
        throw new Error(`psql: ${error.stderr?.trim() || String(error)}`);
      },
    );
    const text = stdout.replace(/\n$/, '');
    return text === '' ? [] : text.split('\x1e').map((row) => row.split('\x1f'));
  };

  const entry = {
    killNow() {
      signal('SIGKILL', true);
      rmSync(root, { recursive: true, force: true });
    },
  };
  live.add(entry);

  const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
  const databaseUrl = (name: string) => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(name)}`;

  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await spawnServer();
        break;
      } catch (error) {
        // The free port was taken between probing and binding: try another.
        if (attempt >= 3 || !/could not (bind|create listen socket)/i.test(logTail())) throw error;
        port = await freePort();
      }
    }
    await sql(`CREATE DATABASE ${quote(database)}`, { database: 'postgres' });
  } catch (error) {
    live.delete(entry);
    entry.killNow();
    throw error;
  }

  const server: PostgresServer = {
    get url() {
      return databaseUrl(database);
    },
    get port() {
      return port;
    },
    version,
    logFile,
    get running() {
      return child !== undefined;
    },
    databaseUrl,
    async createDatabase(name, opts = {}) {
      const template = opts.template ? ` TEMPLATE ${quote(opts.template)}` : '';
      await sql(`CREATE DATABASE ${quote(name)}${template}`, { database: 'postgres' });
      return databaseUrl(name);
    },
    sql,
    async restart(opts = {}) {
      if (stopped) throw new Error('restart() after stop()');
      await shutDown();
      if (opts.downMs) await sleep(opts.downMs);
      await spawnServer();
    },
    async kill() {
      if (!child) return;
      signal('SIGKILL', true);
      await exited;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await shutDown();
      live.delete(entry);
      rmSync(root, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]() {
      return server.stop();
    },
  };
  return server;
}
