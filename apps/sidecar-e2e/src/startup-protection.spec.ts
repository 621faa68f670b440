// Start-up that protects data, with real processes and real files: a damaged database, another
// application's SQLite file, a database another sidecar holds, a taken address, a read-only and a full
// file system. Each is refused before anything is written, with its own exit code and a message that
// names the real cause and what to do.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient, type RpcError } from '@training-callbacks/grpc-adapter';
import { TaskType, TrainingCallbacks, TrainingOutcome } from '@training-callbacks/proto';
import { EXIT_CODES } from '@training-callbacks/sidecar';
import { runSidecarUntilExit, startSidecarProcess } from '@training-callbacks/sidecar/testing';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { fillUp, mountTmpfs, unmount } from './filesystems.ts';
import { healthOf } from './health.ts';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const newDir = () => mkdtemp(path.join(tmpdir(), 'tc-startup-'));
/** The hint every start-up failure used to print, whatever the cause. */
const OLD_HINT = 'Is another sidecar using this address?';

/** A sidecar database with a finished job in it, closed cleanly (its WAL folded into the file). */
async function databaseWithAJob(dataDir: string): Promise<string> {
  const sidecar = await startSidecarProcess({ dataDir, args: ['--quiet'] });
  const client = createClient(TrainingCallbacks, sidecar.address);
  await client.beginTraining({ jobId: 'kept', taskType: TaskType.IMAGE_CLASSIFICATION });
  for (let epoch = 0; epoch < 50; epoch++) {
    await client.endEpoch({
      jobId: 'kept',
      epoch,
      metrics: { accuracy: epoch / 50, train_loss: 1 / (epoch + 1) },
    });
  }
  client.close();
  expect(await sidecar.stop('SIGTERM')).toBe(0);
  return sidecar.dbPath;
}

describe('a damaged database', () => {
  it('is refused with exit code 7 and a message saying how to recover, and the file is left as it was', async () => {
    const dataDir = await newDir();
    const dbPath = await databaseWithAJob(dataDir);
    expect(existsSync(`${dbPath}-wal`)).toBe(false);
    // Overwrite the root page of the epochs table with garbage, as a bad sector or a torn copy would.
    const db = new Database(dbPath, { readonly: true });
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const { rootpage } = db
      .prepare("select rootpage from sqlite_master where name = 'training_metric'")
      .get() as {
      rootpage: number;
    };
    db.close();
    const bytes = readFileSync(dbPath);
    bytes.fill(0xab, (rootpage - 1) * pageSize, rootpage * pageSize);
    writeFileSync(dbPath, bytes);
    const before = sha256(dbPath);

    const { code, output } = await runSidecarUntilExit({ dataDir, args: ['--quiet'] });
    expect(code, output).toBe(EXIT_CODES.damagedDatabase.code);
    expect(code).toBe(7);
    expect(output).toContain(`the database ${dbPath} is damaged`);
    expect(output).toMatch(/quick_check/);
    expect(output).toMatch(/restore it from a backup/);
    expect(output).not.toContain(OLD_HINT);
    expect(sha256(dbPath)).toBe(before);
  });
});

describe("another application's SQLite file", () => {
  it('is refused with exit code 6 and left untouched: no tables added, not switched to WAL', async () => {
    const dataDir = await newDir();
    const dbPath = path.join(dataDir, 'app.sqlite');
    const other = new Database(dbPath);
    other.exec("create table users (id integer primary key, name text); insert into users values (1, 'ada')");
    other.close();
    const before = sha256(dbPath);

    const { code, output } = await runSidecarUntilExit({ dataDir, dbPath });
    expect(code, output).toBe(EXIT_CODES.foreignDatabase.code);
    expect(code).toBe(6);
    expect(output).toContain(`${dbPath} is not a training-callbacks database`);
    expect(output).toContain('users');
    expect(output).not.toContain(OLD_HINT);

    expect(sha256(dbPath)).toBe(before);
    expect(existsSync(`${dbPath}-wal`)).toBe(false);
    const after = new Database(dbPath, { readonly: true });
    expect(after.pragma('journal_mode', { simple: true })).toBe('delete');
    expect(after.prepare('select name from sqlite_master order by name').pluck().all()).toEqual(['users']);
    after.close();
  });

  it('is refused with exit code 6 when it is not SQLite at all', async () => {
    const dataDir = await newDir();
    const dbPath = path.join(dataDir, 'metrics.csv');
    writeFileSync(dbPath, 'epoch,accuracy\n0,0.5\n');
    const { code, output } = await runSidecarUntilExit({ dataDir, dbPath });
    expect(code, output).toBe(6);
    expect(output).toContain('it is not an SQLite database');
    expect(readFileSync(dbPath, 'utf8')).toBe('epoch,accuracy\n0,0.5\n');
  });

  it("an empty new file is taken and marked as this sidecar's", async () => {
    const dataDir = await newDir();
    const dbPath = path.join(dataDir, 'empty.sqlite');
    writeFileSync(dbPath, '');
    await using sidecar = await startSidecarProcess({ dataDir, dbPath, args: ['--quiet'] });
    const client = createClient(TrainingCallbacks, sidecar.address);
    await client.beginTraining({ jobId: 'fresh', taskType: TaskType.IMAGE_CLASSIFICATION });
    client.close();
    const db = new Database(dbPath, { readonly: true });
    expect(db.pragma('application_id', { simple: true })).toBe(0x54434342);
    db.close();
  });
});

describe('a database another sidecar holds', () => {
  it("is refused with exit code 5 (no epoch accepted for the first one's job); free again once that sidecar is gone", async () => {
    const dataDir = await newDir();
    await using first = await startSidecarProcess({ dataDir, args: ['--quiet'] });
    const client = createClient(TrainingCallbacks, first.address);
    await client.beginTraining({ jobId: 'owned', taskType: TaskType.IMAGE_CLASSIFICATION });
    await client.endTraining({ jobId: 'owned', outcome: TrainingOutcome.COMPLETED });

    const { code, output } = await runSidecarUntilExit({ dataDir, args: ['--quiet'] });
    expect(code, output).toBe(EXIT_CODES.databaseInUse.code);
    expect(code).toBe(5);
    expect(output).toContain(`the database ${first.dbPath} is in use by another sidecar`);
    expect(output).toContain(`${first.dbPath}-lock`);
    expect(output).not.toContain(OLD_HINT);

    // The first one serves on, and its completed job stays completed.
    const error = (await client
      .endEpoch({ jobId: 'owned', epoch: 0, metrics: { accuracy: 1 } })
      .catch((e: unknown) => e)) as RpcError;
    expect(error.codeName).toBe('FAILED_PRECONDITION');
    const health = healthOf(first.address);
    expect(await health.status()).toBe('SERVING');
    health.close();
    client.close();

    // The lock dies with its process, however it ends.
    expect(await first.stop('SIGKILL')).toBe('SIGKILL');
    await using second = await startSidecarProcess({ dataDir, args: ['--quiet'] });
    const reader = createClient(TrainingCallbacks, second.address);
    expect((await reader.getJob({ jobId: 'owned' })).job?.status).toBeDefined();
    reader.close();
  });
});

describe('file systems the sidecar cannot write', () => {
  const readOnly = mountTmpfs('1m', true);
  const full = mountTmpfs('2m');
  afterAll(() => {
    unmount(readOnly);
    unmount(full);
  });

  it.skipIf(!('dir' in readOnly))('a read-only one: exit 4, naming the path and the permission', async () => {
    const dir = (readOnly as { dir: string }).dir;
    const { code, output } = await runSidecarUntilExit({ dataDir: dir });
    expect(code, output).toBe(EXIT_CODES.permission.code);
    expect(code).toBe(4);
    expect(output).toContain(dir);
    expect(output).toMatch(/read and write access/);
    expect(output).not.toContain(OLD_HINT);
  });

  it.skipIf(!('dir' in full))('a full one: exit 8, saying to free space', async () => {
    const dir = (full as { dir: string }).dir;
    fillUp(dir);
    const { code, output } = await runSidecarUntilExit({ dataDir: dir });
    expect(code, output).toBe(EXIT_CODES.diskFull.code);
    expect(code).toBe(8);
    expect(output).toMatch(/is full/);
    expect(output).toMatch(/free space there/);
  });
});
