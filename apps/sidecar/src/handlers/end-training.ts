// EndTraining: the job's outcome, final metrics and error; idempotent for the same outcome.
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { formatMetricValue, type MetricVerdict } from '@training-callbacks/metric-catalog';
import { endItems } from '@training-callbacks/mlflow-bridge/core';
import { type EndTrainingRequest, TrainingOutcome } from '@training-callbacks/proto';
import {
  type ClientLossesRecord,
  type EndingJob,
  type JobStatus,
  StoreError,
} from '@training-callbacks/store';
import { addLosses, describeLosses, lossesFromRequest } from '../client-losses.ts';
import { verdictToProto } from '../convert.ts';
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
import type { JobState } from './job-states.ts';
import { isLost, lostRefusal } from './verdicts.ts';

const OUTCOME_STATUS: Record<number, Exclude<JobStatus, 'running'>> = {
  [TrainingOutcome.COMPLETED]: 'completed',
  [TrainingOutcome.FAILED]: 'failed',
  [TrainingOutcome.CANCELLED]: 'cancelled',
};

export function endTrainingHandlers(ctx: HandlerContext): HandlerGroup<'endTraining'> {
  const { store, log, notice, notify, mirror, jobsToProto } = ctx;
  const { existing, refresh, remember } = ctx.jobs;
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
      // No lock: the store's endJob is conditional on the job running (under its row's lock), so of
      // two EndTraining racing on two sidecars one ends the job and the other, told `ended`, reads the
      // job again and answers as a repeat would (the same outcome: OK; another: FAILED_PRECONDITION).
      for (let attempt = 1; ; attempt++) {
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
        try {
          return await end(request, status, state, verdicts);
        } catch (error) {
          // Ended meanwhile (elsewhere): decide again on the job as it is now.
          if (!(error instanceof StoreError && error.kind === 'ended') || attempt >= 3) throw error;
          await refresh(request.jobId);
        }
      }
    },
  };

  async function end(
    request: EndTrainingRequest,
    status: Exclude<JobStatus, 'running'>,
    state: JobState,
    verdicts: MetricVerdict[],
  ) {
    const finalMetrics = acceptedMetrics(verdicts);
    const primaryName = state.classifier.catalog.primaryMetric;
    const reportedPrimary = finalMetrics[primaryName];
    // Absent, the store takes the best value as it stands in the end's transaction.
    const finalPrimaryValue =
      reportedPrimary !== undefined && Number.isFinite(reportedPrimary) ? reportedPrimary : undefined;
    const finalAccuracy = finalMetrics.accuracy;
    // Stored as sent — NUL and control characters included (a traceback keeps its newlines and
    // whatever bytes the exception carried), bound as a parameter; only its length is bounded.
    let errorMessage = request.errorMessage;
    const length = errorMessage.length > ERROR_MESSAGE_MAX_LENGTH ? codePointLength(errorMessage) : 0;
    if (length > ERROR_MESSAGE_MAX_LENGTH) {
      errorMessage = `${truncateCodePoints(errorMessage, ERROR_MESSAGE_MAX_LENGTH)}… (truncated from ${length} characters)`;
    }
    const reported = lossesFromRequest(request.losses);
    const endedAt = new Date();
    const job = await store.endJob({
      jobId: request.jobId,
      status,
      finalMetrics,
      ...(finalPrimaryValue !== undefined && { finalPrimaryValue }),
      ...(finalAccuracy !== undefined && { finalAccuracy }),
      errorMessage,
      // Added to the earlier runs' losses as the database holds them (a resumed job keeps them).
      clientLosses: (stored: ClientLossesRecord | undefined) => addLosses(stored, reported),
      endedAt,
      // The final step: the highest epoch stored by any sidecar, read in the end's transaction.
      ...(mirror && {
        outbox: ({ startEpoch, lastEpoch }: EndingJob) =>
          endItems(
            status,
            finalMetrics,
            Math.max(startEpoch, lastEpoch ?? startEpoch),
            endedAt.getTime(),
            errorMessage,
          ),
      }),
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
  }
}
