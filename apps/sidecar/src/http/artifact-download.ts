// Downloads of stored artifact files on the HTTP listener, for the dashboard:
//   GET /artifacts/<job id>/<artifact path>     (each segment percent-encoded)
// A read route (a read token suffices). Only a file the job has stored is served, looked up by its
// artifact path in the store, and only when its real path lies inside the artifact store: the URL
// never names a file on disk.
import { createReadStream } from 'node:fs';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import type { Store } from '@training-callbacks/store';
import { confinedFile } from './confined-file.ts';
import { type HttpHandler, plain } from './listener.ts';

/** The route prefix; the dashboard builds its links with {@link artifactDownloadPath}'s rule. */
export const ARTIFACT_DOWNLOAD_PREFIX = '/artifacts/';

/** The download path of `artifactPath` of `jobId`. */
export function artifactDownloadPath(jobId: string, artifactPath: string): string {
  return `${ARTIFACT_DOWNLOAD_PREFIX}${encodeURIComponent(jobId)}/${artifactPath.split('/').map(encodeURIComponent).join('/')}`;
}

function parse(urlPath: string): { jobId: string; artifactPath: string } | undefined {
  const rest = urlPath.slice(ARTIFACT_DOWNLOAD_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0 || slash === rest.length - 1) return undefined;
  try {
    return {
      jobId: decodeURIComponent(rest.slice(0, slash)),
      artifactPath: rest
        .slice(slash + 1)
        .split('/')
        .map((segment) => decodeURIComponent(segment))
        .join('/'),
    };
  } catch {
    return undefined;
  }
}

/** The download handler over `store`, serving files from inside `artifactStore` only. */
export function artifactDownloadHandler(store: Store, artifactStore: string): HttpHandler {
  return async (request, response) => {
    const urlPath = (request.url ?? '/').split('?', 1)[0] ?? '/';
    const wanted = parse(urlPath);
    if (!wanted) {
      return plain(
        response,
        400,
        `expected ${ARTIFACT_DOWNLOAD_PREFIX}<job id>/<artifact path>, each segment percent-encoded; got ${urlPath}\n`,
      );
    }
    const { jobId, artifactPath } = wanted;
    if (!(await store.getJob(jobId))) return plain(response, 404, `no job ${JSON.stringify(jobId)}\n`);
    const [artifact] = await store.listArtifacts(jobId, { artifactPath, limit: 1 });
    if (!artifact) {
      return plain(
        response,
        404,
        `job ${JSON.stringify(jobId)} has no artifact ${JSON.stringify(artifactPath)} (ListArtifacts lists its artifacts)\n`,
      );
    }
    // No artifact store (never written to, or removed): no stored file either.
    const base = await realpath(artifactStore).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    const file = base === undefined ? undefined : await confinedFile(base, artifact.storedPath);
    if (file === 'outside') {
      return plain(
        response,
        403,
        `artifact ${JSON.stringify(artifactPath)} is not inside the artifact store\n`,
      );
    }
    if (!file) {
      return plain(
        response,
        410,
        `artifact ${JSON.stringify(artifactPath)} of job ${JSON.stringify(jobId)} is recorded, but its file is gone from the artifact store\n`,
      );
    }
    const name = path.posix.basename(artifactPath);
    response.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': file.size,
      'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(name)}`,
      'cache-control': 'private, no-cache',
      etag: `"${artifact.sha256}"`,
      'x-content-type-options': 'nosniff',
    });
    if (request.method === 'HEAD') return void response.end();
    createReadStream(file.path)
      .on('error', () => response.destroy())
      .pipe(response);
  };
}
