// Artifact files: confined reads from the trainer's shared volume and streamed uploads, both copied
// into the sidecar's own artifact store before the call is acknowledged — a trainer that overwrites
// last.pt a second later cannot change what was logged, and the MLflow bridge uploads from here.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { type ArtifactRecord, DATABASE_FILE_SUFFIXES } from '@training-callbacks/store';
import { artifactClash, INCOMING_DIR, storedPathOf } from './artifact-layout.ts';
import { artifactPathProblem, quote } from './validation.ts';

/** A directory with more files than this is almost certainly the wrong directory. */
export const MAX_FILES_PER_DIRECTORY = 10000;

export interface ArtifactFiles {
  /** Resolves a trainer-side path and checks it lies under an artifact root; returns its real path. */
  confine(requested: string): Promise<string>;
  /**
   * Copies a file or every file under a directory into the store; returns the records. `stored` are
   * the job's artifact paths already stored: a new path that clashes with one of them (file against
   * directory) is refused with FAILED_PRECONDITION before anything is copied. `record` stores the
   * records (the database write); when it fails, the files placed are taken out again and the
   * versions they replaced put back, so the store holds what the database says it holds.
   */
  copyIn(
    jobId: string,
    source: string,
    artifactDir: string,
    stored: Iterable<string>,
    record: (records: ArtifactRecord[]) => Promise<void>,
  ): Promise<ArtifactRecord[]>;
  /** Writes an uploaded stream into the store, checking size, checksum and clashes (as `copyIn`). */
  receive(
    jobId: string,
    artifactPath: string,
    expected: { sizeBytes: bigint; sha256: string },
    chunks: AsyncIterable<Uint8Array>,
    stored: Iterable<string>,
    record: (records: ArtifactRecord[]) => Promise<void>,
  ): Promise<ArtifactRecord>;
}

function refuseClash(stored: Iterable<string>, wanted: readonly string[]): void {
  const clash = artifactClash(stored, wanted);
  if (!clash) return;
  const { wanted: w, stored: s } = clash;
  throw new RpcError(
    Status.FAILED_PRECONDITION,
    s.startsWith(`${w}/`)
      ? `artifact ${quote(w)} would be a file, but the job already stores ${quote(s)} inside it as a directory; choose another artifact_path`
      : `artifact ${quote(w)} needs ${quote(s)} to be a directory, but the job already stores ${quote(s)} as a file; choose another artifact_path`,
  );
}

/**
 * File-system errors that a caller can fix (a leftover file where a directory is needed, a name the
 * file system refuses) as statuses naming the artifact; anything else passes through.
 */
function fileSystemRefusal(error: unknown, artifactPath: string): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'ENOTEMPTY') {
    return new RpcError(
      Status.FAILED_PRECONDITION,
      `artifact ${quote(artifactPath)} clashes with a file or directory already in the sidecar's artifact store (${code}); choose another artifact_path`,
      { cause: error },
    );
  }
  if (code === 'ENAMETOOLONG') {
    return new RpcError(
      Status.INVALID_ARGUMENT,
      `artifact ${quote(artifactPath)} makes a path longer than the file system allows; shorten it`,
      { cause: error },
    );
  }
  return error;
}

/** `child` is `parent` or lies below it. */
function inside(child: string, parent: string): boolean {
  return child === parent || child.startsWith(parent + path.sep);
}

const realOrResolved = (p: string) => realpath(p).catch(() => path.resolve(p));

export function createArtifactFiles(options: {
  store: string;
  roots: readonly string[];
  /** The sidecar's SQLite file: LogArtifact never reads it (nor the files SQLite and the sidecar's lock keep beside it). */
  database?: string;
}): ArtifactFiles {
  const store = path.resolve(options.store);
  const incoming = path.join(store, INCOMING_DIR);
  let realRoots: Promise<string[]> | undefined;
  const roots = () => (realRoots ??= Promise.all(options.roots.map(realOrResolved)));
  // Real paths of the sidecar's own files, as the trainer's real paths are compared with them. The
  // store is created first and the database's files are named in their directory's real path, so a
  // -wal that appears later, or a symlinked ancestor, still compares equal.
  let realOwn: Promise<{ store: string; database: string[] }> | undefined;
  const own = () =>
    (realOwn ??= (async () => {
      await mkdir(store, { recursive: true });
      const database = options.database && path.resolve(options.database);
      const databaseDir = database && (await realOrResolved(path.dirname(database)));
      // -lock is the file whose SQLite lock keeps a second sidecar off the database (lockDatabase):
      // reading it would also close a descriptor of it, and closing any descriptor of a file drops the
      // process's POSIX locks on it — that lock, or SQLite's on -shm, with it.
      return {
        store: await realOrResolved(store),
        database: database
          ? ['', ...DATABASE_FILE_SUFFIXES].map((s) => path.join(databaseDir!, path.basename(database) + s))
          : [],
      };
    })());

  /**
   * Refuses a trainer path that is, or holds, the sidecar's own files: an artifact root that is a
   * shared volume may also hold the database or the store, and logging them would copy other jobs'
   * data into this job's artifacts (and into MLflow).
   */
  async function refuseOwnFiles(requested: string, real: string): Promise<void> {
    const mine = await own();
    const problem = inside(real, mine.store)
      ? "lies inside the sidecar's own artifact store"
      : mine.database.includes(real)
        ? "is the sidecar's database"
        : inside(mine.store, real)
          ? "holds the sidecar's own artifact store"
          : mine.database.some((file) => inside(file, real))
            ? "holds the sidecar's database"
            : undefined;
    if (problem) {
      throw new RpcError(
        Status.PERMISSION_DENIED,
        `path ${quote(requested)} ${problem}; log the trainer's own files (a narrower directory)`,
      );
    }
  }

  /**
   * Streams `source` into a fresh staging file, then renames it onto the artifact's stored path: a
   * reader never sees half a file, and two calls for one path never write the same staging file.
   */
  async function storeStream(
    jobId: string,
    artifactPath: string,
    source: AsyncIterable<Uint8Array>,
    check: (chunk: Uint8Array) => void,
  ): Promise<string> {
    storedPathOf(store, jobId, artifactPath); // before a byte is written: throws if it left the store
    await mkdir(incoming, { recursive: true });
    const partial = path.join(incoming, randomUUID());
    const sink = createWriteStream(partial);
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Uint8Array>) {
          for await (const chunk of chunks) {
            check(chunk);
            yield chunk;
          }
        },
        sink,
      );
      return partial;
    } catch (error) {
      // A refusal can come while the file is still being opened: wait until the stream has closed its
      // file, or the removal would run first and the file would appear after it.
      if (!sink.closed) await new Promise<void>((resolve) => sink.once('close', () => resolve()));
      await rm(partial, { force: true });
      throw error;
    }
  }

  /** A staging file moved into place, until the database has recorded it. */
  interface Placed {
    readonly target: string;
    /** Takes the file out again and puts back the version it replaced (the record was not stored). */
    undo(): Promise<void>;
    /** Drops the replaced version (the record was stored). */
    keep(): Promise<void>;
  }

  /**
   * Moves a checked staging file into place. A version already stored at the target (the same
   * artifact path logged again) stays reachable as a hard link in the staging directory until the
   * database has the new record: without it, a failed database write would leave the old record
   * pointing at the new bytes.
   */
  async function place(partial: string, jobId: string, artifactPath: string): Promise<Placed> {
    let previous: string | undefined;
    try {
      // Inside the try: a refused target must not leave the staging file behind.
      const target = storedPathOf(store, jobId, artifactPath);
      await mkdir(path.dirname(target), { recursive: true });
      const backup = path.join(incoming, randomUUID());
      previous = await link(target, backup).then(
        () => backup,
        () => undefined, // nothing stored there yet (or not a file: the rename below says what)
      );
      await rename(partial, target);
      const kept = previous;
      return {
        target,
        undo: () => (kept ? rename(kept, target) : rm(target, { force: true })),
        keep: () => (kept ? rm(kept, { force: true }) : Promise.resolve()),
      };
    } catch (error) {
      await rm(partial, { force: true });
      if (previous) await rm(previous, { force: true });
      throw fileSystemRefusal(error, artifactPath);
    }
  }

  /**
   * Stores the records of placed files; when that fails, undoes the placements (latest first, so
   * a path placed twice ends as it was) before the failure travels on.
   */
  async function recordPlaced(
    placed: readonly Placed[],
    records: ArtifactRecord[],
    record: (records: ArtifactRecord[]) => Promise<void>,
  ): Promise<void> {
    try {
      await record(records);
    } catch (error) {
      for (const p of [...placed].reverse()) await p.undo().catch(() => {});
      throw error;
    }
    for (const p of placed) await p.keep().catch(() => {});
  }

  async function copyFile(
    jobId: string,
    source: string,
    artifactPath: string,
  ): Promise<{ record: ArtifactRecord; placed: Placed }> {
    const hash = createHash('sha256');
    let size = 0;
    const partial = await storeStream(jobId, artifactPath, createReadStream(source), (chunk) => {
      hash.update(chunk);
      size += chunk.byteLength;
    });
    const placed = await place(partial, jobId, artifactPath);
    const record = {
      artifactPath,
      sizeBytes: size,
      sha256: hash.digest('hex'),
      sourcePath: source,
      storedPath: placed.target,
      loggedAt: new Date(),
    };
    return { record, placed };
  }

  /** Copies files one by one, then records them; a failure part-way takes the copied ones out again. */
  async function copyFiles(
    jobId: string,
    files: readonly { full: string; artifactPath: string }[],
    record: (records: ArtifactRecord[]) => Promise<void>,
  ): Promise<ArtifactRecord[]> {
    const placed: Placed[] = [];
    const records: ArtifactRecord[] = [];
    try {
      for (const file of files) {
        const copied = await copyFile(jobId, file.full, file.artifactPath);
        placed.push(copied.placed);
        records.push(copied.record);
      }
    } catch (error) {
      for (const p of placed.reverse()) await p.undo().catch(() => {});
      throw error;
    }
    await recordPlaced(placed, records, record);
    return records;
  }

  /** The artifact path a trainer's file gets; refused (naming the file) when it breaks the rules. */
  function derivedPath(prefix: string, relative: string, file: string): string {
    const artifactPath = prefix + relative;
    const problem = artifactPathProblem(artifactPath);
    if (problem) {
      throw new RpcError(
        Status.INVALID_ARGUMENT,
        `file ${quote(file)} would be stored as artifact ${quote(artifactPath)}, which ${problem}; rename the file or log it with UploadArtifact under another artifact_path`,
      );
    }
    return artifactPath;
  }

  return {
    async confine(requested) {
      if (options.roots.length === 0) {
        throw new RpcError(
          Status.FAILED_PRECONDITION,
          'this sidecar has no artifact roots, so it cannot read trainer paths; start it with --artifact-root ' +
            '<shared volume> or send the file with UploadArtifact',
        );
      }
      if (!path.isAbsolute(requested)) {
        throw new RpcError(Status.INVALID_ARGUMENT, `path ${quote(requested)} must be absolute`);
      }
      let real: string;
      try {
        real = await realpath(requested);
      } catch {
        // FAILED_PRECONDITION, not NOT_FOUND: the file usually exists for the trainer and the volume is
        // simply not shared, so clients fall back to UploadArtifact on this code.
        throw new RpcError(
          Status.FAILED_PRECONDITION,
          `path ${quote(requested)} does not exist on the sidecar's side; if the trainer has it, the volume is not shared — send it with UploadArtifact`,
        );
      }
      const allowed = await roots();
      if (!allowed.some((root) => real === root || real.startsWith(root + path.sep))) {
        throw new RpcError(
          Status.PERMISSION_DENIED,
          `path ${quote(requested)} is outside the sidecar's artifact roots (${allowed.join(', ')}); ` +
            'write it under one of them or send it with UploadArtifact',
        );
      }
      await refuseOwnFiles(requested, real);
      return real;
    },

    async copyIn(jobId, source, artifactDir, stored, record) {
      const info = await stat(source);
      const prefix = artifactDir ? `${artifactDir}/` : '';
      if (info.isFile()) {
        const artifactPath = derivedPath(prefix, path.basename(source), source);
        refuseClash(stored, [artifactPath]);
        return copyFiles(jobId, [{ full: source, artifactPath }], record);
      }
      if (!info.isDirectory()) {
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          `path ${quote(source)} is neither a file nor a directory`,
        );
      }
      const files: { full: string; artifactPath: string }[] = [];
      const walk = async (dir: string, relative: string) => {
        // Names as bytes: a name that is not UTF-8 could not be opened again from its decoded form.
        for (const entry of await readdir(dir, { withFileTypes: true, encoding: 'buffer' })) {
          const name = entry.name.toString('utf8');
          const full = path.join(dir, name);
          if (!Buffer.from(name, 'utf8').equals(entry.name)) {
            throw new RpcError(
              Status.INVALID_ARGUMENT,
              `file ${quote(full)} has a name that is not valid UTF-8; rename it`,
            );
          }
          // Symlinks are skipped (Dirent does not follow them): following one could leave the root.
          if (entry.isDirectory()) await walk(full, `${relative}${name}/`);
          else if (entry.isFile())
            files.push({ full, artifactPath: derivedPath(prefix, relative + name, full) });
          if (files.length > MAX_FILES_PER_DIRECTORY) {
            throw new RpcError(
              Status.INVALID_ARGUMENT,
              `directory ${quote(source)} holds more than ${MAX_FILES_PER_DIRECTORY} files; log a narrower directory`,
            );
          }
        }
      };
      await walk(source, '');
      files.sort((a, b) => (a.artifactPath < b.artifactPath ? -1 : a.artifactPath > b.artifactPath ? 1 : 0));
      refuseClash(
        stored,
        files.map((f) => f.artifactPath),
      );
      return copyFiles(jobId, files, record);
    },

    async receive(jobId, artifactPath, expected, chunks, stored, record) {
      refuseClash(stored, [artifactPath]);
      const hash = createHash('sha256');
      let size = 0n;
      const partial = await storeStream(jobId, artifactPath, chunks, (chunk) => {
        size += BigInt(chunk.byteLength);
        if (size > expected.sizeBytes) {
          throw new RpcError(
            Status.INVALID_ARGUMENT,
            `upload of ${quote(artifactPath)} sent more than the ${expected.sizeBytes} bytes its header announced`,
          );
        }
        hash.update(chunk);
      });
      const digest = hash.digest('hex');
      const problem =
        size !== expected.sizeBytes
          ? `ended after ${size} of the ${expected.sizeBytes} bytes its header announced`
          : digest !== expected.sha256.toLowerCase()
            ? `has sha256 ${digest} but its header announced ${expected.sha256}; resend it`
            : undefined;
      if (problem) {
        await rm(partial, { force: true });
        throw new RpcError(Status.INVALID_ARGUMENT, `upload of ${quote(artifactPath)} ${problem}`);
      }
      const placed = await place(partial, jobId, artifactPath);
      const received = {
        artifactPath,
        sizeBytes: Number(size),
        sha256: digest,
        sourcePath: '',
        storedPath: placed.target,
        loggedAt: new Date(),
      };
      await recordPlaced([placed], [received], record);
      return received;
    },
  };
}
