// The read side: jobs, epochs, the best epoch, batch metrics, artifacts and the metric catalog.
import { toBinary } from '@bufbuild/protobuf';
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { getTaskCatalog, listTaskCatalogs } from '@training-callbacks/metric-catalog';
import { ArtifactSchema, EpochRecordSchema, JobSchema } from '@training-callbacks/proto';
import type { ListedBatchBlock, Store } from '@training-callbacks/store';
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
import {
  ARTIFACT_PAGE,
  BATCH_POINT_PAGE,
  decodeToken,
  EPOCH_PAGE,
  encodeToken,
  fieldBytes,
  fitting,
  pageSize,
} from './pages.ts';

/** Most stored blocks one ListBatchMetrics page reads (a page is bounded by points and bytes too). */
const BLOCKS_PER_PAGE = 256;

/** Upper bound of a batch block slice's encoding: names, then per row a step (varint ≤ 10) and values. */
function sliceBytes(names: readonly string[], rows: number): number {
  let bytes = 32;
  for (const name of names) bytes += Buffer.byteLength(name) + 6;
  return bytes + rows * (10 + 8 * names.length);
}

/** Rows `from`…`to` of a listed block. */
function sliceRows(block: ListedBatchBlock, from: number, to: number) {
  const columns = block.names.length;
  return {
    epoch: block.epoch,
    names: block.names,
    steps: block.steps.subarray(from, to),
    values: block.values.subarray(from * columns, to * columns),
  };
}

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
  const { store, jobsToProto, pageBytes } = ctx;
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
      const jobs = await jobsToProto(page.jobs);
      const n = fitting(jobs, pageBytes, (job) => fieldBytes(toBinary(JobSchema, job).length));
      if (n < jobs.length) return { jobs: jobs.slice(0, n), nextPageToken: page.cursors[n - 1]! };
      return { jobs, nextPageToken: page.nextCursor ?? '' };
    },

    async listEpochs(request) {
      checkJobId(request.jobId);
      const limit = pageSize(request.pageSize, EPOCH_PAGE);
      const after = request.pageToken ? decodeToken(request.pageToken, ['number'] as const)[0] : undefined;
      await existing(request.jobId);
      const rows = await store.listEpochs(request.jobId, {
        limit: limit + 1,
        ...(after !== undefined && { afterEpoch: after }),
      });
      const epochs = rows.slice(0, limit).map(epochToProto);
      const n = fitting(epochs, pageBytes, (e) => fieldBytes(toBinary(EpochRecordSchema, e).length));
      const more = n < epochs.length || rows.length > limit;
      return { epochs: epochs.slice(0, n), nextPageToken: more ? encodeToken([epochs[n - 1]!.epoch]) : '' };
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
      let points = pageSize(request.pageSize, BATCH_POINT_PAGE);
      const after = request.pageToken
        ? decodeToken(request.pageToken, ['string', 'number', 'number'] as const)
        : undefined;
      let firstStep: bigint | undefined;
      if (after) {
        try {
          firstStep = BigInt(after[0]);
        } catch {
          throw new RpcError(
            Status.INVALID_ARGUMENT,
            'page_token is not one this sidecar issued; start from an empty page_token',
          );
        }
      }
      await existing(request.jobId);
      const stored = await store.listBatchBlocks(request.jobId, request.epoch, {
        // Every block taken holds at least one point: a page of n points needs at most n blocks, and
        // one more tells where the next page starts (page_size=1 reads 2 blocks, not 257).
        limit: Math.min(BLOCKS_PER_PAGE, points) + 1,
        ...(after && { after: { firstStep: firstStep!, id: after[1] } }),
      });
      // Rows are taken while they fit the points and the bytes; a page may end inside a block, and
      // the token then names the block and the row to go on from.
      const blocks = [];
      let budget = pageBytes;
      let next = '';
      for (let i = 0; i < Math.min(stored.length, BLOCKS_PER_PAGE); i++) {
        const block = stored[i]!;
        const from = after && i === 0 && block.id === after[1] ? Math.min(after[2], block.steps.length) : 0;
        const rows = block.steps.length - from;
        const columns = block.names.length;
        const perRow = sliceBytes(block.names, 1) - sliceBytes(block.names, 0);
        // Never below 0: the forced first row of a block wider than the page overdraws the budgets.
        let take = Math.max(
          0,
          Math.min(
            rows,
            Math.floor(points / columns),
            Math.floor((budget - sliceBytes(block.names, 0)) / perRow),
          ),
        );
        if (take <= 0 && blocks.length === 0) take = Math.min(rows, 1);
        if (take > 0) {
          blocks.push(blockToProto(sliceRows(block, from, from + take)));
          budget -= sliceBytes(block.names, take);
          points -= take * columns;
        }
        if (take < rows) {
          next = encodeToken([String(block.firstStep), block.id, from + take]);
          break;
        }
      }
      if (!next && stored.length > BLOCKS_PER_PAGE) {
        const block = stored[BLOCKS_PER_PAGE]!;
        next = encodeToken([String(block.firstStep), block.id, 0]);
      }
      return { blocks, nextPageToken: next };
    },

    async listArtifacts(request) {
      checkJobId(request.jobId);
      const limit = pageSize(request.pageSize, ARTIFACT_PAGE);
      const after = request.pageToken ? decodeToken(request.pageToken, ['number'] as const)[0] : undefined;
      await existing(request.jobId);
      const rows = await store.listArtifacts(request.jobId, {
        limit: limit + 1,
        ...(after !== undefined && { afterId: after }),
      });
      const page = rows.slice(0, limit);
      const artifacts = page.map(artifactToProto);
      const n = fitting(artifacts, pageBytes, (a) => fieldBytes(toBinary(ArtifactSchema, a).length));
      const more = n < artifacts.length || rows.length > limit;
      return { artifacts: artifacts.slice(0, n), nextPageToken: more ? encodeToken([page[n - 1]!.id]) : '' };
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
