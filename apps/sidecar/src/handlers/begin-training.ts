// BeginTraining: creates a job, or continues one (a retry of the same call, or a resume after a crash).
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { checkMetricName, getTaskCatalog } from '@training-callbacks/metric-catalog';
import { jobBegunItem, revivedItems } from '@training-callbacks/mlflow-bridge/core';
import { StoreError } from '@training-callbacks/store';
import { catalogToProto, definitionFromProto, taskTypes, trainerFromProto } from '../convert.ts';
import {
  checkEpoch,
  checkJobDescriptionSize,
  checkJobId,
  checkParams,
  checkRunName,
  checkShortText,
  checkStructDepth,
  checkTags,
  checkTrainerProcess,
  quote,
} from '../validation.ts';
import type { HandlerContext, HandlerGroup } from './context.ts';
import { classifierFor } from './job-states.ts';
import { isLost } from './verdicts.ts';

export function beginTrainingHandlers(ctx: HandlerContext): HandlerGroup<'beginTraining'> {
  const { store, log, notify, mirrored, jobsToProto } = ctx;
  const { remember } = ctx.jobs;
  const leaseFields = {
    heartbeatIntervalSeconds: ctx.lease.heartbeatIntervalMs / 1000,
    leaseSeconds: ctx.lease.leaseMs / 1000,
  };
  return {
    async beginTraining(request) {
      checkJobId(request.jobId);
      const task = taskTypes.name(request.taskType);
      if (!task) {
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          `task_type ${request.taskType} is not a task type; send one of ${taskTypes
            .names()
            .map((n) => `TASK_TYPE_${n.toUpperCase()}`)
            .join(', ')}`,
        );
      }
      checkShortText(request.framework, 'framework');
      checkShortText(request.modelName, 'model_name');
      checkEpoch(request.startEpoch, 'start_epoch');
      checkParams(request.params);
      checkRunName(request.runName);
      checkTags(request.tags);
      checkTrainerProcess(request.trainer);
      checkStructDepth(request.modelConfig, 'model_config');
      checkStructDepth(request.trainingConfig, 'training_config');
      checkJobDescriptionSize(request);
      const customMetrics = request.customMetrics.map((d, i) => definitionFromProto(d, i));
      for (const definition of customMetrics) {
        const problem = checkMetricName(definition.name);
        if (problem)
          throw new RpcError(
            Status.INVALID_ARGUMENT,
            `custom_metrics: ${quote(definition.name)}: ${problem}`,
          );
      }
      const classifier = classifierFor(task, { customMetrics });
      const trainer = trainerFromProto(request.trainer);
      const catalog = getTaskCatalog(task);

      // No lock: creation is an INSERT … ON CONFLICT DO NOTHING and a resume is conditional on the
      // state it was decided on, so two BeginTraining racing on two sidecars reach one outcome: when
      // the job changed in between (`conflict`), the decision is made again on the job as it is now.
      for (let attempt = 1; ; attempt++) {
        const fields = {
          jobId: request.jobId,
          task,
          framework: request.framework,
          modelName: request.modelName,
          modelConfig: (request.modelConfig ?? {}) as Record<string, unknown>,
          trainingConfig: (request.trainingConfig ?? {}) as Record<string, unknown>,
          params: { ...request.params },
          runName: request.runName,
          tags: { ...request.tags },
          customMetrics,
          startEpoch: request.startEpoch,
          primaryMetric: catalog.primaryMetric,
          ...(trainer && { trainer }),
          leaseMs: ctx.lease.leaseMs,
        };
        const begun = (startTimeMs: number) => jobBegunItem(fields, startTimeMs);
        const { job, created } = await store.createOrGetJob(
          fields,
          mirrored(() => [begun(Date.now())]),
        );
        if (created) {
          notify();
          remember(job, classifier);
          const processWatched = ctx.verdicts.begun(job);
          log(
            `[${job.jobId}] training begun │ ${task} │ ${job.framework || 'unknown framework'} │ ${job.modelName || 'unnamed model'}`,
            { event: 'job_begun', jobId: job.jobId, task, framework: job.framework, model: job.modelName },
          );
          return {
            job: (await jobsToProto([job]))[0]!,
            resumed: false,
            catalog: catalogToProto(catalog),
            ...leaseFields,
            processWatched,
          };
        }
        if (job.task !== task) {
          throw new RpcError(
            Status.FAILED_PRECONDITION,
            `job ${quote(job.jobId)} exists with task type ${job.task}, not ${task}; use a new job id for a different task`,
          );
        }
        if (job.status === 'completed') {
          throw new RpcError(
            Status.FAILED_PRECONDITION,
            `job ${quote(job.jobId)} already completed; to train further, begin a new job id (only running, failed or cancelled jobs can be resumed)`,
          );
        }
        // A retry of the same BeginTraining, or a resume after a crash: continue the same job.
        const reopened = await store
          .reopenJob(job.jobId, {
            from: job,
            startEpoch: request.startEpoch,
            modelConfig: fields.modelConfig,
            trainingConfig: fields.trainingConfig,
            params: fields.params,
            runName: fields.runName,
            tags: fields.tags,
            customMetrics,
            trainer: trainer ?? null,
            leaseMs: ctx.lease.leaseMs,
            ...mirrored(() => [
              begun(job.createdAt.getTime()),
              // The run's end-cause tag says the verdict was overtaken, not that the resumed run is lost.
              ...(isLost(job) ? revivedItems(job.endReason, Date.now(), 'resumed') : []),
            ]),
          })
          .catch((error: unknown) => {
            if (error instanceof StoreError && error.kind === 'conflict' && attempt < 3) return undefined;
            throw error;
          });
        if (!reopened) continue;
        notify();
        remember(reopened, classifier);
        const processWatched = ctx.verdicts.begun(reopened);
        log(`[${job.jobId}] training resumed from epoch ${request.startEpoch} (was ${job.status})`, {
          event: 'job_resumed',
          jobId: job.jobId,
          startEpoch: request.startEpoch,
          previousStatus: job.status,
        });
        return {
          job: (await jobsToProto([reopened]))[0]!,
          resumed: true,
          catalog: catalogToProto(catalog),
          ...leaseFields,
          processWatched,
        };
      }
    },
  };
}
