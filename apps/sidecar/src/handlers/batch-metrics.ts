// ReportBatchMetrics: a client stream of batch blocks, checked block by block, normalised by the
// catalog, and committed all at once when the client ends the stream: a stream refused or broken
// anywhere stores nothing, so a client may resend it whole (points are identified by name and step,
// so what was stored already is not stored twice; see the store's batch-points.ts).
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { applyScale, checkMetricName } from '@training-callbacks/metric-catalog';
import {
  BATCH_ITEM_KIND,
  BATCH_KEY_PREFIX,
  type MetricSource,
  metricSourcesItem,
  mlflowBatchKey,
} from '@training-callbacks/mlflow-bridge/core';
import { isSystemMetric } from '@training-callbacks/proto';
import type { BatchBlock } from '@training-callbacks/store';
import type { RejectionReason } from '../metrics.ts';
import { checkJobId, checkSessionId, quote } from '../validation.ts';
import type { HandlerContext, HandlerGroup } from './context.ts';
import type { JobState } from './job-states.ts';

/**
 * Most points one stream may carry: the stream is held in memory until it ends (16 bytes a point at
 * most, so 64 MiB), then committed in one transaction. The proto documents it.
 */
export const MAX_STREAM_POINTS = 4_194_304;

/**
 * What the handler reads of a stream's message: protobuf-es' message, or the typed form the gRPC
 * server decodes it into (`decodeBatchRequest`, registered in sidecar.ts), whose columns are used as
 * they are.
 */
interface BatchRequest {
  readonly jobId: string;
  readonly sessionId: string;
  readonly blocks: readonly {
    readonly epoch: number;
    readonly names: string[];
    readonly steps: ArrayLike<bigint>;
    readonly values: ArrayLike<number>;
  }[];
}

export function batchMetricHandlers(ctx: HandlerContext): HandlerGroup<'reportBatchMetrics'> {
  const { store, notify, mirror, metrics } = ctx;
  const { running } = ctx.verdicts;
  return {
    async reportBatchMetrics(requests: AsyncIterable<BatchRequest>, context) {
      let jobId: string | undefined;
      /** The stream's client session: the first non-empty one sent. */
      let sessionId = '';
      let state: JobState | undefined;
      const pending: BatchBlock[] = [];
      let pendingPoints = 0;
      let accepted = 0;
      let rejected = 0;
      let nonFinite = 0;
      const reasons = new Set<string>();
      const sources: MetricSource[] = [];
      const reject = (points: number, reason: string, code: RejectionReason) => {
        rejected += points;
        reasons.add(reason);
        metrics.metricsRejected('batch', code, points);
      };

      for await (const request of requests) {
        if (sessionId === '' && request.sessionId !== '') {
          checkSessionId(request.sessionId);
          sessionId = request.sessionId;
        }
        if (jobId === undefined) {
          checkJobId(request.jobId);
          jobId = request.jobId;
          state = await running(jobId, sessionId);
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
          if (mirror) {
            // `batch/` alone is the documented rule for every batch key (and system/ names keep
            // theirs), not a rename worth a tag.
            for (const [c, n] of normalised.entries()) {
              const name = mlflowBatchKey(n.name);
              const reported = block.names[c]!;
              const unrenamed = isSystemMetric(reported) ? reported : BATCH_KEY_PREFIX + reported;
              if (name !== unrenamed || n.scale !== 1) sources.push({ name, reported, scale: n.scale });
            }
          }
          // Scaled in place below: a decoded block's own array, else a copy.
          const values =
            block.values instanceof Float64Array ? block.values : Float64Array.from(block.values);
          for (let c = 0; c < columns; c++) {
            const scale = normalised[c]!.scale;
            if (scale !== 1)
              for (let i = c; i < points; i += columns) values[i] = applyScale(values[i]!, scale);
          }
          for (let i = 0; i < points; i++) if (!Number.isFinite(values[i]!)) nonFinite++;
          if (pendingPoints + points > MAX_STREAM_POINTS) {
            throw new RpcError(
              Status.RESOURCE_EXHAUSTED,
              `a ReportBatchMetrics stream carries at most ${MAX_STREAM_POINTS} points; nothing of this ` +
                'stream was stored: send its blocks again in several shorter streams',
            );
          }
          const steps = block.steps instanceof BigInt64Array ? block.steps : BigInt64Array.from(block.steps);
          pending.push({ epoch: block.epoch, names, steps, values });
          pendingPoints += points;
          accepted += points;
        }
      }
      // grpc-js ends a stream cut off by the client's cancel or by a message over the size limit like a
      // complete one: such a stream must not be committed. A cancel the transport reports only after
      // the end it delivered (an HTTP/2 reset can arrive so) looks like a lost acknowledgement: the
      // stream is stored, and the client's resend stores nothing twice.
      if (context.cancelled) {
        throw new RpcError(Status.CANCELLED, 'the client cancelled the stream; nothing of it was stored');
      }
      let replaced = 0;
      if (jobId !== undefined && pending.length > 0) {
        const id = jobId;
        // No lock: appendBatchBlocks checks in its transaction that the job still runs, so a stream
        // racing an EndTraining (on this sidecar or another) is stored before the end or refused.
        // Renames and unit changes (tags) are recorded once per job by the store, ahead of the blocks
        // and in their transaction; what this sidecar knows recorded already is not even sent.
        const unrecorded = mirror ? ctx.metricSources.unrecorded(id, sources) : [];
        // The outbox refers to the stored blocks; their points are read when MLflow is sent them.
        const result = await ctx.verdicts.report(id, sessionId, () =>
          store.appendBatchBlocks(
            id,
            pending,
            mirror
              ? {
                  outboxKind: BATCH_ITEM_KIND,
                  ...(unrecorded.length && {
                    metricSources: { sources: unrecorded, item: metricSourcesItem },
                  }),
                }
              : {},
          ),
        );
        ctx.metricSources.recorded(id, unrecorded);
        replaced = result.replacedPoints;
        await ctx.verdicts.alive(id);
        notify();
        // A resent point stored already with the same value is acknowledged again but not committed again.
        metrics.batchPointsIngested(pendingPoints - result.unchangedPoints);
      }
      return {
        acceptedPoints: BigInt(accepted),
        replacedPoints: BigInt(replaced),
        rejectedPoints: BigInt(rejected),
        nonFinitePoints: BigInt(nonFinite),
        rejections: [...reasons],
      };
    },
  };
}
