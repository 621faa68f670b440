// LogArtifact (a file the sidecar can read) and UploadArtifact (bytes streamed by the client): copied
// into the sidecar's artifact store, then recorded.
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { artifactItem } from '@training-callbacks/mlflow-bridge/core';
import type { UploadArtifactRequest } from '@training-callbacks/proto';
import { artifactToProto } from '../convert.ts';
import { checkArtifactPath, checkJobId, checkSessionId } from '../validation.ts';
import type { HandlerContext, HandlerGroup } from './context.ts';

export function artifactHandlers(ctx: HandlerContext): HandlerGroup<'logArtifact' | 'uploadArtifact'> {
  const { store, artifacts, notify, mirrored } = ctx;
  const { running } = ctx.verdicts;
  /** The job's stored artifact paths, which a new artifact must not clash with (file vs directory). */
  const storedPaths = async (jobId: string) => (await store.listArtifacts(jobId)).map((a) => a.artifactPath);
  return {
    async logArtifact(request) {
      checkJobId(request.jobId);
      checkArtifactPath(request.artifactPath);
      checkSessionId(request.sessionId);
      if (request.path === '')
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          'path is empty; send the absolute path of a file or directory',
        );
      await running(request.jobId, request.sessionId);
      const real = await artifacts.confine(request.path);
      const records = await artifacts.copyIn(
        request.jobId,
        real,
        request.artifactPath,
        await storedPaths(request.jobId),
        (placed) =>
          ctx.verdicts.report(request.jobId, request.sessionId, () =>
            store.putArtifacts(
              request.jobId,
              placed,
              mirrored(() => placed.map(artifactItem)),
            ),
          ),
      );
      notify();
      await ctx.verdicts.alive(request.jobId);
      return { artifacts: records.map(artifactToProto) };
    },

    async uploadArtifact(requests) {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      const header = first.done ? undefined : (first.value as UploadArtifactRequest).part;
      if (header?.case !== 'header') {
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          'the first message of UploadArtifact must be the header (job_id, artifact_path, size_bytes, sha256)',
        );
      }
      const { jobId, artifactPath, sizeBytes, sha256, sessionId } = header.value;
      checkJobId(jobId);
      checkSessionId(sessionId, 'header.session_id');
      checkArtifactPath(artifactPath, 'header.artifact_path', false);
      if (!/^[0-9a-fA-F]{64}$/.test(sha256)) {
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          'header.sha256 must be the 64-character hex SHA-256 of the content',
        );
      }
      await running(jobId, sessionId);
      const chunks = (async function* () {
        for (;;) {
          const next = await iterator.next();
          if (next.done) return;
          const part = (next.value as UploadArtifactRequest).part;
          if (part.case !== 'chunk')
            throw new RpcError(
              Status.INVALID_ARGUMENT,
              'only the first message of UploadArtifact may be a header',
            );
          yield part.value;
        }
      })();
      const record = await artifacts.receive(
        jobId,
        artifactPath,
        { sizeBytes, sha256 },
        chunks,
        await storedPaths(jobId),
        (placed) =>
          ctx.verdicts.report(jobId, sessionId, () =>
            store.putArtifacts(
              jobId,
              placed,
              mirrored(() => placed.map(artifactItem)),
            ),
          ),
      );
      notify();
      await ctx.verdicts.alive(jobId);
      return { artifact: artifactToProto(record) };
    },
  };
}
