// EndTraining: the job's outcome, final metrics and error; idempotent for the same outcome.
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { formatMetricValue } from '@training-callbacks/metric-catalog';
import { TrainingOutcome } from '@training-callbacks/proto';
import type { JobStatus } from '@training-callbacks/store';
import { addLosses, describeLosses, lossesFromRequest } from '../client-losses.ts';
import { verdictToProto } from '../convert.ts';
import { endItems } from '../mlflow-items.ts';
import {
  checkJobId,
  checkMetricNames,
  checkSessionId,
  codePointLength,
  ERROR_MESSAGE_MAX_LENGTH,
  quote,
  truncateCodePoints,
} from '../validation.ts';
import { acceptedMetrics } from './best-epoch.ts';
import type { HandlerContext, HandlerGroup } from './context.ts';
import { isLost, lostRefusal } from './verdicts.ts';

const OUTCOME_STATUS: Record<number, Exclude<JobStatus, 'running'>> = {
  [TrainingOutcome.COMPLETED]: 'completed',
  [TrainingOutcome.FAILED]: 'failed',
  [TrainingOutcome.CANCELLED]: 'cancelled',
};

export function endTrainingHandlers(ctx: HandlerContext): HandlerGroup<'endTraining'> {
  const { store, lock, log, notice, notify, mirrored, mirror, jobsToProto } = ctx;
  const { existing, remember, storedEpochs } = ctx.jobs;
  return {
    async endTraining(request) {
      checkJobId(request.jobId);
      const status = OUTCOME_STATUS[request.outcome];
      if (!status) {
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          `${request.outcome === TrainingOutcome.UNSPECIFIED ? 'outcome must be set' : `outcome ${request.outcome} is not a TrainingOutcome`}; ` +
            'send TRAINING_OUTCOME_COMPLETED, TRAINING_OUTCOME_FAILED or TRAINING_OUTCOME_CANCELLED',
        );
      }
      checkMetricNames(request.finalMetrics, 'final_metrics');
      checkSessionId(request.sessionId);
      return lock(request.jobId, async () => {
        // The trainer's own session ends a job declared lost: revived first, then ended as reported.
        const state = await ctx.verdicts.reviveIfOwn(await existing(request.jobId), request.sessionId);
        const verdicts = state.classifier.classify(request.finalMetrics);
        // A verdict is no report: an EndTraining from another session does not pass for its repeat.
        if (isLost(state.job)) throw lostRefusal(state.job);
        if (state.job.status !== 'running') {
          if (state.job.status === status)
            return { job: (await jobsToProto([state.job]))[0]!, verdicts: verdicts.map(verdictToProto) };
          throw new RpcError(
            Status.FAILED_PRECONDITION,
            `job ${quote(request.jobId)} already ended as ${state.job.status}; it cannot end again as ${status}`,
          );
        }
        const finalMetrics = acceptedMetrics(verdicts);
        const primaryName = state.classifier.catalog.primaryMetric;
        const reportedPrimary = finalMetrics[primaryName];
        const finalPrimaryValue =
          reportedPrimary !== undefined && Number.isFinite(reportedPrimary)
            ? reportedPrimary
            : state.job.bestValue;
        const finalAccuracy =
          finalMetrics.accuracy ?? (primaryName === 'accuracy' ? state.job.bestValue : undefined);
        // Stored as sent — NUL and control characters included (a traceback keeps its newlines and
        // whatever bytes the exception carried), bound as a parameter; only its length is bounded.
        let errorMessage = request.errorMessage;
        const length = errorMessage.length > ERROR_MESSAGE_MAX_LENGTH ? codePointLength(errorMessage) : 0;
        if (length > ERROR_MESSAGE_MAX_LENGTH) {
          errorMessage = `${truncateCodePoints(errorMessage, ERROR_MESSAGE_MAX_LENGTH)}… (truncated from ${length} characters)`;
        }
        const reported = lossesFromRequest(request.losses);
        const clientLosses = addLosses(state.job.clientLosses, reported);
        const endedAt = new Date();
        let finalStep = state.job.startEpoch;
        if (mirror) for (const e of (await storedEpochs(state)).seen) finalStep = Math.max(finalStep, e);
        const job = await store.endJob({
          jobId: request.jobId,
          status,
          finalMetrics,
          ...(finalPrimaryValue !== undefined && { finalPrimaryValue }),
          ...(finalAccuracy !== undefined && { finalAccuracy }),
          errorMessage,
          ...(clientLosses && { clientLosses }),
          endedAt,
          ...mirrored(() => endItems(status, finalMetrics, finalStep, endedAt.getTime(), errorMessage)),
        });
        notify();
        if (reported) ctx.metrics.clientLosses(reported);
        remember(job, state.classifier);
        ctx.verdicts.ended(job.jobId);
        const primaryDefinition = state.classifier.definitionOf(primaryName);
        const bestText =
          job.bestEpoch !== undefined && job.bestValue !== undefined
            ? ` │ best epoch ${job.bestEpoch} (${primaryDefinition?.label ?? primaryName} ${formatMetricValue(primaryDefinition, job.bestValue)})`
            : '';
        const lossText = job.clientLosses ? ` │ ${describeLosses(job.clientLosses)}` : '';
        // A job with losses is worth a line even with --quiet: it must not pass for a clean run.
        (job.clientLosses ? notice : log)(
          `[${job.jobId}] training ${status}${bestText}${lossText}${errorMessage ? ` │ ${errorMessage.split('\n')[0]}` : ''}`,
          {
            event: 'job_ended',
            jobId: job.jobId,
            status,
            ...(job.bestEpoch !== undefined && { bestEpoch: job.bestEpoch, bestValue: job.bestValue }),
            ...(job.clientLosses && { clientLosses: job.clientLosses }),
            ...(errorMessage && { error: errorMessage }),
          },
        );
        return { job: (await jobsToProto([job]))[0]!, verdicts: verdicts.map(verdictToProto) };
      });
    },
  };
}
