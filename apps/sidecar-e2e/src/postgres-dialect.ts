// Whether the sidecar serves `--db postgres://…` (the PostgreSQL dialect of packages/store), asked of
// the real sidecar: started on a fresh server, it must create its tables there. A sidecar that refuses the
// URL, or takes it for a SQLite file name, leaves the server's database empty.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startPostgres } from '../../../packages/postgres-testing/src/postgres-server.ts';

const SIDECAR_MAIN = path.join(import.meta.dirname, '..', '..', 'sidecar', 'src', 'main.ts');

/** Undefined when the sidecar stores its tables in PostgreSQL; else why not (the sidecar's words). */
export async function postgresDialectRefusal(): Promise<string | undefined> {
  await using pg = await startPostgres({ database: 'probe' });
  const cwd = await mkdtemp(path.join(tmpdir(), 'tc-pg-probe-'));
  try {
    const args = ['--conditions=@training-callbacks/source', SIDECAR_MAIN, '--db', pg.url];
    const child = spawn(process.execPath, [...args, '--listen', '127.0.0.1:0', '--http', 'off'], { cwd });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const outcome = await new Promise<string>((resolve) => {
      const settle = (how: string) => {
        clearTimeout(timer);
        resolve(how);
      };
      const timer = setTimeout(() => settle('no "listening on" within 60 s'), 60_000);
      child.stdout.on('data', () => /listening on/.test(output) && settle('listening'));
      child.once('exit', (code) => settle(`exited (${code})`));
      child.once('error', (error) => settle(`failed (${error.message})`));
    });
    const exited = new Promise((resolve) =>
      child.exitCode === null ? child.once('close', resolve) : resolve(0),
    );
    child.kill('SIGKILL');
    await exited;
    const [[tables] = ['0']] = await pg.sql(
      "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    );
    if (outcome === 'listening' && Number(tables) > 0) return undefined;
    return `the sidecar started with --db ${pg.url} ${outcome} and created no tables in PostgreSQL:\n${output.trim()}`;
  } finally {
    await rm(cwd, { recursive: true, force: true });
  }
}
