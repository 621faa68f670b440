// What the client could not deliver for a job, counted with the reasons: sent with EndTraining
// (EndTrainingRequest.losses, shown in the job) and returned by onTrainEnd. Nothing is lost silently.
import type { ClientLosses } from '@training-callbacks/proto';

/** What the client could not deliver (the contract's ClientLosses, with numbers). */
export interface Losses {
  /** Batch points never delivered: dropped (buffer full, after the end) or given up at the flush deadline. */
  readonly droppedPoints: number;
  /** Batch points the sidecar refused. */
  readonly refusedPoints: number;
  /** Writes (epochs, artifacts, …) refused, or given up after the retry budget. */
  readonly failedWrites: number;
  /** Why, one line per distinct reason with its count (at most 16). */
  readonly reasons: readonly string[];
}

/** Distinct reasons kept (the contract bounds them too); later ones are counted, not kept. */
const MAX_REASONS = 16;
/** Characters kept of one reason. */
const MAX_REASON_LENGTH = 500;

/** Counts and reasons of what was lost. The hot path's drops are passed to {@link snapshot}. */
export class LossLedger {
  private dropped = 0;
  private refused = 0;
  private failed = 0;
  private readonly reasons = new Map<string, number>();
  private unkept = 0;

  add(
    reason: string,
    counts: { droppedPoints?: number; refusedPoints?: number; failedWrites?: number },
  ): void {
    this.dropped += counts.droppedPoints ?? 0;
    this.refused += counts.refusedPoints ?? 0;
    this.failed += counts.failedWrites ?? 0;
    const key = reason.slice(0, MAX_REASON_LENGTH);
    const seen = this.reasons.get(key);
    if (seen !== undefined) this.reasons.set(key, seen + 1);
    else if (this.reasons.size < MAX_REASONS - 1) this.reasons.set(key, 1);
    else this.unkept++;
  }

  /** The losses so far; `bufferDropped` points were dropped by `onBatchEnd` (buffer full, job ended). */
  snapshot(bufferDropped: number, bufferReason: string): Losses {
    const reasons = [...this.reasons].map(([r, n]) => (n > 1 ? `${r} (×${n})` : r));
    if (bufferDropped > 0) reasons.unshift(bufferReason);
    if (this.unkept > 0) reasons.push(`${this.unkept} more of other reasons`);
    return {
      droppedPoints: this.dropped + bufferDropped,
      refusedPoints: this.refused,
      failedWrites: this.failed,
      reasons: reasons.slice(0, MAX_REASONS),
    };
  }
}

/** True when anything was lost. */
export function hasLosses(losses: Losses): boolean {
  return losses.droppedPoints > 0 || losses.refusedPoints > 0 || losses.failedWrites > 0;
}

/** As sent with EndTraining. */
export function lossesToProto(
  losses: Losses,
): Pick<ClientLosses, 'droppedPoints' | 'refusedPoints' | 'failedWrites' | 'reasons'> {
  return {
    droppedPoints: BigInt(losses.droppedPoints),
    refusedPoints: BigInt(losses.refusedPoints),
    failedWrites: BigInt(losses.failedWrites),
    reasons: [...losses.reasons],
  };
}

/** One line: "800 batch points dropped, 1 write failed (batch buffer full …; …)". */
export function describeLosses(losses: Losses): string {
  const parts: string[] = [];
  if (losses.droppedPoints) parts.push(`${losses.droppedPoints} batch points dropped`);
  if (losses.refusedPoints) parts.push(`${losses.refusedPoints} batch points refused`);
  if (losses.failedWrites)
    parts.push(`${losses.failedWrites} write${losses.failedWrites === 1 ? '' : 's'} failed`);
  const text = parts.join(', ') || 'nothing lost';
  return losses.reasons.length ? `${text} (${losses.reasons.join('; ')})` : text;
}
