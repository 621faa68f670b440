// BeginEpoch and EndEpoch: an epoch's start, then its metrics, normalised by the catalog, with the
// job's best epoch moved in the same commit.
import {
  columnValues,
  formatEpochLine,
  type MetricVerdict,
  type TaskType,
} from '@training-callbacks/metric-catalog';
import { epochItem, metricSourcesItem, mlflowMetricName } from '@training-callbacks/mlflow-bridge/core';
import type { EndEpochRequest } from '@training-callbacks/proto';
import { verdictToProto } from '../convert.ts';
import { checkEpoch, checkJobId, checkMetricNames, checkSessionId, timestampOf } from '../validation.ts';
import { acceptedMetrics, bestEpochRule } from './best-epoch.ts';
import type { HandlerContext, HandlerGroup } from './context.ts';
import type { JobState } from './job-states.ts';

export function epochHandlers(ctx: HandlerContext): HandlerGroup<'beginEpoch' | 'endEpoch'> {
  const { store, log, notify, mirrored } = ctx;
  /** A rejected metric either lost to another name meaning the same metric, or was out of its range. */
  const countRejections = (verdicts: readonly MetricVerdict[], canonical: (reported: string) => string) => {
    if (!verdicts.some((v) => v.tier === 'rejected')) return; // the common report: nothing to count
    let duplicates = 0;
    let outOfRange = 0;
    const kept = new Set(verdicts.filter((v) => v.tier !== 'rejected').map((v) => v.name));
    for (const v of verdicts) {
      if (v.tier !== 'rejected') continue;
      if (kept.has(canonical(v.reportedName))) duplicates++;
      else outOfRange++;
    }
    if (duplicates > 0) ctx.metrics.metricsRejected('epoch', 'duplicate_name', duplicates);
    if (outOfRange > 0) ctx.metrics.metricsRejected('epoch', 'out_of_range', outOfRange);
  };
  return {
    async beginEpoch(request) {
      checkJobId(request.jobId);
      checkEpoch(request.epoch);
      checkSessionId(request.sessionId);
      const at = timestampOf(request.timestamp) ?? new Date();
      // The store refuses it in its transaction once the job has ended; `report` revives a job
      // another sidecar declared lost when its own session reports, and tries once more.
      await ctx.verdicts.report(request.jobId, request.sessionId, () =>
        store.beginEpoch(request.jobId, request.epoch, at),
      );
      await ctx.verdicts.alive(request.jobId);
      return {};
    },

    async endEpoch(request) {
      checkJobId(request.jobId);
      checkEpoch(request.epoch);
      checkMetricNames(request.metrics, 'metrics');
      checkSessionId(request.sessionId);
      const timestamp = timestampOf(request.timestamp) ?? new Date();
      // No lock here: the store decides the job's status and best epoch inside the epoch's
      // transaction, so reports of one job racing on this sidecar or on another stay consistent.
      return ctx.verdicts.report(request.jobId, request.sessionId, (state) =>
        reportEpoch(request, timestamp, state),
      );
    },
  };

  async function reportEpoch(request: EndEpochRequest, timestamp: Date, state: JobState) {
    const verdicts = state.classifier.classify(request.metrics);
    const metrics = acceptedMetrics(verdicts);
    const primaryName = state.classifier.catalog.primaryMetric;
    const primary = metrics[primaryName];

    const finite = primary !== undefined && Number.isFinite(primary);
    const rule = bestEpochRule(
      state.job.task as TaskType,
      primaryName,
      request.epoch,
      finite ? primary : undefined,
    );
    const sources = ctx.mirror
      ? ctx.metricSources.unrecorded(
          request.jobId,
          verdicts
            .filter((v) => v.tier !== 'rejected')
            .map((v) => {
              const plain = state.classifier.normaliseName(v.reportedName);
              const scale = plain.name === v.name ? plain.scale : 1;
              return { name: mlflowMetricName(v.name), reported: v.reportedName, scale };
            }),
        )
      : [];

    // Renames and unit changes are recorded once per job by the store, in the epoch's transaction;
    // what this sidecar knows recorded already is not even sent.
    const { best, epochsReported } = await store.saveEpoch({
      jobId: request.jobId,
      epoch: request.epoch,
      metrics,
      columns: columnValues(metrics),
      timestamp,
      best: rule,
      ...mirrored(() => [epochItem(request.epoch, metrics, timestamp.getTime())]),
      ...(sources.length && { metricSources: { sources, item: metricSourcesItem } }),
    });
    ctx.metricSources.recorded(request.jobId, sources);
    notify();
    const renewing = ctx.verdicts.alive(request.jobId);
    if (renewing) await renewing; // most reports renew nothing: no microtask hop for them
    ctx.metrics.epochIngested();
    countRejections(verdicts, (reported) => state.classifier.normaliseName(reported).name);

    // Committed: the cached record follows what the store decided (a cache, not the truth).
    state.job = {
      ...state.job,
      ...(best ? { bestEpoch: best.epoch, bestValue: best.value } : {}),
      epochsReported,
      updatedAt: new Date(),
    };
    if (!best) {
      delete state.job.bestEpoch;
      delete state.job.bestValue;
    }
    const summary = `[${request.jobId}] ${formatEpochLine(state.classifier, request.epoch, verdicts)}`;
    log(summary, {
      event: 'epoch',
      jobId: request.jobId,
      epoch: request.epoch,
      metrics,
      isBest: best?.epoch === request.epoch,
    });
    return {
      verdicts: verdicts.map(verdictToProto),
      isBest: best?.epoch === request.epoch,
      ...(best && { best }),
      summary,
    };
  }
}
