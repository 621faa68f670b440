// The read side: jobs, epochs, the best epoch, batch metrics, artifacts and the metric catalog.
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { getTaskCatalog, listTaskCatalogs } from '@training-callbacks/metric-catalog';
import type { Store } from '@training-callbacks/store';
import {
  artifactToProto,
  blockToProto,
  catalogToProto,
  epochToProto,
  jobStatuses,
  taskTypes,
} from '../convert.ts';
import { checkJobId, quote } from '../validation.ts';
import type { HandlerContext, HandlerGroup } from './context.ts';

export function readHandlers(
  ctx: HandlerContext,
): HandlerGroup<
  | 'getJob'
  | 'listJobs'
  | 'listEpochs'
  | 'getBestEpoch'
  | 'listBatchMetrics'
  | 'listArtifacts'
  | 'getMetricCatalog'
> {
  const { store, jobsToProto } = ctx;
  const { existing } = ctx.jobs;
  return {
    async getJob(request) {
      checkJobId(request.jobId);
      const job = await store.getJob(request.jobId);
      if (!job) throw new RpcError(Status.NOT_FOUND, `job ${quote(request.jobId)} not found`);
      return { job: (await jobsToProto([job]))[0]! };
    },

    async listJobs(request) {
      if (request.pageSize < 0 || request.pageSize > 1000) {
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          `page_size must be between 1 and 1000 (0 means 50); got ${request.pageSize}`,
        );
      }
      const status = request.status === 0 ? undefined : jobStatuses.name(request.status);
      if (request.status !== 0 && !status)
        throw new RpcError(Status.INVALID_ARGUMENT, `status ${request.status} is not a job status`);
      const task = request.taskType === 0 ? undefined : taskTypes.name(request.taskType);
      if (request.taskType !== 0 && !task)
        throw new RpcError(Status.INVALID_ARGUMENT, `task_type ${request.taskType} is not a task type`);
      let page: Awaited<ReturnType<Store['listJobs']>>;
      try {
        page = await store.listJobs({
          limit: request.pageSize || 50,
          ...(status && { status }),
          ...(task && { task }),
          ...(request.pageToken && { cursor: request.pageToken }),
        });
      } catch (error) {
        if (request.pageToken) {
          throw new RpcError(
            Status.INVALID_ARGUMENT,
            'page_token is not one this sidecar issued; start from an empty page_token',
            { cause: error },
          );
        }
        throw error;
      }
      return { jobs: await jobsToProto(page.jobs), nextPageToken: page.nextCursor ?? '' };
    },

    async listEpochs(request) {
      checkJobId(request.jobId);
      await existing(request.jobId);
      return { epochs: (await store.listEpochs(request.jobId)).map(epochToProto) };
    },

    async getBestEpoch(request) {
      checkJobId(request.jobId);
      const { job } = await existing(request.jobId);
      const fresh = (await store.getJob(request.jobId)) ?? job;
      if (fresh.bestEpoch === undefined) return { primaryMetric: fresh.primaryMetric };
      const epoch = (await store.listEpochs(request.jobId)).find((e) => e.epoch === fresh.bestEpoch);
      return { primaryMetric: fresh.primaryMetric, ...(epoch && { epoch: epochToProto(epoch) }) };
    },

    async listBatchMetrics(request) {
      checkJobId(request.jobId);
      await existing(request.jobId);
      const blocks = await store.listBatchBlocks(request.jobId, request.epoch);
      return { blocks: blocks.map(blockToProto) };
    },

    async listArtifacts(request) {
      checkJobId(request.jobId);
      await existing(request.jobId);
      return { artifacts: (await store.listArtifacts(request.jobId)).map(artifactToProto) };
    },

    async getMetricCatalog(request) {
      if (request.taskType === 0) return { catalogs: listTaskCatalogs().map(catalogToProto) };
      const task = taskTypes.name(request.taskType);
      if (!task)
        throw new RpcError(Status.INVALID_ARGUMENT, `task_type ${request.taskType} is not a task type`);
      return { catalogs: [catalogToProto(getTaskCatalog(task))] };
    },
  };
}
