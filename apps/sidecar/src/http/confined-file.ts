// The one confinement rule of the HTTP listener's file routes (the dashboard's static files, artifact
// downloads): a file is served only when its real path, symbolic links resolved, lies inside the
// directory it is served from, and only when it is a regular file.
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';

/** A regular file inside the served directory. */
export interface ConfinedFile {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

/** Errors that mean "no file there": missing, or a directory on the way replaced by a file. */
const NO_FILE = new Set(['ENOENT', 'ENOTDIR']);

/**
 * The regular file at `candidate` when its real path lies inside `base` (a real path itself);
 * 'outside' when it resolves elsewhere; undefined when there is no regular file there. Other failures
 * (EACCES, EIO) are thrown: the caller decides whether they are the client's business.
 */
export async function confinedFile(
  base: string,
  candidate: string,
): Promise<ConfinedFile | 'outside' | undefined> {
  try {
    const real = await realpath(candidate);
    if (!real.startsWith(base + path.sep)) return 'outside';
    const info = await stat(real);
    return info.isFile() ? { path: real, size: info.size, mtimeMs: info.mtimeMs } : undefined;
  } catch (error) {
    if (NO_FILE.has((error as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw error;
  }
}
