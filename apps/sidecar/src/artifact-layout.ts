// Where an artifact lives inside the sidecar's artifact store. Pure functions, so the confinement can
// be reasoned about (and tested) without a file system:
//
//   <store>/<job directory>/<artifact path, segment by segment>   a stored file
//   <store>/.incoming/<random>                                     a file being received
//
// - The job directory is the job id escaped: letters, digits, "_", "-" and a "." that is not the first
//   character stay, every other character becomes %XX per UTF-8 byte. So it is never "", "." or "..",
//   never starts with "." (cannot meet ".incoming"), and different ids give different names. An
//   escaped name longer than JOB_DIR_MAX_LENGTH is cut and ends with "~" and 32 hex digits of the id's
//   SHA-256 ("~" is never part of an escaped name, so a cut name never equals an uncut one).
// - An artifact path has already passed `artifactPathProblem` (validation.ts): relative, "/"
//   separators, no "", "." or ".." segment, no control characters, no backslash, each segment at most
//   ARTIFACT_SEGMENT_MAX_BYTES. Joined under the job directory it cannot leave it; `storedPathOf`
//   checks that once more on the resolved path before anything is written.
import { createHash } from 'node:crypto';
import path from 'node:path';

/** Longest job directory name (bytes = characters: the name is ASCII). */
export const JOB_DIR_MAX_LENGTH = 120;
/** Staging directory for files being received; no job directory starts with ".". */
export const INCOMING_DIR = '.incoming';

const KEPT = /[A-Za-z0-9_.-]/;

/** The job id escaped into one ASCII directory name (see the header). */
export function jobDirName(jobId: string): string {
  let escaped = '';
  for (const char of jobId) {
    if (KEPT.test(char) && !(char === '.' && escaped === '')) escaped += char;
    else
      for (const byte of Buffer.from(char, 'utf8'))
        escaped += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (escaped.length <= JOB_DIR_MAX_LENGTH) return escaped;
  const digest = createHash('sha256').update(jobId, 'utf8').digest('hex').slice(0, 32);
  return `${escaped.slice(0, JOB_DIR_MAX_LENGTH - 33)}~${digest}`;
}

/**
 * The stored file of `artifactPath` for `jobId` in `store` (an absolute directory). Throws when the
 * result is not strictly inside the job's directory — impossible for a checked artifact path, so a
 * throw here is a bug, never a user's mistake.
 */
export function storedPathOf(store: string, jobId: string, artifactPath: string): string {
  const jobDir = path.join(store, jobDirName(jobId));
  const target = path.resolve(jobDir, ...artifactPath.split('/'));
  if (!target.startsWith(jobDir + path.sep) || target.length === jobDir.length + 1) {
    throw new Error(`artifact path ${JSON.stringify(artifactPath)} resolved outside ${jobDir}`);
  }
  return target;
}

/**
 * The first stored artifact that `wanted` cannot live next to: a stored file where `wanted` needs a
 * directory ("a" stored, "a/b" wanted) or a stored directory where `wanted` would be a file ("a/b"
 * stored, "a" wanted). The same path again is no clash: it replaces the stored artifact.
 */
export function artifactClash(
  stored: Iterable<string>,
  wanted: readonly string[],
): { wanted: string; stored: string } | undefined {
  const files = new Set<string>();
  const directories = new Map<string, string>();
  for (const artifactPath of stored) {
    files.add(artifactPath);
    for (let i = artifactPath.indexOf('/'); i !== -1; i = artifactPath.indexOf('/', i + 1)) {
      const directory = artifactPath.slice(0, i);
      if (!directories.has(directory)) directories.set(directory, artifactPath);
    }
  }
  for (const artifactPath of wanted) {
    const below = directories.get(artifactPath);
    if (below !== undefined) return { wanted: artifactPath, stored: below };
    for (let i = artifactPath.indexOf('/'); i !== -1; i = artifactPath.indexOf('/', i + 1)) {
      const directory = artifactPath.slice(0, i);
      if (files.has(directory)) return { wanted: artifactPath, stored: directory };
    }
  }
  return undefined;
}
