// The outbox's rows (read through Kysely and MikroORM's plugin) as the store's records.
import { unpackFloat64, unpackInt64 } from './number-codec.ts';
import type { MirrorState, OutboxStatus, StoredOutboxItem } from './types.ts';

/** A row of `outbox_item`, by property name. */
export interface OutboxRow {
  id: unknown;
  kind: string;
  payload?: unknown;
  blockId?: unknown;
  createdAtMs: unknown;
  attempts: unknown;
  nextAttemptAtMs: unknown;
  lastError?: string | null;
  parkedError?: string | null;
}

/** The columns of a batch block that an entry resolves. */
export interface BlockRow {
  epoch: number;
  names: unknown;
  steps: unknown;
  values: unknown;
  receivedAtMs?: unknown;
}

/** A row of the per-job counts of `outboxStatus`. */
export interface StatusCountRow {
  job: unknown;
  pending: unknown;
  oldest: unknown;
  parked: unknown;
}

/** The mirror's columns of the job row. */
export interface MirrorStateRow {
  mlflowExperimentId: string;
  mlflowRunId: string;
  mlflowArtifactUri: string;
  mlflowMetricKeys?: unknown;
}

/** A count or limit as a positive integer. */
export function outboxLimit(limit: number): number {
  return Math.max(1, Math.floor(limit));
}

/**
 * The entries of a peek, block references resolved through `readBlock`; stops after the entry whose
 * blocks bring the resolved points to `maxBlockPoints`.
 */
export async function peekItems(
  rows: readonly OutboxRow[],
  jobId: string,
  maxBlockPoints: number,
  readBlock: (blockId: number) => BlockRow | undefined | Promise<BlockRow | undefined>,
): Promise<StoredOutboxItem[]> {
  const items: StoredOutboxItem[] = [];
  let points = 0;
  for (const row of rows) {
    const item: StoredOutboxItem = {
      id: Number(row.id),
      jobId,
      kind: row.kind,
      payload: row.payload ?? null,
      createdAtMs: Number(row.createdAtMs),
      attempts: Number(row.attempts),
      nextAttemptAtMs: Number(row.nextAttemptAtMs),
      lastError: row.lastError ?? null,
      parkedError: row.parkedError ?? null,
    };
    if (row.blockId != null) {
      if (items.length > 0 && points >= maxBlockPoints) break;
      item.blockId = Number(row.blockId);
      const block = await readBlock(item.blockId);
      if (block) {
        const values = unpackFloat64(block.values as Uint8Array);
        item.block = {
          epoch: block.epoch,
          names: block.names as string[],
          steps: unpackInt64(block.steps as Uint8Array),
          values,
          receivedAtMs: block.receivedAtMs == null ? item.createdAtMs : Number(block.receivedAtMs),
        };
        points += values.length;
      }
    }
    items.push(item);
  }
  return items;
}

/** The statuses of the jobs of `counts`. */
export function outboxStatuses(counts: readonly StatusCountRow[]): [jobId: string, status: OutboxStatus][] {
  return counts.map((c) => [
    c.job as string,
    {
      pendingItems: Number(c.pending),
      oldestCreatedAtMs: Number(c.oldest),
      parkedError: (c.parked as string | null) ?? '',
    },
  ]);
}

/** The mirror's state of a job row. */
export function mirrorStateOf(row: MirrorStateRow): MirrorState {
  const state: MirrorState = {};
  if (row.mlflowExperimentId) state.experimentId = row.mlflowExperimentId;
  if (row.mlflowRunId) state.runId = row.mlflowRunId;
  if (row.mlflowArtifactUri) state.artifactUri = row.mlflowArtifactUri;
  if (row.mlflowMetricKeys) state.metricKeys = row.mlflowMetricKeys as Record<string, string>;
  return state;
}
