// Heartbeat: the trainer's client says, from its background thread, that the trainer is alive. It
// renews the job's lease, or revives a job the sidecar declared lost when it comes from the trainer's
// own client session (verdicts.ts).
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { endCauses, jobStatuses } from '../convert.ts';
import { checkJobId, checkSessionId } from '../validation.ts';
import type { HandlerContext, HandlerGroup } from './context.ts';

export function heartbeatHandlers(ctx: HandlerContext): HandlerGroup<'heartbeat'> {
  return {
    async heartbeat(request) {
      checkJobId(request.jobId);
      checkSessionId(request.sessionId);
      // Under the job's lock: a revival and an EndTraining of the same job do not interleave.
      const { job, revived } = await ctx.lock(request.jobId, () =>
        ctx.verdicts.heartbeat(request.jobId, request.sessionId),
      );
      return {
        status: jobStatuses.number(job.status),
        ...(job.endCause && { endCause: endCauses.number(job.endCause) }),
        revived,
        ...(job.status === 'running' &&
          job.leaseExpiresAt && { leaseExpiresAt: timestampFromDate(job.leaseExpiresAt) }),
      };
    },
  };
}
