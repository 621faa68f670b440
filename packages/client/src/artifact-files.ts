import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { UploadArtifactRequestSchema } from '@training-callbacks/proto';

/** Largest chunk of an UploadArtifact stream (the contract's limit): 1 MiB. */
export const UPLOAD_CHUNK_BYTES = 1024 * 1024;

/** A local file to upload and where it goes inside the run's artifacts. */
export interface UploadItem {
  /** Absolute path on the trainer's disk. */
  readonly sourcePath: string;
  /** Destination inside the run's artifacts, e.g. "checkpoints/best.pt". */
  readonly artifactPath: string;
}

/** Joins artifact path segments with "/", skipping empty ones. */
export function joinArtifactPath(...segments: string[]): string {
  return segments.filter((s) => s !== '').join('/');
}

/**
 * The files to upload for `path` placed under `artifactPath`, with MLflow's semantics: a file goes to
 * `artifactPath/<file name>`, a directory's files to `artifactPath/<path relative to the directory>`.
 * Sorted by destination, regular files only.
 */
export async function listUploadItems(path: string, artifactPath: string): Promise<UploadItem[]> {
  const info = await stat(path);
  if (!info.isDirectory())
    return [{ sourcePath: path, artifactPath: joinArtifactPath(artifactPath, basename(path)) }];
  const entries = await readdir(path, { recursive: true, withFileTypes: true });
  const items: UploadItem[] = [];
  for (const entry of entries) {
    const full = join(entry.parentPath, entry.name);
    const isFile = entry.isFile() || (entry.isSymbolicLink() && (await stat(full)).isFile());
    if (!isFile) continue;
    const rel = relative(path, full).split(sep).join('/');
    items.push({ sourcePath: full, artifactPath: joinArtifactPath(artifactPath, rel) });
  }
  return items.sort((a, b) =>
    a.artifactPath < b.artifactPath ? -1 : a.artifactPath > b.artifactPath ? 1 : 0,
  );
}

/** Size and lower-case hex SHA-256 of a file, read as a stream. */
export async function hashFile(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: UPLOAD_CHUNK_BYTES })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}

type UploadRequestInit = MessageInitShape<typeof UploadArtifactRequestSchema>;

/**
 * The messages of one UploadArtifact stream: the header (job, destination, size, SHA-256), then the
 * content in chunks of at most {@link UPLOAD_CHUNK_BYTES}. Read lazily, so a retry re-reads the file.
 */
export async function* uploadRequests(
  { jobId, sessionId = '' }: { readonly jobId: string; readonly sessionId?: string },
  item: UploadItem,
  digest: { size: number; sha256: string },
  chunkBytes = UPLOAD_CHUNK_BYTES,
): AsyncGenerator<UploadRequestInit> {
  yield {
    part: {
      case: 'header',
      value: {
        jobId,
        sessionId,
        artifactPath: item.artifactPath,
        sizeBytes: BigInt(digest.size),
        sha256: digest.sha256,
      },
    },
  };
  const size = Math.min(chunkBytes, UPLOAD_CHUNK_BYTES);
  for await (const chunk of createReadStream(item.sourcePath, { highWaterMark: size })) {
    yield { part: { case: 'chunk', value: chunk as Buffer } };
  }
}
