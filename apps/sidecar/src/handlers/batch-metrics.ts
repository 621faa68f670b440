// ReportBatchMetrics: a client stream of batch blocks, checked block by block, normalised by the
// catalog and committed in transactions of about BATCH_COMMIT_POINTS points.
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { applyScale, checkMetricName } from '@training-callbacks/metric-catalog';
import type { BatchBlock } from '@training-callbacks/store';
import type { RejectionReason } from '../metrics.ts';
import { BATCH_ITEM_KIND } from '../mlflow-items.ts';
import { checkJobId, quote } from '../validation.ts';
import type { HandlerContext, HandlerGroup } from './context.ts';
import type { JobState } from './job-states.ts';

/** Batch points are committed in transactions of about this many points while a stream is open. */
const BATCH_COMMIT_POINTS = 200_000;

export function batchMetricHandlers(ctx: HandlerContext): HandlerGroup<'reportBatchMetrics'> {
  const { store, notify, mirror, metrics } = ctx;
  const { running } = ctx.jobs;
  return {
    async reportBatchMetrics(requests) {
      let jobId: string | undefined;
      let state: JobState | undefined;
      let pending: BatchBlock[] = [];
      let pendingPoints = 0;
      let accepted = 0;
      let rejected = 0;
      let nonFinite = 0;
      const reasons = new Set<string>();
      const flush = async () => {
        if (pending.length === 0) return;
        // The outbox refers to the stored blocks; their points are read when MLflow is sent them.
        await store.appendBatchBlocks(jobId!, pending, mirror ? { outboxKind: BATCH_ITEM_KIND } : {});
        notify();
        metrics.batchPointsIngested(pendingPoints);
        pending = [];
        pendingPoints = 0;
      };
      const reject = (points: number, reason: string, code: RejectionReason) => {
        rejected += points;
        reasons.add(reason);
        metrics.metricsRejected('batch', code, points);
      };

      for await (const request of requests) {
        if (jobId === undefined) {
          checkJobId(request.jobId);
          jobId = request.jobId;
          state = await running(jobId);
        } else if (request.jobId !== '' && request.jobId !== jobId) {
          throw new RpcError(
            Status.INVALID_ARGUMENT,
            `every message of a ReportBatchMetrics stream must name the same job; got ${quote(request.jobId)} after ${quote(jobId)}`,
          );
        }
        for (const block of request.blocks) {
          const columns = block.names.length;
          const rows = block.steps.length;
          const points = block.values.length;
          if (columns === 0 || rows === 0) {
            reject(points, 'a block needs at least one name and one step', 'empty_block');
            continue;
          }
          if (points !== rows * columns) {
            reject(
              points,
              `a block's values must hold len(steps) × len(names) numbers (got ${points} for ${rows} × ${columns})`,
              'block_shape',
            );
            continue;
          }
          if (block.epoch < 0) {
            reject(points, `epoch ${block.epoch} is negative; epochs are counted from 0`, 'negative_epoch');
            continue;
          }
          const badName = block.names.find((name) => checkMetricName(name) !== undefined);
          if (badName !== undefined) {
            reject(points, `metric name ${quote(badName)}: ${checkMetricName(badName)}`, 'bad_name');
            continue;
          }
          const normalised = state!.classifier.normaliseNames(block.names);
          const names = normalised.map((n) => n.name);
          if (new Set(names).size !== names.length) {
            reject(
              points,
              `names ${quote(block.names.join(', '))} repeat a metric once normalised (${names.join(', ')})`,
              'duplicate_name',
            );
            continue;
          }
          const values = Float64Array.from(block.values);
          for (let c = 0; c < columns; c++) {
            const scale = normalised[c]!.scale;
            if (scale !== 1)
              for (let i = c; i < points; i += columns) values[i] = applyScale(values[i]!, scale);
          }
          for (let i = 0; i < points; i++) if (!Number.isFinite(values[i]!)) nonFinite++;
          pending.push({ epoch: block.epoch, names, steps: BigInt64Array.from(block.steps), values });
          pendingPoints += points;
          accepted += points;
        }
        if (pendingPoints >= BATCH_COMMIT_POINTS) await flush();
      }
      if (jobId !== undefined) await flush();
      return {
        acceptedPoints: BigInt(accepted),
        rejectedPoints: BigInt(rejected),
        nonFinitePoints: BigInt(nonFinite),
        rejections: [...reasons],
      };
    },
  };
}
