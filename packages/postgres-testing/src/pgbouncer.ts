// A real PgBouncer in front of a test server: Debian's `pgbouncer` package (1.18 on Debian 12, older than
// the 1.21 that keeps protocol-level prepared statements in transaction mode) on a free loopback port, as
// the server's user (PgBouncer refuses root too). For the store's claims about poolers in transaction
// mode: statements moved between server connections, session state lost between transactions.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort, ownedTempDir, type PostgresServer, serverUser } from './postgres-server.ts';

const run = promisify(execFile);
const BINARY = process.env.PGBOUNCER_BIN ?? '/usr/sbin/pgbouncer';

/** Options of {@link startPgbouncer}. */
export interface PgbouncerOptions {
  /** `transaction` (default) or `session`. */
  poolMode?: 'transaction' | 'session';
  /** Server connections per database and user (default 2: few, so that clients share them). */
  poolSize?: number;
}

/** A running PgBouncer; `stop()` or dispose it. */
export interface Pgbouncer extends AsyncDisposable {
  /** The URL of `database` on the server, through the pooler. */
  databaseUrl(database: string): string;
  /** PgBouncer's version line, e.g. `PgBouncer 1.18.0`. */
  readonly version: string;
  stop(): Promise<void>;
}

/** Starts PgBouncer for every database of `server` (trust auth, as the server's loopback). */
export async function startPgbouncer(
  server: PostgresServer,
  options: PgbouncerOptions = {},
): Promise<Pgbouncer> {
  if (!existsSync(BINARY)) {
    throw new Error(
      `PgBouncer not found at ${BINARY}: install it with \`apt-get install --no-install-recommends pgbouncer\` ` +
        '(tools/setup/system-packages.sh does it; no service needs to run) or point PGBOUNCER_BIN at it',
    );
  }
  const version = (await run(BINARY, ['--version'])).stdout.split('\n')[0]!.trim();
  const user = await serverUser();
  const dir = ownedTempDir('training-callbacks-pgbouncer-', user);
  const port = await freePort();
  const ini = join(dir, 'pgbouncer.ini');
  writeFileSync(join(dir, 'users.txt'), '"postgres" ""\n');
  writeFileSync(
    ini,
    [
      '[databases]',
      `* = host=127.0.0.1 port=${server.port}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      `pool_mode = ${options.poolMode ?? 'transaction'}`,
      `default_pool_size = ${options.poolSize ?? 2}`,
      'max_client_conn = 500',
      `logfile = ${join(dir, 'pgbouncer.log')}`,
      // node-postgres sends none of these by default; listed so that a client that does is not refused.
      'ignore_startup_parameters = extra_float_digits,options',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(BINARY, [ini], { ...user, stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (!(await listening(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`PgBouncer did not start (${join(dir, 'pgbouncer.log')})`);
    }
    await sleep(50);
  }
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    child.kill('SIGINT');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    version,
    databaseUrl: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
