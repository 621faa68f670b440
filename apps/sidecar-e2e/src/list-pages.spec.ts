// Everything accepted can be read back: every list RPC pages, and pages stay within the message
// limit. Against the real sidecar process with the smallest limit it accepts (64 KiB).

import { createHash } from 'node:crypto';
import { createClient, type ServiceClient } from '@training-callbacks/grpc-adapter';
import { TaskType, TrainingCallbacks } from '@training-callbacks/proto';
import { type SidecarProcess, startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

type Methods = typeof TrainingCallbacks extends { method: infer M } ? M : never;

const LIMIT = 65_536;
let sidecar: SidecarProcess;
let client: ServiceClient<Methods>;

beforeAll(async () => {
  sidecar = await startSidecarProcess({ args: ['--quiet', '--max-message-bytes', String(LIMIT)] });
  client = createClient(TrainingCallbacks, sidecar.address);
});

afterAll(async () => {
  client?.close();
  await sidecar?.[Symbol.asyncDispose]();
});

/** Follows next_page_token to the end; returns the pages. */
async function allPages<R extends { nextPageToken: string }>(
  page: (token: string) => Promise<R>,
): Promise<R[]> {
  const pages: R[] = [];
  let token = '';
  do {
    const response = await page(token);
    pages.push(response);
    token = response.nextPageToken;
    expect(pages.length, 'paging does not end').toBeLessThan(10_000);
  } while (token);
  return pages;
}

describe('list pages stay within --max-message-bytes and cover everything once', () => {
  it('ListJobs: three valid jobs with large params', async () => {
    for (let j = 0; j < 3; j++) {
      const params = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`p${i}`, `${j}`.repeat(6000)]));
      await client.beginTraining({
        jobId: `big-params-${j}`,
        taskType: TaskType.IMAGE_CLASSIFICATION,
        params,
      });
    }
    const pages = await allPages((pageToken) => client.listJobs({ pageToken }));
    expect(pages.length).toBeGreaterThan(1);
    const ids = pages.flatMap((p) => p.jobs.map((j) => j.jobId)).filter((id) => id.startsWith('big-params-'));
    expect(ids).toEqual(['big-params-2', 'big-params-1', 'big-params-0']);
  });

  it('ListBatchMetrics: 200 000 points, every one exactly once, in step order', async () => {
    const jobId = 'many-points';
    await client.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
    const rows = 100_000;
    const messages = [];
    for (let from = 0; from < rows; from += 2000) {
      const steps = Array.from({ length: 2000 }, (_, i) => BigInt(from + i));
      messages.push({
        jobId,
        blocks: [
          {
            epoch: Math.floor(from / 10_000),
            names: ['loss', 'grad_norm'],
            steps,
            values: steps.flatMap((s) => [Number(s), -Number(s)]),
          },
        ],
      });
    }
    expect((await client.reportBatchMetrics(messages)).acceptedPoints).toBe(200_000n);
    const pages = await allPages((pageToken) => client.listBatchMetrics({ jobId, pageToken }));
    expect(pages.length).toBeGreaterThan(10);
    const seen: bigint[] = [];
    for (const page of pages) {
      for (const block of page.blocks) {
        block.steps.forEach((step, r) => {
          expect(block.values[r * 2]).toBe(Number(step));
          seen.push(step);
        });
      }
    }
    expect(seen).toEqual(Array.from({ length: rows }, (_, i) => BigInt(i)));
    // Small pages by count, of one epoch.
    const epoch3 = await allPages((pageToken) =>
      client.listBatchMetrics({ jobId, epoch: 3, pageSize: 999, pageToken }),
    );
    const steps3 = epoch3.flatMap((p) => p.blocks.flatMap((b) => b.steps));
    expect(steps3).toEqual(Array.from({ length: 10_000 }, (_, i) => BigInt(30_000 + i)));
    expect(
      Math.max(...epoch3.map((p) => p.blocks.reduce((n, b) => n + b.values.length, 0))),
    ).toBeLessThanOrEqual(999);
  });

  it('ListBatchMetrics: small pages over many small blocks (a page of n points reads n + 1 blocks)', async () => {
    const jobId = 'small-blocks';
    await client.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
    // 300 blocks of one point, then 20 blocks of 2 rows × 3 names (a row wider than a page of 1 or 2).
    const blocks = [
      ...Array.from({ length: 300 }, (_, i) => ({
        epoch: 0,
        names: ['loss'],
        steps: [BigInt(i)],
        values: [i],
      })),
      ...Array.from({ length: 20 }, (_, i) => ({
        epoch: 1,
        names: ['loss', 'lr', 'grad_norm'],
        steps: [BigInt(300 + 2 * i), BigInt(301 + 2 * i)],
        values: [1, 2, 3, 4, 5, 6].map((v) => v + i),
      })),
    ];
    expect((await client.reportBatchMetrics([{ jobId, blocks }])).acceptedPoints).toBe(420n);
    const expected = Array.from({ length: 340 }, (_, i) => BigInt(i));
    for (const pageSize of [1, 2, 7, 256, 257]) {
      const pages = await allPages((pageToken) => client.listBatchMetrics({ jobId, pageSize, pageToken }));
      const steps = pages.flatMap((p) => p.blocks.flatMap((b) => b.steps));
      expect(steps, `page_size ${pageSize}`).toEqual(expected);
      // Pages before the last are full up to a row's width, or one row wider than the page.
      for (const page of pages.slice(0, -1)) {
        const points = page.blocks.reduce((n, b) => n + b.values.length, 0);
        if (points > pageSize) expect(page.blocks.map((b) => b.steps.length)).toEqual([1]);
        else expect(points, `page_size ${pageSize}`).toBeGreaterThan(pageSize - 3);
      }
    }
    // The dashboard's read of a job's batch names (stored normalised): one point and where to go on.
    const first = await client.listBatchMetrics({ jobId, pageSize: 1 });
    expect(first.blocks).toEqual([
      expect.objectContaining({ names: ['train_loss'], steps: [0n], values: [0] }),
    ]);
    const second = await client.listBatchMetrics({ jobId, pageSize: 1, pageToken: first.nextPageToken });
    expect(second.blocks.map((b) => b.steps)).toEqual([[1n]]);
  });

  it('ListEpochs: epochs with many metrics, over several pages', async () => {
    const jobId = 'many-epochs';
    await client.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
    for (let e = 0; e < 60; e++) {
      const metrics = Object.fromEntries(
        Array.from({ length: 200 }, (_, i) => [`custom_metric_${i}`, e + i / 1000]),
      );
      await client.endEpoch({ jobId, epoch: e, metrics });
    }
    const pages = await allPages((pageToken) => client.listEpochs({ jobId, pageToken }));
    expect(pages.length).toBeGreaterThan(1);
    expect(pages.flatMap((p) => p.epochs.map((e) => e.epoch))).toEqual(
      Array.from({ length: 60 }, (_, e) => e),
    );
    const byTwo = await allPages((pageToken) => client.listEpochs({ jobId, pageSize: 7, pageToken }));
    expect(byTwo.map((p) => p.epochs.length).slice(0, 3)).toEqual([7, 7, 7]);
  });

  it('ListArtifacts: in logging order, page by page', async () => {
    const jobId = 'artifact-order';
    await client.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
    const names = ['z-last-by-name.txt', 'b.txt', 'a-first-by-name.txt', 'm/inner.txt'];
    for (const artifactPath of names) {
      const data = Buffer.from(artifactPath);
      const sha256 = createHash('sha256').update(data).digest('hex');
      await client.uploadArtifact([
        { part: { case: 'header', value: { jobId, artifactPath, sizeBytes: BigInt(data.length), sha256 } } },
        { part: { case: 'chunk', value: data } },
      ]);
    }
    const pages = await allPages((pageToken) => client.listArtifacts({ jobId, pageSize: 3, pageToken }));
    expect(pages.map((p) => p.artifacts.length)).toEqual([3, 1]);
    expect(pages.flatMap((p) => p.artifacts.map((a) => a.artifactPath))).toEqual(names);
  });

  it('refuses a page token it did not issue', async () => {
    await expect(client.listEpochs({ jobId: 'many-epochs', pageToken: 'bm90IG1pbmU' })).rejects.toMatchObject(
      {
        message: expect.stringMatching(/page_token is not one this sidecar issued/),
      },
    );
  });
});
