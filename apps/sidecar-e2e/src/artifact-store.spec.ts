// The artifact store cannot be escaped: every job id and artifact path lands inside the store, in the
// job's own directory, against the real sidecar process, its real database (a SQLite file next to the
// store, or PostgreSQL in the PostgreSQL run) and its real store.
// Job ids "." and ".." are valid ids and must neither reach the SQLite file next to the store nor
// another job's files; names the file system cannot hold, and clashes between a file and a directory,
// get a clear refusal that changes nothing.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient, type ServiceClient, Status } from '@training-callbacks/grpc-adapter';
import { TaskType, TrainingCallbacks } from '@training-callbacks/proto';
import { type SidecarProcess, startSidecarProcess } from '@training-callbacks/sidecar/testing';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ON_POSTGRES, queryDatabase } from './database.ts';
import { expectRefused } from './refusals.ts';

type Methods = typeof TrainingCallbacks extends { method: infer M } ? M : never;

let dataDir: string;
let sidecar: SidecarProcess;
let client: ServiceClient<Methods>;
let root: string;
let store: string;

async function start(): Promise<void> {
  sidecar = await startSidecarProcess({ dataDir, args: ['--quiet', '--artifact-root', root] });
  client = createClient(TrainingCallbacks, sidecar.address);
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'tc-artifact-store-'));
  root = path.join(dataDir, 'shared');
  store = path.join(dataDir, 'artifacts'); // the default: next to the database
  await mkdir(root);
  await start();
  for (const jobId of ['..', '.', 'victim', 'clash', 'names'])
    await client.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
  await client.endEpoch({ jobId: 'victim', epoch: 0, metrics: { accuracy: 0.5 } });
});

afterAll(async () => {
  client?.close();
  await sidecar?.[Symbol.asyncDispose]();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function upload(jobId: string, artifactPath: string, content: string | Uint8Array) {
  const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
  return client.uploadArtifact([
    {
      part: {
        case: 'header',
        value: { jobId, artifactPath, sizeBytes: BigInt(bytes.length), sha256: sha256(bytes) },
      },
    },
    { part: { case: 'chunk', value: bytes } },
  ]);
}

/** Where the sidecar says it stored an artifact (the artifact table of its database). */
async function storedPath(jobId: string, artifactPath: string): Promise<string> {
  const rows = await queryDatabase<{ stored_path: string }>(
    sidecar.dbPath,
    'select stored_path from artifact where job_id = ? and artifact_path = ?',
    jobId,
    artifactPath,
  );
  expect(rows).toHaveLength(1);
  return rows[0]!.stored_path;
}

function integrity(dbPath: string): string {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return db.pragma('integrity_check', { simple: true }) as string;
  } finally {
    db.close();
  }
}

describe('job ids "." and ".."', () => {
  it('UploadArtifact(job_id="..", artifact_path="training-callbacks.sqlite") leaves the live database intact', async () => {
    // The old hole (on PostgreSQL there is no file next to the store, but the path must stay inside it).
    if (!ON_POSTGRES) expect(path.join(store, '..', 'training-callbacks.sqlite')).toBe(sidecar.dbPath);
    const garbage = 'this is not a database '.repeat(100);
    const { artifact } = await upload('..', 'training-callbacks.sqlite', garbage);
    expect(artifact?.artifactPath).toBe('training-callbacks.sqlite');

    const stored = await storedPath('..', 'training-callbacks.sqlite');
    expect(stored.startsWith(store + path.sep), stored).toBe(true);
    expect(path.relative(store, stored).split(path.sep)).toEqual(['%2E.', 'training-callbacks.sqlite']);
    expect(await readFile(stored, 'utf8')).toBe(garbage);

    // The live database is still a database, with its data, and survives a crash and a restart.
    if (!ON_POSTGRES) {
      expect((await readFile(sidecar.dbPath)).subarray(0, 16).toString('latin1')).toBe('SQLite format 3\0');
      expect(integrity(sidecar.dbPath)).toBe('ok');
    }
    expect(await sidecar.stop('SIGKILL')).toBe('SIGKILL');
    client.close();
    await start();
    if (!ON_POSTGRES) expect(integrity(sidecar.dbPath)).toBe('ok');
    const { epochs } = await client.listEpochs({ jobId: 'victim' });
    expect(epochs.map((e) => e.metrics.accuracy)).toEqual([0.5]);
    const { artifacts } = await client.listArtifacts({ jobId: '..' });
    // (Job '..' may hold other artifacts of other tests, whichever ran first.)
    const uploaded = artifacts.filter((a) => a.artifactPath === 'training-callbacks.sqlite');
    expect(uploaded.map((a) => a.sha256)).toEqual([sha256(new TextEncoder().encode(garbage))]);
  });

  it('job "." cannot overwrite another job\'s stored files', async () => {
    await upload('victim', 'model.pt', 'the victim’s weights');
    const victimFile = await storedPath('victim', 'model.pt');
    expect(path.relative(store, victimFile)).toBe(path.join('victim', 'model.pt'));
    // With the job directory <store>/<job id>, "." + "victim/model.pt" was <store>/victim/model.pt.
    await upload('.', 'victim/model.pt', 'an attacker’s weights');
    const dotFile = await storedPath('.', 'victim/model.pt');
    expect(path.relative(store, dotFile)).toBe(path.join('%2E', 'victim', 'model.pt'));
    expect(await readFile(victimFile, 'utf8')).toBe('the victim’s weights');
    // …and ".." + "victim/model.pt" cannot reach it either.
    await upload('..', 'artifacts/victim/model.pt', 'another attacker');
    expect(await readFile(victimFile, 'utf8')).toBe('the victim’s weights');
  });

  it('LogArtifact for job ".." copies into its own directory too', async () => {
    await writeFile(path.join(root, 'training-callbacks.sqlite-wal'), 'not a WAL');
    const { artifacts } = await client.logArtifact({
      jobId: '..',
      path: path.join(root, 'training-callbacks.sqlite-wal'),
    });
    expect(artifacts.map((a) => a.artifactPath)).toEqual(['training-callbacks.sqlite-wal']);
    const stored = await storedPath('..', 'training-callbacks.sqlite-wal');
    expect(path.relative(store, stored)).toBe(path.join('%2E.', 'training-callbacks.sqlite-wal'));
    if (!ON_POSTGRES) expect(integrity(sidecar.dbPath)).toBe('ok');
  });
});

describe('names', () => {
  it('long and non-ASCII job ids get a bounded directory inside the store', async () => {
    const jobId = '😀'.repeat(128); // 128 characters (256 UTF-16 units): the longest job id
    await client.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
    await upload(jobId, 'ü/best.pt', 'x');
    const relative = path.relative(store, await storedPath(jobId, 'ü/best.pt')).split(path.sep);
    expect(relative).toHaveLength(3);
    expect(relative[0]!.length).toBeLessThanOrEqual(120);
    expect(relative[0]).toMatch(/^(%[0-9A-F]{2})+[%0-9A-F]*~[0-9a-f]{32}$/);
    expect(relative.slice(1)).toEqual(['ü', 'best.pt']);
  });

  it('a name over 255 bytes is refused with the limit (it was INTERNAL: ENAMETOOLONG)', async () => {
    await expectRefused(
      sidecar.dbPath,
      () => upload('names', `ckpt/${'é'.repeat(200)}.pt`, 'x'),
      Status.INVALID_ARGUMENT,
      /403 bytes long in UTF-8; the limit per name \(between "\/"\) is 255 bytes/,
    );
    await expectRefused(
      sidecar.dbPath,
      () => client.logArtifact({ jobId: 'names', path: path.join(root, 'x'), artifactPath: 'y'.repeat(256) }),
      Status.INVALID_ARGUMENT,
      /artifact_path .*the limit per name .* 255 bytes/,
    );
  });

  it('an artifact path over 512 characters is refused with the limit', () =>
    expectRefused(
      sidecar.dbPath,
      () => upload('names', Array(200).fill('ab').join('/'), 'x'),
      Status.INVALID_ARGUMENT,
      /599 characters long; the limit is 512/,
    ));

  it('file names from LogArtifact obey the artifact_path rules: refused whole, naming the file', async () => {
    const dir = path.join(root, 'run1');
    await mkdir(dir);
    await writeFile(path.join(dir, 'good.txt'), 'fine');
    await writeFile(path.join(dir, 'bad\\name.txt'), 'backslash');
    await expectRefused(
      sidecar.dbPath,
      () => client.logArtifact({ jobId: 'names', path: dir, artifactPath: 'logs' }),
      Status.INVALID_ARGUMENT,
      /file ".*bad\\\\name.txt" would be stored as artifact "logs\/bad\\\\name.txt", which must be a relative path with "\/" separators/,
    );
    const controls = path.join(root, 'run2');
    await mkdir(controls);
    await writeFile(path.join(controls, 'tab\there.txt'), 'tab');
    await expectRefused(
      sidecar.dbPath,
      () => client.logArtifact({ jobId: 'names', path: path.join(controls, 'tab\there.txt') }),
      Status.INVALID_ARGUMENT,
      /would be stored as artifact "tab\\there.txt", which contains control characters/,
    );
    // A prefix plus a long file name can exceed the path limit only through the prefix: 255 bytes fit.
    const long = path.join(root, `${'n'.repeat(251)}.txt`);
    await writeFile(long, 'long name');
    const { artifacts } = await client.logArtifact({ jobId: 'names', path: long, artifactPath: 'deep' });
    expect(artifacts[0]!.artifactPath).toBe(`deep/${'n'.repeat(251)}.txt`);
  });

  it('a file name that is not UTF-8 is refused', async () => {
    const dir = path.join(root, 'latin1');
    await mkdir(dir);
    await writeFile(
      Buffer.concat([Buffer.from(`${dir}/caf`), Buffer.from([0xe9]), Buffer.from('.txt')]),
      'x',
    );
    await expectRefused(
      sidecar.dbPath,
      () => client.logArtifact({ jobId: 'names', path: dir }),
      Status.INVALID_ARGUMENT,
      /not valid UTF-8/,
    );
  });
});

describe('a clash with a stored artifact', () => {
  it('a file where the job stores a directory, and a directory where it stores a file: FAILED_PRECONDITION naming it', async () => {
    await upload('clash', 'ckpt/best.pt', 'best');
    await upload('clash', 'model', 'model');
    await expectRefused(
      sidecar.dbPath,
      () => upload('clash', 'ckpt', 'x'),
      Status.FAILED_PRECONDITION,
      /artifact "ckpt" would be a file, but the job already stores "ckpt\/best.pt" inside it as a directory/,
    );
    await expectRefused(
      sidecar.dbPath,
      () => upload('clash', 'model/v2.pt', 'x'),
      Status.FAILED_PRECONDITION,
      /artifact "model\/v2.pt" needs "model" to be a directory, but the job already stores "model" as a file/,
    );
    const dir = path.join(root, 'model-dir');
    await mkdir(dir);
    await writeFile(path.join(dir, 'a.txt'), 'a');
    await expectRefused(
      sidecar.dbPath,
      () => client.logArtifact({ jobId: 'clash', path: dir, artifactPath: 'model' }),
      Status.FAILED_PRECONDITION,
      /"model\/a.txt" needs "model" to be a directory/,
    );
    // The same path again replaces the artifact.
    const { artifact } = await upload('clash', 'model', 'model v2');
    expect(await readFile(await storedPath('clash', 'model'), 'utf8')).toBe('model v2');
    expect(artifact?.sizeBytes).toBe(8n);
  });

  it('a leftover in the store that no artifact records (a crash between copy and commit) is a clash too', async () => {
    await upload('clash', 'anchor', 'where the job keeps its files'); // (its own: no test relies on another's)
    const jobDir = path.dirname(await storedPath('clash', 'anchor'));
    await writeFile(path.join(jobDir, 'orphan'), 'left behind');
    await expectRefused(
      sidecar.dbPath,
      () => upload('clash', 'orphan/x.pt', 'x'),
      Status.FAILED_PRECONDITION,
      /artifact "orphan\/x.pt" clashes with a file or directory already in the sidecar's artifact store/,
    );
    // Overwriting the leftover itself is fine: nothing recorded it.
    await upload('clash', 'orphan', 'recorded now');
    expect(await readFile(path.join(jobDir, 'orphan'), 'utf8')).toBe('recorded now');
  });
});

describe("an artifact root that also holds the sidecar's own files (one shared volume)", () => {
  it('LogArtifact refuses the database, the artifact store and directories holding them', async () => {
    // The sidecar is given the volume through a symlink; the trainer names files by the real path.
    const volume = await mkdtemp(path.join(tmpdir(), 'tc-shared-volume-'));
    const link = `${volume}-link`;
    await symlink(volume, link);
    await using shared = await startSidecarProcess({
      dataDir: link,
      args: ['--quiet', '--artifact-root', link],
    });
    const c = createClient(TrainingCallbacks, shared.address);
    try {
      await c.beginTraining({ jobId: 'other', taskType: TaskType.IMAGE_CLASSIFICATION });
      const bytes = new TextEncoder().encode('another job’s weights');
      await c.uploadArtifact([
        {
          part: {
            case: 'header',
            value: {
              jobId: 'other',
              artifactPath: 'w.pt',
              sizeBytes: BigInt(bytes.length),
              sha256: sha256(bytes),
            },
          },
        },
        { part: { case: 'chunk', value: bytes } },
      ]);
      await c.beginTraining({ jobId: 'thief', taskType: TaskType.IMAGE_CLASSIFICATION });
      const cases: [string, RegExp][] = [
        // The SQLite file and its WAL (on PostgreSQL the database is no file on the volume).
        ...(ON_POSTGRES
          ? []
          : ([
              [shared.dbPath, /is the sidecar's database/],
              [path.join(volume, 'training-callbacks.sqlite'), /is the sidecar's database/],
              [`${shared.dbPath}-wal`, /is the sidecar's database/],
              [`${shared.dbPath}-shm`, /is the sidecar's database/],
              // The lock that keeps a second sidecar off the file: reading it would drop that lock.
              [`${shared.dbPath}-lock`, /is the sidecar's database/],
            ] as [string, RegExp][])),
        [path.join(volume, 'artifacts', 'other', 'w.pt'), /lies inside the sidecar's own artifact store/],
        [path.join(volume, 'artifacts'), /lies inside the sidecar's own artifact store/],
        [volume, /holds the sidecar's own artifact store/],
      ];
      for (const [requested, message] of cases) {
        await expectRefused(
          shared.dbPath,
          () => c.logArtifact({ jobId: 'thief', path: requested }),
          Status.PERMISSION_DENIED,
          message,
        );
      }
      // The trainer's own files on the same volume are fine.
      await mkdir(path.join(volume, 'runs'));
      await writeFile(path.join(volume, 'runs', 'best.pt'), 'mine');
      const { artifacts } = await c.logArtifact({ jobId: 'thief', path: path.join(volume, 'runs') });
      expect(artifacts.map((a) => a.artifactPath)).toEqual(['best.pt']);
    } finally {
      c.close();
      await shared.stop('SIGKILL');
      await rm(link, { force: true });
      await rm(volume, { recursive: true, force: true });
    }
  });
});

it('stages uploads outside every job directory and leaves no staging file behind', async () => {
  await upload('names', 'staged.bin', 'staged');
  expect(await readdir(path.join(store, '.incoming'))).toEqual([]);
});

describe('an upload whose database write fails after its file was placed', () => {
  // SQLite only: the failure is another process holding the SQLite file's write lock.
  it.skipIf(ON_POSTGRES)(
    'leaves the store as the database says: no new file, and a replaced version put back',
    async () => {
      await using locked = await startSidecarProcess({ args: ['--quiet'] });
      const c = createClient(TrainingCallbacks, locked.address);
      const send = (artifactPath: string, text: string) => {
        const bytes = new TextEncoder().encode(text);
        return c.uploadArtifact([
          {
            part: {
              case: 'header',
              value: { jobId: 'redo', artifactPath, sizeBytes: BigInt(bytes.length), sha256: sha256(bytes) },
            },
          },
          { part: { case: 'chunk', value: bytes } },
        ]);
      };
      await c.beginTraining({ jobId: 'redo', taskType: TaskType.IMAGE_CLASSIFICATION });
      const first = await send('model.pt', 'version 1');
      const lockedStore = path.join(path.dirname(locked.dbPath), 'artifacts');
      const listing = () => readdir(lockedStore, { recursive: true }).then((names) => names.sort());
      const before = await listing();

      // Another process holds the write lock: the file is received, checked and moved into place, and
      // then the record cannot be written (UNAVAILABLE after the busy wait).
      const other = new Database(locked.dbPath);
      other.exec('BEGIN IMMEDIATE');
      try {
        await expectRefused(locked.dbPath, () => send('model.pt', 'version 2'), Status.UNAVAILABLE, /locked/);
        await expectRefused(
          locked.dbPath,
          () => send('other.pt', 'never recorded'),
          Status.UNAVAILABLE,
          /locked/,
        );
      } finally {
        other.exec('ROLLBACK');
        other.close();
      }
      expect(await listing()).toEqual(before);
      const [{ stored_path: stored }] = (await queryDatabase<{ stored_path: string }>(
        locked.dbPath,
        "select stored_path from artifact where job_id = 'redo' and artifact_path = 'model.pt'",
      )) as [{ stored_path: string }];
      expect(await readFile(stored, 'utf8')).toBe('version 1');
      expect(sha256(await readFile(stored))).toBe(first.artifact!.sha256);

      // Once the lock is gone the same upload is stored (health recovers by itself first).
      for (const until = Date.now() + 15_000; ; await new Promise((r) => setTimeout(r, 100))) {
        const again = await send('model.pt', 'version 2').catch((e: unknown) => e);
        if (!(again instanceof Error)) break;
        if (Date.now() > until) throw again;
      }
      expect(await readFile(stored, 'utf8')).toBe('version 2');
      c.close();
    },
  );
});
