// The operator's MLflow RPCs: RetryMlflowSync (retry a job's mirroring after its cause was fixed) and
// RemirrorMlflowRun (copy a job whose run vanished into MLflow again, whole).
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { jobCopyItems } from '@training-callbacks/mlflow-bridge/core';
import { checkJobId } from '../validation.ts';
import type { HandlerContext, HandlerGroup } from './context.ts';

export function mlflowSyncHandlers(
  ctx: HandlerContext,
): HandlerGroup<'retryMlflowSync' | 'remirrorMlflowRun'> {
  const { store, mirror, notice, notify, jobsToProto } = ctx;
  const { existing, remember } = ctx.jobs;
  const requireMirror = () => {
    if (!mirror) {
      throw new RpcError(
        Status.FAILED_PRECONDITION,
        'MLflow is not configured on this sidecar: set MLFLOW_TRACKING_URI (and restart it) to mirror jobs',
      );
    }
  };
  return {
    async retryMlflowSync(request) {
      checkJobId(request.jobId);
      requireMirror();
      await existing(request.jobId);
      const retried = await store.retryOutboxNow(request.jobId, Date.now());
      if (retried > 0) {
        notice(`[${request.jobId}] MLflow: retrying ${retried} item(s) now (RetryMlflowSync)`, {
          event: 'mlflow_retry_requested',
          jobId: request.jobId,
          items: retried,
        });
        notify();
      }
      const job = (await store.getJob(request.jobId))!;
      return { retriedItems: BigInt(retried), job: (await jobsToProto([job]))[0]! };
    },

    async remirrorMlflowRun(request) {
      checkJobId(request.jobId);
      requireMirror();
      await existing(request.jobId);
      // No lock: replaceOutbox reads the job and copies it under the job row's lock, so no report or
      // end of the job, on any sidecar, commits between the copy and the drop of the items it replaces.
      const { dropped, queued, job } = await store.replaceOutbox(request.jobId, jobCopyItems, Date.now());
      notice(
        `[${request.jobId}] MLflow: re-mirroring the whole job (${queued} item(s) queued, ${dropped} pending item(s) replaced; RemirrorMlflowRun)`,
      );
      notify();
      remember(job);
      return {
        queuedItems: BigInt(queued),
        droppedItems: BigInt(dropped),
        job: (await jobsToProto([job]))[0]!,
      };
    },
  };
}
