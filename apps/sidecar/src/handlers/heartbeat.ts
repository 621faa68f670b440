// Heartbeat: the trainer's client says, from its background thread, that the trainer is alive.
import { jobStatuses } from '../convert.ts';
import { checkJobId, checkSessionId } from '../validation.ts';
import type { HandlerContext, HandlerGroup } from './context.ts';

export function heartbeatHandlers(ctx: HandlerContext): HandlerGroup<'heartbeat'> {
  return {
    async heartbeat(request) {
      checkJobId(request.jobId);
      checkSessionId(request.sessionId);
      const { job } = await ctx.jobs.existing(request.jobId);
      return { status: jobStatuses.number(job.status) };
    },
  };
}
