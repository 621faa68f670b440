// Verdicts on lost trainers (docs/verdicts.md): the lease every running job holds in the database,
// renewed by heartbeats and reports; the sweeper that ends the jobs whose lease ran out; the watch on
// trainer processes this sidecar can see; and revival, when the trainer's own session shows a sign of
// life after a verdict. Every change is one of the store's conditional UPDATEs, so the outcome is the
// database's, not this process' memory's: what is kept here (the watched processes, when a job's
// lease was last renewed) only saves work and is rebuilt at start.
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { lostItems, revivedItems } from '@training-callbacks/mlflow-bridge/core';
import {
  type JobRecord,
  type LeaseRenewal,
  LOST_CAUSES,
  type Store,
  StoreError,
  type TrainerRecord,
} from '@training-callbacks/store';
import type { LogFn } from '../logging.ts';
import type { SidecarMetrics } from '../metrics.ts';
import { isProcessAlive, readBootId, readProcessStat } from '../trainer-process.ts';
import { quote } from '../validation.ts';
import type { JobState, JobStates } from './job-states.ts';

/** How often a watched trainer process is looked at: a verdict within ~1 s of its death (5 s promised). */
export const PROCESS_POLL_MS = 1000;
/** Jobs a sweep ends at most (the next sweep takes the rest). */
const SWEEP_BATCH = 100;

/** Whether a job's end is a verdict on a lost trainer (revisable), not the trainer's own report. */
export function isLost(job: Pick<JobRecord, 'status' | 'endCause'>): boolean {
  return job.status === 'failed' && job.endCause !== undefined && LOST_CAUSES.includes(job.endCause);
}

/** What the verdicts need of the handler context (see context.ts). */
export interface VerdictsContext {
  readonly store: Store;
  readonly jobs: JobStates;
  readonly lease: { readonly leaseMs: number; readonly heartbeatIntervalMs: number };
  readonly notice: LogFn;
  readonly metrics: SidecarMetrics;
  /** Set when mirroring to MLflow: verdicts and revivals then queue their MLflow items. */
  readonly mirror: unknown;
  notify(): void;
}

export interface Verdicts {
  /**
   * A report's check: the job's state when it runs, after reviving it when it was lost and `sessionId`
   * is its trainer's; NOT_FOUND for an unknown job, FAILED_PRECONDITION for an ended one.
   */
  running(jobId: string, sessionId: string): Promise<JobState>;
  /**
   * A report's write (`write` runs the store call, which checks in its transaction that the job
   * runs). When the store refuses it as ended although this sidecar remembered the job running
   * (another sidecar ended it, or gave a verdict), the job is read again: a lost job whose own
   * session reports is revived and the write runs once more; otherwise the refusal stands (a lost
   * job's with the verdict named).
   */
  report<T>(jobId: string, sessionId: string, write: (state: JobState) => Promise<T>): Promise<T>;
  /**
   * An accepted report's sign of life, after its commit (a refused call writes nothing): renews the
   * lease, at most once per heartbeat interval per job (a batch stream's points do not each write).
   * Undefined when no renewal is due (most reports): nothing to wait for, not even a microtask.
   */
  alive(jobId: string): Promise<void> | undefined;
  /** Revives `state`'s job when it is lost and `sessionId` is its trainer's; the state as it is then. */
  reviveIfOwn(state: JobState, sessionId: string): Promise<JobState>;
  /** A heartbeat: renews the lease or revives the job (see Store.renewLease). */
  heartbeat(jobId: string, sessionId: string): Promise<LeaseRenewal>;
  /** Records a (re)begun job's lease, and watches its trainer when visible here; true when watched. */
  begun(job: JobRecord): boolean;
  /** Stops watching the job's trainer (the job ended as reported). */
  ended(jobId: string): void;
  /** One sweep now: ends the running jobs whose lease ran out. */
  sweep(nowMs?: number): Promise<JobRecord[]>;
  /** One look at every watched trainer now: verdicts on those that exited (before a shutdown drain). */
  checkProcesses(): Promise<JobRecord[]>;
  /**
   * Start-up: gives every running job a full lease (no trainer could renew one while no sidecar ran),
   * watches the visible trainers of running jobs, and starts the sweeper and the process poll.
   */
  start(): Promise<void>;
  /** Stops the timers and waits for a sweep or verdict under way (before the store closes). */
  stop(): Promise<void>;
}

/** A lost job's FAILED_PRECONDITION for a report from another session (or none). */
export function lostRefusal(job: JobRecord): RpcError {
  return new RpcError(
    Status.FAILED_PRECONDITION,
    `job ${quote(job.jobId)} was ended by the sidecar: ${job.endReason}. Only its trainer's own client ` +
      'session (the session_id of the BeginTraining that began it) revives it; call BeginTraining again to ' +
      'resume it from this process, or use a new job id',
  );
}

export function createVerdicts(ctx: VerdictsContext, options: { bootId?: string } = {}): Verdicts {
  const { store, jobs, lease, notice, metrics } = ctx;
  const bootId = options.bootId ?? readBootId();
  /** Trainer processes watched, by job id. */
  const watched = new Map<string, TrainerRecord>();
  /** When each job's lease was last renewed by this sidecar (reports renew at most once per interval). */
  const renewedAt = new Map<string, number>();
  const inFlight = new Map<string, Promise<JobRecord | undefined>>();
  let sweeper: NodeJS.Timeout | undefined;
  let poller: NodeJS.Timeout | undefined;
  let sweeping: Promise<JobRecord[]> | undefined;

  const noteRenewal = (jobId: string, nowMs: number) => {
    renewedAt.delete(jobId);
    renewedAt.set(jobId, nowMs);
    if (renewedAt.size > 10_000) renewedAt.delete(renewedAt.keys().next().value as string);
  };

  function onRevived(job: JobRecord, sessionId: string, via: string): void {
    metrics.jobRevived();
    ctx.notify();
    notice(
      `[${job.jobId}] revived: its trainer (session ${sessionId}) is back (${via}); the job runs again`,
      {
        event: 'job_revived',
        jobId: job.jobId,
        via,
      },
    );
  }

  function onLost(job: JobRecord): void {
    metrics.jobLost(job.endCause === 'process_exited' ? 'process_exited' : 'lease_expired');
    ctx.notify();
    notice(`[${job.jobId}] training failed │ ${job.endReason}`, {
      event: 'job_lost',
      jobId: job.jobId,
      cause: job.endCause,
      reason: job.endReason,
    });
  }

  async function renew(jobId: string, sessionId: string, via: string): Promise<LeaseRenewal> {
    const nowMs = Date.now();
    const renewal = await store.renewLease(jobId, {
      nowMs,
      leaseMs: lease.leaseMs,
      sessionId,
      ...(ctx.mirror ? { revive: (lostReason: string) => revivedItems(lostReason, nowMs) } : {}),
    });
    if (renewal.renewed) noteRenewal(jobId, nowMs);
    jobs.remember(renewal.job);
    if (renewal.revived) onRevived(renewal.job, sessionId, via);
    return renewal;
  }

  async function reviveIfOwn(state: JobState, sessionId: string): Promise<JobState> {
    if (sessionId === '' || !isLost(state.job) || state.job.trainer?.sessionId !== sessionId) return state;
    await renew(state.job.jobId, sessionId, 'a report');
    return jobs.existing(state.job.jobId);
  }

  async function running(jobId: string, sessionId: string): Promise<JobState> {
    const state = await reviveIfOwn(await jobs.existing(jobId), sessionId);
    if (isLost(state.job)) throw lostRefusal(state.job);
    return jobs.running(jobId);
  }

  async function report<T>(
    jobId: string,
    sessionId: string,
    write: (state: JobState) => Promise<T>,
  ): Promise<T> {
    // A job remembered as running needs no revival and no read: its state without a promise hop.
    const state = jobs.runningInMemory(jobId) ?? (await running(jobId, sessionId));
    try {
      return await write(state);
    } catch (error) {
      if (!(error instanceof StoreError && error.kind === 'ended')) throw error;
      const now = await jobs.refresh(jobId);
      if (!isLost(now.job)) throw error;
      if (sessionId === '' || now.job.trainer?.sessionId !== sessionId) throw lostRefusal(now.job);
      return write(await running(jobId, sessionId));
    }
  }

  function alive(jobId: string): Promise<void> | undefined {
    const last = renewedAt.get(jobId);
    if (last !== undefined && Date.now() - last < lease.heartbeatIntervalMs) return undefined;
    // The renewal reads the job back too: a verdict given meanwhile (by another sidecar) shows.
    return renew(jobId, '', 'a report').then(() => {});
  }

  function watch(jobId: string, trainer: TrainerRecord | undefined): boolean {
    watched.delete(jobId);
    if (!trainer || bootId === '' || trainer.bootId !== bootId || !trainer.pid) return false;
    if (!isProcessAlive(trainer.pid, trainer.startTimeTicks)) return false;
    watched.set(jobId, trainer);
    return true;
  }

  /** The verdict on a watched trainer seen gone (once per job, however many polls see it). */
  function processExited(
    jobId: string,
    trainer: TrainerRecord,
    seenAt: Date,
  ): Promise<JobRecord | undefined> {
    const pending = inFlight.get(jobId);
    if (pending) return pending;
    const stat = readProcessStat(trainer.pid);
    const how = stat && stat.startTimeTicks === trainer.startTimeTicks ? 'exited (a zombie now)' : 'exited';
    const host = trainer.hostname || 'this host';
    const reason = `lost: trainer process ${trainer.pid} on host ${host} ${how} (seen at ${seenAt.toISOString()})`;
    const verdict = (async () => {
      try {
        const job = await store.endLostJob({
          jobId,
          trainer,
          reason,
          endedAt: seenAt,
          ...(ctx.mirror ? { outbox: lostItems(reason, seenAt.getTime()) } : {}),
        });
        // Given, or no longer this trainer's job to give (ended, resumed elsewhere): either way done.
        if (watched.get(jobId) === trainer) watched.delete(jobId);
        if (job) {
          jobs.remember(job);
          onLost(job);
        }
        return job;
      } catch (error) {
        // The database refused (full, locked): the next poll tries again.
        notice(
          `[${jobId}] could not record that trainer process ${trainer.pid} exited: ${(error as Error).message}`,
          {
            event: 'verdict_failed',
            jobId,
          },
        );
        return undefined;
      } finally {
        inFlight.delete(jobId);
      }
    })();
    inFlight.set(jobId, verdict);
    return verdict;
  }

  async function checkProcesses(): Promise<JobRecord[]> {
    const seenAt = new Date();
    const verdicts: Promise<JobRecord | undefined>[] = [];
    for (const [jobId, trainer] of watched) {
      if (!isProcessAlive(trainer.pid, trainer.startTimeTicks))
        verdicts.push(processExited(jobId, trainer, seenAt));
    }
    return (await Promise.all(verdicts)).filter((job): job is JobRecord => job !== undefined);
  }

  async function sweep(nowMs = Date.now()): Promise<JobRecord[]> {
    sweeping ??= (async () => {
      try {
        const ended = await store.expireLeases(nowMs, SWEEP_BATCH, ({ lastSeenAtMs }) => {
          const reason =
            `lost: no heartbeat from the trainer for ${Math.floor((nowMs - lastSeenAtMs) / 1000)} s; ` +
            `last sign of life at ${new Date(lastSeenAtMs).toISOString()}`;
          return { reason, ...(ctx.mirror ? { outbox: lostItems(reason, lastSeenAtMs) } : {}) };
        });
        for (const job of ended) {
          jobs.remember(job);
          renewedAt.delete(job.jobId);
          onLost(job);
        }
        return ended;
      } finally {
        sweeping = undefined;
      }
    })();
    return sweeping;
  }

  const logFailure = (what: string) => (error: unknown) =>
    notice(`training-callbacks: ${what} failed: ${(error as Error)?.message ?? error}; trying again`, {
      event: 'verdict_failed',
    });

  return {
    running,
    report,
    alive,
    reviveIfOwn,
    async heartbeat(jobId, sessionId) {
      await jobs.existing(jobId);
      return renew(jobId, sessionId, 'a heartbeat');
    },
    begun(job) {
      noteRenewal(job.jobId, Date.now());
      return watch(job.jobId, job.trainer);
    },
    ended(jobId) {
      watched.delete(jobId);
      renewedAt.delete(jobId);
    },
    sweep,
    checkProcesses,
    async start() {
      await store.extendLeases(Date.now() + lease.leaseMs);
      for (const { jobId, trainer } of await store.runningTrainers(bootId)) watch(jobId, trainer);
      sweeper = setInterval(
        () => void sweep().catch(logFailure('the lease sweep')),
        Math.min(1000, lease.heartbeatIntervalMs),
      );
      poller = setInterval(
        () => void checkProcesses().catch(logFailure('the trainer process poll')),
        PROCESS_POLL_MS,
      );
      sweeper.unref();
      poller.unref();
    },
    async stop() {
      clearInterval(sweeper);
      clearInterval(poller);
      await Promise.allSettled([sweeping, ...inFlight.values()]);
    },
  };
}
