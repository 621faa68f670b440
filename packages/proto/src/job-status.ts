// How a job's status reads to people: the contract's JobStatus, except that a FAILED job the sidecar
// ended by its own verdict (no heartbeat for the lease, or the trainer's process exited) is "lost".
// The dashboard and the CLI both show and filter jobs by these names, so "lost" and what "failed"
// covers are defined here once.
import { enumNames } from './enum-names.ts';
import {
  EndCause,
  type Job,
  JobStatus,
  JobStatusSchema,
} from './gen/trainingcallbacks/v1/training_callbacks_pb.ts';

const statuses = enumNames<string>()(JobStatusSchema);

/** Whether the sidecar ended the job as lost (its trainer stopped heartbeating, or its process exited). */
export function isLost(job: Pick<Job, 'endCause'>): boolean {
  return job.endCause === EndCause.LEASE_EXPIRED || job.endCause === EndCause.PROCESS_EXITED;
}

/** `running`, `completed`, `failed`, `cancelled`, or `lost`; `unknown` for a status this build does not know. */
export function displayStatus(job: Pick<Job, 'status' | 'endCause'>): string {
  return isLost(job) ? 'lost' : (statuses.name(job.status) ?? 'unknown');
}

/** Every name `displayStatus` gives a known job, in the contract's order with `lost` last. */
export const DISPLAY_STATUSES: readonly string[] = [...statuses.names(), 'lost'];

/**
 * A display status name (case-insensitive) → the JobStatus to ask ListJobs for and which of its jobs
 * carry that name: `lost` is FAILED with a lost verdict, `failed` the other FAILED jobs — what a job's
 * badge says is what its filter finds. Undefined for a name that is none.
 */
export function statusFilter(
  name: string,
): { status: JobStatus; keep: (job: Pick<Job, 'status' | 'endCause'>) => boolean } | undefined {
  if (name.toLowerCase() === 'lost') return { status: JobStatus.FAILED, keep: isLost };
  const status = statuses.parse(name);
  if (status === undefined) return undefined;
  return { status, keep: (job) => job.status === status && !isLost(job) };
}
