// The trainer's reports (begin, epochs, artifacts, end) in the order they were made, delivered one
// at a time in the background. The trainer's call only appends here and returns; what the sidecar
// answers settles the report's promise later. Failures are classified by the shared status table
// (proto/status-table.json): the sender passed in retries transient ones; what still fails is either
// refused (permanent: dropped with a warning naming it, counted, later reports go on) or given up at
// onTrainEnd's flush deadline (counted). Nothing is lost silently: every loss goes into the ledger
// that EndTraining carries.
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import type { LossLedger } from './losses.ts';
import { statusClass } from './retry.ts';

/** The default bound of {@link ReportQueue}: reports waiting to be delivered. */
export const DEFAULT_MAX_QUEUED_REPORTS = 10_000;

/** What kind of report: the job's begin and end are kept when the rest is given up. */
export type ReportKind = 'begin' | 'write' | 'end' | 'barrier';

/** How one report ended: acknowledged with the sidecar's answer, or lost with the reason. */
export type Settled<T> =
  | { readonly delivered: true; readonly value: T }
  | { readonly delivered: false; readonly error: RpcError };

/** A report as one encoded unary call, for the exit path that sends it from a child process. */
export interface EncodedCall {
  readonly method: 'beginEpoch' | 'endEpoch';
  readonly request: Uint8Array;
}

interface Entry {
  readonly what: string;
  readonly kind: ReportKind;
  readonly send: () => Promise<unknown>;
  /** The report encoded, when the exit path can send it without an event loop. */
  readonly encode?: (() => EncodedCall) | undefined;
  readonly settle: (settled: Settled<unknown>) => void;
  /** Set once settled (it may still sit at the head of the queue for a moment). */
  done?: boolean;
}

/** Options of {@link ReportQueue}. */
export interface ReportQueueOptions {
  /** Reports held at most (a bounded memory); beyond it a new report is lost and counted. */
  readonly maxQueuedReports: number;
  /** Where losses are counted (sent with EndTraining). */
  readonly losses: LossLedger;
  /** Runs before each report but the begin (e.g. sends the batch points reported before it). Never rejects. */
  readonly beforeEach: (kind: ReportKind) => Promise<void>;
  /** Told once per distinct problem (kind of report and status), with a line naming it. */
  readonly warn: (key: string, message: string) => void;
  /** Told of every lost report. */
  readonly onLost: (what: string, error: RpcError) => void;
}

/**
 * Reports in order, one in flight at a time (a later epoch never overtakes an earlier one), each
 * retried by its sender. Bounded by {@link ReportQueueOptions.maxQueuedReports}.
 */
export class ReportQueue {
  /** Reports acknowledged by the sidecar. */
  delivered = 0;
  /** Reports lost (refused, given up, queue full, closed). */
  lost = 0;
  private readonly options: ReportQueueOptions;
  private readonly entries: Entry[] = [];
  private running = false;
  private givenUp: string | undefined;
  private closed: string | undefined;
  private idle: Promise<void> = Promise.resolve();

  constructor(options: ReportQueueOptions) {
    this.options = options;
  }

  /** Reports not yet settled (waiting or in flight), barriers excluded. */
  get pending(): number {
    let n = 0;
    for (const entry of this.entries) if (entry.kind !== 'barrier' && !entry.done) n++;
    return n;
  }

  /** The reports not yet settled but the end, in order (for the exit path). */
  pendingReports(): readonly { readonly what: string; readonly encode?: (() => EncodedCall) | undefined }[] {
    return this.entries.filter((e) => e.kind !== 'barrier' && e.kind !== 'end' && !e.done);
  }

  /**
   * Appends a report; `send` delivers it (with retries) when its turn comes. Resolves when it is
   * settled; never rejects.
   */
  enqueue<T>(
    what: string,
    kind: ReportKind,
    send: () => Promise<T>,
    encode?: () => EncodedCall,
  ): Promise<Settled<T>> {
    return new Promise<Settled<T>>((resolve) => {
      const entry: Entry = {
        what,
        kind,
        send,
        encode,
        settle: (settled) => {
          entry.done = true;
          (resolve as (settled: Settled<unknown>) => void)(settled);
        },
      };
      const refusal = this.closed ?? (kind !== 'end' && kind !== 'barrier' ? this.givenUp : undefined);
      if (refusal !== undefined) {
        this.lose(entry, new RpcError(Status.CANCELLED, refusal));
        return;
      }
      if (kind !== 'end' && kind !== 'barrier' && this.pending >= this.options.maxQueuedReports) {
        const error = new RpcError(
          Status.RESOURCE_EXHAUSTED,
          `the report queue is full (${this.options.maxQueuedReports} reports waiting for the sidecar); ` +
            'raise maxQueuedReports or report less often',
        );
        this.options.warn('queue-full', `${what} lost: ${error.message}`);
        this.lose(entry, error);
        return;
      }
      this.entries.push(entry);
      this.kick();
    });
  }

  /**
   * onTrainEnd's flush deadline has passed: every report still waiting, except the job's begin and
   * end, is lost with `why` (the one in flight is told to stop by its sender's signal).
   */
  giveUp(why: string): void {
    this.givenUp = why;
    const kept: Entry[] = [];
    for (const [index, entry] of this.entries.entries()) {
      // The first entry is in flight: its sender stops retrying and settles it.
      if (index === 0 && this.running) kept.push(entry);
      else if (entry.kind === 'begin' || entry.kind === 'end' || entry.kind === 'barrier') kept.push(entry);
      else this.lose(entry, new RpcError(Status.DEADLINE_EXCEEDED, why));
    }
    this.entries.splice(0, this.entries.length, ...kept);
  }

  /** Stops: every waiting report is lost with `why`; resolves when the one in flight settled. */
  async close(why: string): Promise<void> {
    this.closed = why;
    const waiting = this.running ? this.entries.splice(1) : this.entries.splice(0);
    for (const entry of waiting) {
      if (entry.kind === 'barrier') entry.settle({ delivered: true, value: undefined });
      else this.lose(entry, new RpcError(Status.CANCELLED, why));
    }
    await this.idle;
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    let done!: () => void;
    this.idle = new Promise((resolve) => {
      done = resolve;
    });
    void this.pump().finally(done);
  }

  private async pump(): Promise<void> {
    for (;;) {
      const entry = this.entries[0];
      if (entry === undefined) break;
      await this.deliver(entry);
      if (this.entries[0] === entry) this.entries.shift();
    }
    this.running = false;
  }

  private async deliver(entry: Entry): Promise<void> {
    if (entry.kind !== 'begin') await this.options.beforeEach(entry.kind);
    if (entry.kind === 'barrier') {
      entry.settle({ delivered: true, value: undefined });
      return;
    }
    if (this.givenUp !== undefined && entry.kind === 'write') {
      this.lose(entry, new RpcError(Status.DEADLINE_EXCEEDED, this.givenUp));
      return;
    }
    let value: unknown;
    try {
      value = await entry.send();
    } catch (thrown) {
      let error = RpcError.from(thrown);
      // Its retries were stopped by onTrainEnd's flush deadline: given up, not refused.
      if (this.givenUp !== undefined && entry.kind !== 'end' && statusClass(error) !== 'permanent') {
        error = new RpcError(
          Status.DEADLINE_EXCEEDED,
          `${this.givenUp} (last failure ${error.codeName}: ${error.message})`,
        );
      }
      this.lose(entry, error);
      return;
    }
    this.delivered++;
    entry.settle({ delivered: true, value });
  }

  private lose(entry: Entry, error: RpcError): void {
    this.lost++;
    const what = `${error.codeName}: ${error.message}`;
    const given = this.givenUp !== undefined && error.code === Status.DEADLINE_EXCEEDED;
    this.options.losses.add(given ? `${entry.what}: ${what}` : `${entry.what} lost (${what})`, {
      failedWrites: 1,
    });
    if (!given && this.closed === undefined) {
      this.options.warn(
        `lost:${entry.what.split(' ')[0]}:${error.codeName}`,
        `${entry.what} lost (${what}); dropped and counted in the job's losses, later reports go on`,
      );
    }
    try {
      this.options.onLost(entry.what, error);
    } catch {
      // A throwing listener must not stop the queue.
    }
    entry.settle({ delivered: false, error });
  }
}
