// Artifact files: confined reads from the trainer's shared volume and streamed uploads, both copied
// into the sidecar's own artifact store before the call is acknowledged — a trainer that overwrites
// last.pt a second later cannot change what was logged, and the MLflow bridge uploads from here.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import type { ArtifactRecord } from '@training-callbacks/store';
import { quote } from './validation.ts';

/** A directory with more files than this is almost certainly the wrong directory. */
export const MAX_FILES_PER_DIRECTORY = 10000;

export interface ArtifactFiles {
  /** Resolves a trainer-side path and checks it lies under an artifact root; returns its real path. */
  confine(requested: string): Promise<string>;
  /** Copies a file or every file under a directory into the store; returns the records. */
  copyIn(jobId: string, source: string, artifactDir: string): Promise<ArtifactRecord[]>;
  /** Writes an uploaded stream into the store, checking size and checksum. */
  receive(
    jobId: string,
    artifactPath: string,
    expected: { sizeBytes: bigint; sha256: string },
    chunks: AsyncIterable<Uint8Array>,
  ): Promise<ArtifactRecord>;
}

function jobDir(store: string, jobId: string): string {
  // Job ids are free text; encode them so no id can name a path outside the store.
  return path.join(store, encodeURIComponent(jobId));
}

export function createArtifactFiles(options: { store: string; roots: readonly string[] }): ArtifactFiles {
  let realRoots: Promise<string[]> | undefined;
  const roots = () =>
    (realRoots ??= Promise.all(options.roots.map((r) => realpath(r).catch(() => path.resolve(r)))));

  async function copyFile(jobId: string, source: string, artifactPath: string): Promise<ArtifactRecord> {
    const target = path.join(jobDir(options.store, jobId), artifactPath);
    await mkdir(path.dirname(target), { recursive: true });
    const partial = `${target}.partial-${process.pid}`;
    const hash = createHash('sha256');
    let size = 0;
    await pipeline(
      createReadStream(source),
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          hash.update(chunk);
          size += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(partial),
    );
    await rename(partial, target);
    return {
      artifactPath,
      sizeBytes: size,
      sha256: hash.digest('hex'),
      sourcePath: source,
      storedPath: target,
      loggedAt: new Date(),
    };
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
      return real;
    },

    async copyIn(jobId, source, artifactDir) {
      const info = await stat(source);
      const prefix = artifactDir ? `${artifactDir}/` : '';
      if (info.isFile()) return [await copyFile(jobId, source, prefix + path.basename(source))];
      if (!info.isDirectory()) {
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          `path ${quote(source)} is neither a file nor a directory`,
        );
      }
      const files: string[] = [];
      const walk = async (dir: string) => {
        for (const entry of await readdir(dir, { withFileTypes: true })) {
          const full = path.join(dir, entry.name);
          // Symlinks are skipped: following them could leave the confined root.
          if (entry.isDirectory()) await walk(full);
          else if (entry.isFile() && !(await lstat(full)).isSymbolicLink()) files.push(full);
          if (files.length > MAX_FILES_PER_DIRECTORY) {
            throw new RpcError(
              Status.INVALID_ARGUMENT,
              `directory ${quote(source)} holds more than ${MAX_FILES_PER_DIRECTORY} files; log a narrower directory`,
            );
          }
        }
      };
      await walk(source);
      files.sort();
      const records: ArtifactRecord[] = [];
      for (const file of files) {
        const relative = path.relative(source, file).split(path.sep).join('/');
        records.push(await copyFile(jobId, file, prefix + relative));
      }
      return records;
    },

    async receive(jobId, artifactPath, expected, chunks) {
      const target = path.join(jobDir(options.store, jobId), artifactPath);
      await mkdir(path.dirname(target), { recursive: true });
      const partial = `${target}.upload-${process.pid}-${Date.now()}`;
      const hash = createHash('sha256');
      let size = 0n;
      try {
        await pipeline(
          chunks,
          async function* (source: AsyncIterable<Uint8Array>) {
            for await (const chunk of source) {
              size += BigInt(chunk.byteLength);
              if (size > expected.sizeBytes) {
                throw new RpcError(
                  Status.INVALID_ARGUMENT,
                  `upload of ${quote(artifactPath)} sent more than the ${expected.sizeBytes} bytes its header announced`,
                );
              }
              hash.update(chunk);
              yield chunk;
            }
          },
          createWriteStream(partial),
        );
        if (size !== expected.sizeBytes) {
          throw new RpcError(
            Status.INVALID_ARGUMENT,
            `upload of ${quote(artifactPath)} ended after ${size} of the ${expected.sizeBytes} bytes its header announced`,
          );
        }
        const digest = hash.digest('hex');
        if (digest !== expected.sha256.toLowerCase()) {
          throw new RpcError(
            Status.INVALID_ARGUMENT,
            `upload of ${quote(artifactPath)} has sha256 ${digest} but its header announced ${expected.sha256}; resend it`,
          );
        }
        await rename(partial, target);
        return {
          artifactPath,
          sizeBytes: Number(size),
          sha256: digest,
          sourcePath: '',
          storedPath: target,
          loggedAt: new Date(),
        };
      } catch (error) {
        await rm(partial, { force: true });
        throw error;
      }
    },
  };
}
