// RetryMlflowSync: an operator's retry of a job's MLflow mirroring after its cause was fixed.
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { checkJobId } from '../validation.ts';
import type { HandlerContext, HandlerGroup } from './context.ts';

export function mlflowSyncHandlers(ctx: HandlerContext): HandlerGroup<'retryMlflowSync'> {
  const { store, mirror, notice, notify, jobsToProto } = ctx;
  const { existing } = ctx.jobs;
  return {
    async retryMlflowSync(request) {
      checkJobId(request.jobId);
      if (!mirror) {
        throw new RpcError(
          Status.FAILED_PRECONDITION,
          'MLflow is not configured on this sidecar: set MLFLOW_TRACKING_URI (and restart it) to mirror jobs',
        );
      }
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
  };
}
