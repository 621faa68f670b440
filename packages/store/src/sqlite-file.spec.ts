// The start-up checks on real files: what is taken as this store's database, what is refused and
// left untouched, the integrity check and its time bound, and the database lock.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DatabaseOpenError, lockDatabase, openStore, SIDECAR_APPLICATION_ID } from './index.ts';
import { SQLITE_MIGRATIONS } from './migrations/sqlite/index.ts';
import { checkIntegrity, inspectDatabaseFile } from './sqlite-file.ts';
import { sampleJob } from './testing.ts';

let dir: string;
let dbPath: string;
const FIRST = SQLITE_MIGRATIONS[0]!.name;
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'store-file-'));
  dbPath = join(dir, 'db.sqlite');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A store database with one job, closed (its WAL folded into the file). */
async function storeFile(): Promise<void> {
  const store = await openStore({ dbPath });
  await store.createOrGetJob(sampleJob('j', { framework: 'custom', modelName: '' }));
  await store.close();
}

function refusal(fn: () => unknown): DatabaseOpenError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DatabaseOpenError);
    return error as DatabaseOpenError;
  }
  throw new Error('not refused');
}

describe('inspectDatabaseFile', () => {
  it('takes a missing or empty file as new, and a file this store made as its own', async () => {
    expect(inspectDatabaseFile(dbPath, FIRST)).toBe('new');
    writeFileSync(dbPath, '');
    expect(inspectDatabaseFile(dbPath, FIRST)).toBe('new');
    rmSync(dbPath);
    await storeFile();
    expect(inspectDatabaseFile(dbPath, FIRST)).toBe('ours');
  });

  it('takes a database of this store from before the application id, and the store marks it', async () => {
    await storeFile();
    const raw = new DatabaseSync(dbPath);
    raw.exec('PRAGMA application_id = 0');
    raw.close();
    expect(inspectDatabaseFile(dbPath, FIRST)).toBe('legacy');
    const store = await openStore({ dbPath });
    expect((await store.getJob('j'))?.jobId).toBe('j');
    await store.close();
    expect(inspectDatabaseFile(dbPath, FIRST)).toBe('ours');
  });

  it("refuses another application's database and a file that is not SQLite, leaving them untouched", async () => {
    const raw = new DatabaseSync(dbPath);
    raw.exec('create table orders (id integer primary key); insert into orders values (7)');
    raw.close();
    const before = sha(dbPath);
    const byTables = refusal(() => inspectDatabaseFile(dbPath, FIRST));
    expect(byTables.reason).toBe('foreign');
    expect(byTables.message).toContain('orders');
    await expect(openStore({ dbPath })).rejects.toMatchObject({ reason: 'foreign' });
    expect(sha(dbPath)).toBe(before);

    const other = new DatabaseSync(dbPath);
    other.exec('PRAGMA application_id = 1234');
    other.close();
    expect(refusal(() => inspectDatabaseFile(dbPath, FIRST)).message).toContain('application_id is 0x4d2');

    writeFileSync(dbPath, '{"not": "sqlite"}');
    expect(refusal(() => inspectDatabaseFile(dbPath, FIRST)).message).toContain('not an SQLite database');
    writeFileSync(dbPath, 'SQLite fo');
    expect(refusal(() => inspectDatabaseFile(dbPath, FIRST)).reason).toBe('damaged');
  });

  it('writes the application id into every new database', async () => {
    await storeFile();
    const raw = new DatabaseSync(dbPath, { readOnly: true });
    expect(raw.prepare('PRAGMA application_id').get()).toEqual({ application_id: SIDECAR_APPLICATION_ID });
    raw.close();
  });
});

/** Overwrites the root page of the epochs table with garbage. */
function damageEpochsTable(): void {
  const raw = new DatabaseSync(dbPath, { readOnly: true });
  const pageSize = (raw.prepare('PRAGMA page_size').get() as { page_size: number }).page_size;
  const { rootpage } = raw
    .prepare("select rootpage from sqlite_master where name = 'training_metric'")
    .get() as {
    rootpage: number;
  };
  raw.close();
  const bytes = readFileSync(dbPath);
  bytes.fill(0xab, (rootpage - 1) * pageSize, rootpage * pageSize);
  writeFileSync(dbPath, bytes);
}

describe('checkIntegrity', () => {
  it('passes a sound database and refuses a damaged one, which openStore then leaves untouched', async () => {
    await storeFile();
    expect(await checkIntegrity(dbPath, { timeoutMs: 20_000 })).toBe('ok');
    damageEpochsTable();
    const before = sha(dbPath);
    await expect(checkIntegrity(dbPath, { timeoutMs: 20_000 })).rejects.toMatchObject({ reason: 'damaged' });
    await expect(openStore({ dbPath })).rejects.toMatchObject({ reason: 'damaged' });
    expect(sha(dbPath)).toBe(before);
  });

  it('stops waiting after its time bound, and a late finding still arrives', async () => {
    await storeFile();
    damageEpochsTable();
    let reportLate: (error: Error) => void = () => {};
    const late = new Promise<Error>((resolve) => {
      reportLate = resolve;
    });
    // 1 ms: the thread has not even started when start-up stops waiting.
    expect(await checkIntegrity(dbPath, { timeoutMs: 1, onLateDamage: reportLate })).toBe('still-running');
    expect(await late).toMatchObject({ reason: 'damaged' });
  });
});

describe('lockDatabase', () => {
  it('refuses a second holder while the first holds the lock, and is free once released', () => {
    const first = lockDatabase(dbPath);
    const second = refusal(() => lockDatabase(dbPath));
    expect(second.reason).toBe('in_use');
    expect(second.message).toContain(`${dbPath}-lock`);
    first.release();
    lockDatabase(dbPath).release();
  });
});

describe('probeWrite', () => {
  it('commits a write another connection sees', async () => {
    const store = await openStore({ dbPath });
    const other = new DatabaseSync(dbPath, { readOnly: true });
    const version = () =>
      (other.prepare('PRAGMA data_version').get() as { data_version: number }).data_version;
    const before = version();
    await store.probeWrite();
    expect(version()).not.toBe(before);
    other.close();
    await store.close();
  });
});
