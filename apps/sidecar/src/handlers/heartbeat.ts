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
      // No lock: the renewal and the revival are conditional UPDATEs (a running job's lease; a lost
      // job of this very session), so a heartbeat racing an EndTraining or a verdict on any sidecar
      // lands before it or changes nothing; the answer is the job as the database has it after.
      const { job, revived } = await ctx.verdicts.heartbeat(request.jobId, request.sessionId);
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
