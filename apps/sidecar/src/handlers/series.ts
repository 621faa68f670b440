// GetMetricSeries: one batch metric of a job, downsampled into step buckets (see series.ts). The blocks
// are read in pages, so a series of millions of points is aggregated in bounded memory.
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { SeriesBuckets } from '../series.ts';
import { checkJobId, checkShortText } from '../validation.ts';
import type { HandlerContext, HandlerGroup } from './context.ts';

const DEFAULT_POINTS = 2000;
const MAX_POINTS = 10_000;
/** Blocks read at once. */
const BLOCK_PAGE = 64;

export function seriesHandlers(ctx: HandlerContext): HandlerGroup<'getMetricSeries'> {
  const { store } = ctx;
  return {
    async getMetricSeries(request) {
      checkJobId(request.jobId);
      if (request.name === '') {
        throw new RpcError(Status.INVALID_ARGUMENT, 'name is empty; send a batch metric name of the job');
      }
      checkShortText(request.name, 'name');
      if (request.maxPoints < 0 || request.maxPoints > MAX_POINTS) {
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          `max_points must be between 1 and ${MAX_POINTS} (0 means ${DEFAULT_POINTS}); got ${request.maxPoints}`,
        );
      }
      if (
        request.minStep !== undefined &&
        request.maxStep !== undefined &&
        request.minStep > request.maxStep
      ) {
        throw new RpcError(
          Status.INVALID_ARGUMENT,
          `min_step ${request.minStep} is after max_step ${request.maxStep}; send min_step ≤ max_step`,
        );
      }
      const state = await ctx.jobs.existing(request.jobId);
      // Batch names are stored normalised (Ultralytics' "loss" is "train_loss"): ask by either name.
      const name = state.classifier.normaliseNames([request.name])[0]!.name;
      const range = await store.batchStepRange(request.jobId);
      if (!range) return { name, buckets: [], fullResolution: true, totalPoints: 0n };
      const minStep = request.minStep ?? range.first;
      const maxStep = request.maxStep ?? range.last;
      const series = new SeriesBuckets(minStep, maxStep, request.maxPoints || DEFAULT_POINTS);
      let afterId = 0;
      for (;;) {
        const blocks = await store.readBatchBlocks(request.jobId, {
          afterId,
          limit: BLOCK_PAGE,
          minStep,
          maxStep,
        });
        for (const block of blocks) {
          const column = block.names.indexOf(name);
          if (column < 0) continue;
          series.addColumn(block.steps, block.values, column, block.names.length);
        }
        if (blocks.length < BLOCK_PAGE) break;
        afterId = blocks[blocks.length - 1]!.id;
      }
      const buckets = series.buckets();
      return {
        name,
        buckets: buckets.map((b) => ({
          firstStep: b.firstStep,
          lastStep: b.lastStep,
          min: b.min,
          max: b.max,
          last: b.last,
          count: BigInt(b.count),
        })),
        fullResolution: buckets.every((b) => b.count === 1),
        totalPoints: BigInt(series.total),
      };
    },
  };
}
