// Follows a watch stream (WatchJobs, WatchJob) for as long as the page shows it: starts at the head
// (the page loads the current state itself, after the stream's first message), and after a dropped
// connection resumes from the last `seq` received, so nothing is missed and nothing repeated.
import { Code, ConnectError } from '@connectrpc/connect';
import { reportFailure } from './session.tsx';

export type FollowState = 'connecting' | 'live' | 'reconnecting' | { failed: string };

export interface FollowOptions<E extends { seq: bigint }> {
  open: (from: { afterSeq: bigint; fromHead: boolean }, signal: AbortSignal) => AsyncIterable<E>;
  onEvent: (event: E) => void;
  /** The stream is open (its first message arrived): load the current state now. */
  onOpen?: () => void;
  onState: (state: FollowState) => void;
  signal: AbortSignal;
}

/** Errors that another attempt cannot fix: the page says so instead of retrying. */
const FINAL = new Set([Code.NotFound, Code.Unauthenticated, Code.PermissionDenied, Code.InvalidArgument]);

export async function follow<E extends { seq: bigint }>(options: FollowOptions<E>): Promise<void> {
  let afterSeq: bigint | undefined;
  let opened = false;
  let delayMs = 250;
  while (!options.signal.aborted) {
    try {
      const from = afterSeq === undefined ? { afterSeq: 0n, fromHead: true } : { afterSeq, fromHead: false };
      options.onState(afterSeq === undefined ? 'connecting' : 'reconnecting');
      let connected = false;
      for await (const event of options.open(from, options.signal)) {
        afterSeq = event.seq;
        if (!connected) {
          // Each connection's first message (a heartbeat comes at once): live again.
          connected = true;
          delayMs = 250;
          options.onState('live');
        }
        if (!opened) {
          opened = true;
          options.onOpen?.();
        }
        options.onEvent(event);
      }
    } catch (error) {
      if (options.signal.aborted) return;
      const e = ConnectError.from(error);
      if (FINAL.has(e.code)) {
        reportFailure(error);
        options.onState({ failed: e.rawMessage });
        return;
      }
    }
    if (options.signal.aborted) return;
    options.onState('reconnecting');
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    delayMs = Math.min(delayMs * 2, 5000);
  }
}

/** A small "● live" / "reconnecting…" indicator. */
export function stateText(state: FollowState): string {
  if (typeof state === 'object') return `stopped: ${state.failed}`;
  return state === 'live' ? '● live' : state === 'connecting' ? 'connecting…' : 'reconnecting…';
}
