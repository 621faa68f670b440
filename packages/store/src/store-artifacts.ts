// Artifacts: recording a job's files, listing and reading them.
import { Artifact } from './entities.ts';
import { INSERT_CHUNK_ROWS, outboxRows, type StoreContext } from './store-context.ts';
import type { ArtifactPage, ArtifactRecord, ListedArtifact, OutboxWrite, StoredArtifact } from './types.ts';

function toArtifactRecord(row: Artifact): ArtifactRecord {
  return {
    artifactPath: row.artifactPath,
    sizeBytes: row.sizeBytes,
    sha256: row.sha256,
    sourcePath: row.sourcePath,
    storedPath: row.storedPath,
    loggedAt: row.loggedAt,
  };
}

export async function putArtifacts(
  ctx: StoreContext,
  jobId: string,
  artifacts: readonly ArtifactRecord[],
  options: OutboxWrite = {},
): Promise<void> {
  if (artifacts.length === 0) return;
  const rows = artifacts.map((artifact) => ({
    job: jobId,
    artifactPath: artifact.artifactPath,
    sizeBytes: artifact.sizeBytes,
    sha256: artifact.sha256,
    sourcePath: artifact.sourcePath,
    storedPath: artifact.storedPath,
    loggedAt: artifact.loggedAt,
  }));
  await ctx.transaction(jobId, async (trx) => {
    await ctx.lockRunningJob(trx, jobId);
    for (let i = 0; i < rows.length; i += INSERT_CHUNK_ROWS) {
      const stored = await trx
        .insertInto('Artifact')
        .values(rows.slice(i, i + INSERT_CHUNK_ROWS))
        .onConflict((oc) =>
          oc.columns(['job', 'artifactPath']).doUpdateSet((eb) => ({
            sizeBytes: eb.ref('excluded.sizeBytes'),
            sha256: eb.ref('excluded.sha256'),
            sourcePath: eb.ref('excluded.sourcePath'),
            storedPath: eb.ref('excluded.storedPath'),
            loggedAt: eb.ref('excluded.loggedAt'),
          })),
        )
        .returning('id')
        .execute();
      ctx.appendChanges(
        trx,
        jobId,
        'artifact',
        stored.map((r) => Number(r.id)),
      );
    }
    if (options.outbox?.length) {
      await trx
        .insertInto('OutboxItem')
        .values(outboxRows(jobId, options.outbox, Date.now()))
        .execute();
    }
  });
}

export async function listArtifacts(
  ctx: StoreContext,
  jobId: string,
  page: ArtifactPage = {},
): Promise<ListedArtifact[]> {
  const rows = await ctx.em().find(
    Artifact,
    {
      job: jobId,
      ...(page.afterId !== undefined && { id: { $gt: page.afterId } }),
      ...(page.artifactPath !== undefined && { artifactPath: page.artifactPath }),
    },
    {
      // Logging order: the id of the first logging (a re-logged path keeps its place).
      orderBy: { id: 'asc' },
      disableIdentityMap: true,
      ...(page.limit !== undefined && { limit: Math.max(1, Math.floor(page.limit)) }),
    },
  );
  return rows.map((row) => ({ ...toArtifactRecord(row), id: row.id }));
}

export async function getArtifact(ctx: StoreContext, id: number): Promise<StoredArtifact | undefined> {
  const row = await ctx.em().findOne(Artifact, { id }, { disableIdentityMap: true });
  if (!row) return undefined;
  return { id, jobId: row.job.jobId, ...toArtifactRecord(row) };
}
