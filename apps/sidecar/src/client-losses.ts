// What a trainer's client could not deliver (EndTrainingRequest.losses): normalised for the store,
// added up across the runs of a resumed job, shown in the job and named in the end line, so that a
// job with losses never looks like a clean run.
import { create } from '@bufbuild/protobuf';
import { type ClientLosses, ClientLossesSchema } from '@training-callbacks/proto';
import type { ClientLossesRecord } from '@training-callbacks/store';
import { truncateCodePoints } from './validation.ts';

/** Reasons kept per job; the contract documents the bound. */
export const MAX_LOSS_REASONS = 16;
/** Code points kept of one reason. */
export const LOSS_REASON_MAX_LENGTH = 1000;

/**
 * The losses of an EndTraining request, or undefined when it reports none. Never refuses: a loss
 * report must not cost the job its end, so long reasons are cut and surplus ones dropped.
 */
export function lossesFromRequest(losses: ClientLosses | undefined): ClientLossesRecord | undefined {
  if (!losses) return undefined;
  const record: ClientLossesRecord = {
    droppedPoints: count(losses.droppedPoints),
    refusedPoints: count(losses.refusedPoints),
    failedWrites: count(losses.failedWrites),
    reasons: keepReasons(losses.reasons),
  };
  return hasLosses(record) || record.reasons.length ? record : undefined;
}

/** The losses of a job after another run reported `added` (a resumed job keeps its earlier ones). */
export function addLosses(
  stored: ClientLossesRecord | undefined,
  added: ClientLossesRecord | undefined,
): ClientLossesRecord | undefined {
  if (!stored || !added) return added ?? stored;
  return {
    droppedPoints: stored.droppedPoints + added.droppedPoints,
    refusedPoints: stored.refusedPoints + added.refusedPoints,
    failedWrites: stored.failedWrites + added.failedWrites,
    reasons: keepReasons([...stored.reasons, ...added.reasons.filter((r) => !stored.reasons.includes(r))]),
  };
}

export function lossesToProto(record: ClientLossesRecord): ClientLosses {
  return create(ClientLossesSchema, {
    droppedPoints: BigInt(record.droppedPoints),
    refusedPoints: BigInt(record.refusedPoints),
    failedWrites: BigInt(record.failedWrites),
    reasons: record.reasons,
  });
}

/** For the end line: "client lost 800 batch points, 1 write (batch queue full …)". */
export function describeLosses(record: ClientLossesRecord): string {
  const parts: string[] = [];
  if (record.droppedPoints) parts.push(`${record.droppedPoints} batch points dropped`);
  if (record.refusedPoints) parts.push(`${record.refusedPoints} batch points refused`);
  if (record.failedWrites)
    parts.push(`${record.failedWrites} write${record.failedWrites === 1 ? '' : 's'} failed`);
  const first = record.reasons[0];
  const more = record.reasons.length > 1 ? ` and ${record.reasons.length - 1} more reason(s)` : '';
  const why = first === undefined ? '' : ` (${truncateCodePoints(first.split('\n')[0]!, 160)}${more})`;
  return `LOSSES: ${parts.join(', ') || 'reported'}${why}`;
}

function hasLosses(record: ClientLossesRecord): boolean {
  return record.droppedPoints > 0 || record.refusedPoints > 0 || record.failedWrites > 0;
}

function count(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

function keepReasons(reasons: readonly string[]): string[] {
  return reasons.slice(0, MAX_LOSS_REASONS).map((r) => truncateCodePoints(r, LOSS_REASON_MAX_LENGTH));
}
