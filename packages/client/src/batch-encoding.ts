import { create } from '@bufbuild/protobuf';
import {
  type BatchMetricsBlock,
  BatchMetricsBlockSchema,
  type ReportBatchMetricsRequest,
  ReportBatchMetricsRequestSchema,
} from '@training-callbacks/proto';
import type { SealedBlock } from './batch-buffer.ts';

/** At most this many points go into one message of a ReportBatchMetrics stream (1 MiB of values). */
export const MAX_POINTS_PER_MESSAGE = 131_072;

/** The protobuf-es message for one sealed block. */
export function toBlockMessage(block: SealedBlock): BatchMetricsBlock {
  const rows = block.steps.length;
  const steps = new Array<bigint>(rows);
  for (let i = 0; i < rows; i++) steps[i] = BigInt(block.steps[i] as number);
  // A plain loop: Array.from(Float64Array) is several times slower on V8.
  const source = block.values;
  const count = source.length;
  const values = new Array<number>(count);
  for (let i = 0; i < count; i++) values[i] = source[i] as number;
  return create(BatchMetricsBlockSchema, {
    epoch: block.epoch,
    names: block.names as string[],
    steps,
    values,
  });
}

/**
 * The messages of one ReportBatchMetrics stream for `blocks`: blocks packed into messages of at most
 * `maxPointsPerMessage` points (a bigger block travels alone), every message naming the job and the
 * client's session.
 */
export function toBatchRequests(
  { jobId, sessionId = '' }: { readonly jobId: string; readonly sessionId?: string },
  blocks: readonly SealedBlock[],
  maxPointsPerMessage = MAX_POINTS_PER_MESSAGE,
): ReportBatchMetricsRequest[] {
  const requests: ReportBatchMetricsRequest[] = [];
  let current: BatchMetricsBlock[] = [];
  let points = 0;
  for (const block of blocks) {
    const size = block.values.length;
    if (current.length > 0 && points + size > maxPointsPerMessage) {
      requests.push(create(ReportBatchMetricsRequestSchema, { jobId, sessionId, blocks: current }));
      current = [];
      points = 0;
    }
    current.push(toBlockMessage(block));
    points += size;
  }
  if (current.length > 0)
    requests.push(create(ReportBatchMetricsRequestSchema, { jobId, sessionId, blocks: current }));
  return requests;
}
