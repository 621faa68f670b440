// The dashboard in a real Chromium against the real sidecar process (serving the built dashboard and
// the Connect protocol on its HTTP listener), fed by the TypeScript client over gRPC. Times are
// measured and printed, not asserted (see docs/benchmarks.md); waits have generous timeouts.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runTraining, TrainingCallbacks } from '@training-callbacks/client';
import { createClient } from '@training-callbacks/grpc-adapter';
import { TrainingCallbacks as Service, type TaskCatalog, TaskType } from '@training-callbacks/proto';
import { type SidecarProcess, startSidecarProcess } from '@training-callbacks/sidecar/testing';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './testing/browser.ts';

const WAIT = { timeout: 30_000 };
/** DASHBOARD_SCREENSHOTS=1 writes docs/dashboard-list.png and docs/dashboard-job.png. */
const SCREENSHOTS = process.env.DASHBOARD_SCREENSHOTS
  ? path.join(import.meta.dirname, '..', '..', '..', 'docs')
  : undefined;

let sidecar: SidecarProcess;
let browser: Browser & AsyncDisposable;
let base: string;
let detection: TaskCatalog;
const open: TrainingCallbacks[] = [];

function callbacks(jobId: string, extra: Partial<ConstructorParameters<typeof TrainingCallbacks>[0]> = {}) {
  const cb = new TrainingCallbacks({
    address: sidecar.address,
    jobId,
    taskType: 'object_detection',
    modelName: 'yolo11n',
    framework: 'ultralytics',
    deadlineMs: 30_000,
    // A failed report fails the test instead of being counted and dropped.
    strict: true,
    ...extra,
  });
  open.push(cb);
  return cb;
}

async function newPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('pageerror', (error) => console.error('page error:', error));
  page.on('console', (m) => console.log('page:', m.text()));
  return page;
}

const MAP50 = [0.12, 0.31, 0.52, 0.47, 0.5];

/** A detection job with five epochs whose best mAP50 is epoch 2 (0.52). */
async function detectionJob(jobId: string): Promise<TrainingCallbacks> {
  const cb = callbacks(jobId, {
    params: { lr0: '0.01', batch: '16' },
    trainingConfig: { epochs: 10, optimizer: 'SGD' },
    customMetrics: [{ name: 'gpu_util', label: 'GPU utilisation', format: 'percent', higherIsBetter: true }],
  });
  await cb.onTrainBegin();
  for (const [epoch, value] of MAP50.entries()) {
    for (let i = 0; i < 200; i++) {
      const step = epoch * 200 + i;
      cb.onBatchEnd(step, { loss: 2 / (1 + step / 100) + (i % 7) / 50, lr: 0.01 * (1 - step / 1000) });
    }
    await cb.onEpochEnd(epoch, {
      'metrics/mAP50(B)': value,
      'metrics/mAP50-95(B)': value / 2,
      'train/box_loss': 1 / (epoch + 1),
      gpu_util: 0.8,
    });
  }
  return cb;
}

beforeAll(async () => {
  sidecar = await startSidecarProcess({ args: ['--quiet'] });
  base = `http://${sidecar.httpAddress}`;
  browser = await launchChromium();
  const reader = createClient(Service, sidecar.address);
  try {
    detection = (await reader.getMetricCatalog({ taskType: TaskType.OBJECT_DETECTION })).catalogs[0]!;
  } finally {
    reader.close();
  }
  if (SCREENSHOTS) await mkdir(SCREENSHOTS, { recursive: true });
});

afterAll(async () => {
  // Each step on its own: a failing one must not leave the sidecar or Chromium running.
  for (const cb of open) {
    try {
      cb.close();
    } catch {}
  }
  await browser?.close().catch(() => {});
  await sidecar?.[Symbol.asyncDispose]();
});

const label = (name: string) => detection.standardMetrics.find((d) => d.name === name)!.label;

describe('the dashboard in Chromium', () => {
  it('serves the app with its content types and caching headers, and a SPA fallback', async () => {
    const index = await fetch(`${base}/jobs/some-job`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const html = await index.text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const asset = await fetch(`${base}${script}`);
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await fetch(`${base}/assets/missing-0000.js`)).status).toBe(404);
  });

  it('lists jobs as they appear, live', async () => {
    const page = await newPage();
    await page.goto(base);
    await page.getByTestId('watch-state').getByText('live').waitFor(WAIT);
    const cb = await detectionJob('live-list-1');
    const row = page.locator('[data-testid=job-row][data-job-id="live-list-1"]');
    await row.waitFor(WAIT);
    await expect.poll(() => row.getByTestId('job-primary').textContent(), WAIT).toContain('52.00%');
    expect(await row.getByTestId('job-primary').textContent()).toContain(label('mAP50'));
    expect(await row.getByTestId('job-best-epoch').textContent()).toBe('2');
    expect(await row.getByTestId('job-status').textContent()).toBe('running');
    await cb.onTrainEnd();
    await expect.poll(() => row.getByTestId('job-status').textContent(), WAIT).toBe('completed');
    // Filters and search.
    await page.getByTestId('filter-status').selectOption('running');
    await row.waitFor({ state: 'detached', ...WAIT });
    await page.getByTestId('filter-status').selectOption('');
    await page.getByTestId('search').fill('no-such-job');
    await row.waitFor({ state: 'detached', ...WAIT });
    await page.getByTestId('search').fill('live-list');
    await row.waitFor(WAIT);
    await page.close();
  });

  it('shows a job with its formatted primary, the best-epoch marker and the catalog labels; a new epoch arrives live', async () => {
    const cb = await detectionJob('job-page-1');
    const page = await newPage();
    await page.goto(`${base}/jobs/job-page-1`);
    await page.getByTestId('watch-state').getByText('live').waitFor(WAIT);
    await expect.poll(() => page.getByTestId('primary-value').textContent(), WAIT).toBe('52.00%');
    expect(await page.getByTestId('best-epoch').textContent()).toContain('best at epoch 2');
    expect(await page.getByTestId('primary').textContent()).toContain(label('mAP50'));
    const primaryChart = page.locator('[data-testid=epoch-chart][data-name=mAP50]');
    await expect.poll(() => primaryChart.getAttribute('data-best-epoch'), WAIT).toBe('2');
    expect(await primaryChart.locator('figcaption').textContent()).toContain('best epoch 2');
    for (const name of ['mAP50', 'mAP50-95', 'train_box_loss']) {
      const row = page.locator(
        `[data-testid=standard-metrics] [data-testid=metric-row][data-name="${name}"]`,
      );
      expect(await row.locator('.metric-label').textContent()).toBe(label(name));
    }
    // Percent metrics as percentages, float metrics with four decimals.
    const mAP5095 = page.locator('[data-testid=metric-row][data-name="mAP50-95"] .metric-latest');
    expect(await mAP5095.textContent()).toBe('25.00%');
    const boxLoss = page.locator('[data-testid=metric-row][data-name="train_box_loss"] .metric-latest');
    expect(await boxLoss.textContent()).toBe('0.2000');
    // Batch charts over steps, under the catalog's labels (Ultralytics' "loss" is the train loss).
    const batchLoss = page.locator('[data-testid=batch-chart][data-name=train_loss]');
    await expect.poll(() => batchLoss.getAttribute('data-total'), WAIT).toBe('1000');
    expect(await batchLoss.locator('figcaption').textContent()).toContain(label('train_loss'));
    expect(await page.getByTestId('params').textContent()).toContain('lr0');
    expect(await page.getByTestId('training-config').textContent()).toContain('"optimizer": "SGD"');
    if (SCREENSHOTS)
      await page.screenshot({ path: path.join(SCREENSHOTS, 'dashboard-job.png'), fullPage: true });

    // A new epoch, a new best: on the page without a reload.
    await page.evaluate(() => Object.assign(window, { notReloaded: true }));
    await cb.onEpochEnd(5, { 'metrics/mAP50(B)': 0.61, 'train/box_loss': 0.1 });
    const acknowledged = performance.now();
    await page.waitForFunction(
      () =>
        document.querySelector('[data-testid=epoch-chart][data-name=mAP50]')?.getAttribute('data-points') ===
        '6',
      undefined,
      { ...WAIT, polling: 'raf' },
    );
    const latencyMs = performance.now() - acknowledged;
    console.log(`new epoch: acknowledged → on the chart in ${latencyMs.toFixed(0)} ms`);
    expect(await page.getByTestId('primary-value').textContent()).toBe('61.00%');
    expect(await page.getByTestId('best-epoch').textContent()).toContain('best at epoch 5');
    expect(await primaryChart.getAttribute('data-best-epoch')).toBe('5');
    expect(await page.evaluate(() => (window as { notReloaded?: boolean }).notReloaded)).toBe(true);

    // New batch points: the batch chart reads its series again (at most every 250 ms).
    for (let step = 1200; step < 1300; step++) cb.onBatchEnd(step, { loss: 0.3, lr: 0.001 }, { epoch: 5 });
    await cb.flush();
    const flushed = performance.now();
    await page.waitForFunction(
      () =>
        document
          .querySelector('[data-testid=batch-chart][data-name=train_loss]')
          ?.getAttribute('data-total') === '1100',
      undefined,
      { ...WAIT, polling: 'raf' },
    );
    console.log(
      `new batch points: acknowledged → on the chart in ${(performance.now() - flushed).toFixed(0)} ms`,
    );

    // Custom metrics: collapsed until opened, then with their own label and format.
    const custom = page.getByTestId('custom-metrics');
    expect(await custom.getByTestId('custom-table').count()).toBe(0);
    await custom.locator('summary').click();
    const gpu = custom.locator('[data-testid=metric-row][data-name=gpu_util]');
    await gpu.waitFor(WAIT);
    expect(await gpu.locator('.metric-label').textContent()).toBe('GPU utilisation');
    expect(await gpu.locator('.metric-latest').textContent()).toBe('—'); // epoch 5 did not report it
    expect(await custom.locator('[data-testid=epoch-chart][data-name=gpu_util]').count()).toBe(1);
    await page.close();
  });

  it('shows why a job failed, in the list and on its page', async () => {
    const cb = callbacks('failed-1');
    await expect(
      runTraining(cb, async (c) => {
        await c.onEpochEnd(0, { 'metrics/mAP50(B)': 0.2 });
        throw new Error('CUDA out of memory: tried to allocate 2.00 GiB');
      }),
    ).rejects.toThrow('CUDA out of memory');
    const page = await newPage();
    await page.goto(base);
    const row = page.locator('[data-testid=job-row][data-job-id="failed-1"]');
    await row.waitFor(WAIT);
    expect(await row.getByTestId('job-status').textContent()).toBe('failed');
    expect(await row.getByTestId('job-reason').textContent()).toContain('CUDA out of memory');
    await row.getByRole('link', { name: 'failed-1' }).click();
    await page.getByTestId('failure-reason').waitFor(WAIT);
    expect(await page.getByTestId('failure-reason').textContent()).toContain(
      'CUDA out of memory: tried to allocate 2.00 GiB',
    );
    await page.close();
  });

  it('shows a lost job (the sidecar’s verdict) apart from a failed one, with the verdict as its reason', async () => {
    // A sidecar of its own with the shortest lease; a trainer that begins, reports once and goes silent.
    await using lossy = await startSidecarProcess({ args: ['--quiet', '--trainer-lease', '1'] });
    const page = await newPage();
    await page.goto(`http://${lossy.httpAddress}/`);
    await page.getByTestId('watch-state').getByText('live').waitFor(WAIT);
    const rpc = createClient(Service, lossy.address);
    try {
      await rpc.beginTraining({ jobId: 'lost-1', taskType: TaskType.OBJECT_DETECTION, modelName: 'yolo11n' });
      await rpc.endEpoch({ jobId: 'lost-1', epoch: 0, metrics: { 'metrics/mAP50(B)': 0.3 } });
    } finally {
      rpc.close();
    }
    const row = page.locator('[data-testid=job-row][data-job-id="lost-1"]');
    await row.waitFor(WAIT);
    // The verdict arrives on the open page (WatchJobs), without a reload.
    await expect.poll(() => row.getByTestId('job-status').textContent(), WAIT).toBe('lost');
    expect(await row.getByTestId('job-reason').textContent()).toMatch(/^lost: /);
    if (SCREENSHOTS) {
      // The list's screenshot: this sidecar's lost job next to a live, a completed and a failed one.
      const live = new TrainingCallbacks({
        address: lossy.address,
        jobId: 'resnet50-live',
        taskType: 'image_classification',
        modelName: 'resnet50',
        framework: 'timm',
        strict: true,
      });
      await live.onTrainBegin();
      for (const [epoch, top1] of [71.2, 74.9, 76.3].entries())
        await live.onEpochEnd(epoch, { eval_top1: top1 });
      const done = new TrainingCallbacks({
        address: lossy.address,
        jobId: 'yolo11s-coco',
        taskType: 'object_detection',
        modelName: 'yolo11s',
        framework: 'ultralytics',
        strict: true,
      });
      await done.onTrainBegin();
      await done.onEpochEnd(0, { 'metrics/mAP50(B)': 0.613 });
      await done.onTrainEnd();
      done.close();
      const crashed = new TrainingCallbacks({
        address: lossy.address,
        jobId: 'segformer-ade',
        taskType: 'semantic_segmentation',
        modelName: 'segformer-b0',
        framework: 'transformers',
        strict: true,
      });
      await crashed.onTrainBegin();
      await crashed.onEpochEnd(0, { eval_mean_iou: 0.281 });
      await crashed.onTrainEnd({}, { error: new Error('CUDA out of memory: tried to allocate 2.00 GiB') });
      crashed.close();
      await page.locator('[data-testid=job-row]').nth(3).waitFor(WAIT);
      const table = (await page.getByTestId('job-table').boundingBox())!;
      await page.screenshot({
        path: path.join(SCREENSHOTS, 'dashboard-list.png'),
        clip: { x: 0, y: 0, width: 1400, height: table.y + table.height + 24 },
      });
      live.close();
    }
    await page.getByTestId('filter-status').selectOption('lost');
    await row.waitFor(WAIT);
    await row.getByRole('link', { name: 'lost-1' }).click();
    const reason = page.getByTestId('failure-reason');
    await reason.waitFor(WAIT);
    expect(await reason.locator('h2').textContent()).toBe('Why the sidecar declared it lost');
    expect(await reason.locator('pre').textContent()).toMatch(/^lost: /);
    expect(await page.getByTestId('job-status').textContent()).toBe('lost');
    await page.close();
  });

  it('opens a job whose id needs escaping in a URL, from the list and by its address', async () => {
    const jobId = 'exp/7 #1 ä?x=%2F';
    const cb = callbacks(jobId);
    await cb.onTrainBegin();
    await cb.onEpochEnd(0, { 'metrics/mAP50(B)': 0.4 });
    const page = await newPage();
    await page.goto(`${base}/?q=${encodeURIComponent('exp/7')}`);
    await page.getByRole('link', { name: jobId, exact: true }).click();
    await expect.poll(() => page.getByTestId('primary-value').textContent(), WAIT).toBe('40.00%');
    expect(await page.getByTestId('job-id').textContent()).toBe(jobId);
    await page.reload();
    await expect.poll(() => page.getByTestId('job-id').textContent(), WAIT).toBe(jobId);
    await page.close();
  });

  it('downloads an artifact from the job page', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tc-dashboard-'));
    try {
      const file = path.join(dir, 'best.pt');
      await writeFile(file, 'weights of the best epoch\n');
      const cb = callbacks('with-artifact');
      await cb.onTrainBegin();
      // The sidecar has no artifact root here: the client uploads it.
      await cb.logArtifact(file, 'checkpoints');
      const page = await newPage();
      await page.goto(`${base}/jobs/with-artifact`);
      const link = page.getByTestId('artifact-link');
      await link.waitFor(WAIT);
      expect(await link.textContent()).toBe('checkpoints/best.pt');
      const [download] = await Promise.all([page.waitForEvent('download', WAIT), link.click()]);
      expect(download.suggestedFilename()).toBe('best.pt');
      const saved = path.join(dir, 'downloaded');
      await download.saveAs(saved);
      expect(await readFile(saved, 'utf8')).toBe('weights of the best epoch\n');
      await page.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('asks for a token when the sidecar needs one, and a read token is enough', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tc-dashboard-'));
    const read = 'r'.repeat(32);
    try {
      await writeFile(path.join(dir, 'tokens'), `read ${read}\nwrite ${'w'.repeat(32)}\n`);
      await using guarded = await startSidecarProcess({
        args: ['--quiet', '--auth-token-file', path.join(dir, 'tokens')],
      });
      const rpc = createClient(Service, guarded.address);
      try {
        await rpc.beginTraining(
          { jobId: 'guarded-1', taskType: TaskType.OBJECT_DETECTION },
          { metadata: { authorization: `Bearer ${'w'.repeat(32)}` } },
        );
      } finally {
        rpc.close();
      }
      const page = await newPage();
      await page.goto(`http://${guarded.httpAddress}/`);
      const form = page.locator('form.token');
      await form.waitFor(WAIT);
      expect(await form.textContent()).toContain('none was given');
      await form.locator('input').fill(read);
      await form.locator('button').click();
      await page.locator('[data-testid=job-row][data-job-id="guarded-1"]').waitFor(WAIT);
      expect(await page.locator('form.token').count()).toBe(0);
      await page.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reconnects after the sidecar restarts and goes on from where it was', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'tc-dashboard-'));
    try {
      await using first = await startSidecarProcess({ dataDir, args: ['--quiet'] });
      const httpAddress = first.httpAddress!;
      const rpc = createClient(Service, first.address);
      try {
        await rpc.beginTraining({ jobId: 'restarted-1', taskType: TaskType.OBJECT_DETECTION });
        await rpc.endEpoch({ jobId: 'restarted-1', epoch: 0, metrics: { 'metrics/mAP50(B)': 0.2 } });
      } finally {
        rpc.close();
      }
      const page = await newPage();
      await page.goto(`http://${httpAddress}/jobs/restarted-1`);
      await expect.poll(() => page.getByTestId('primary-value').textContent(), WAIT).toBe('20.00%');
      await first.stop();
      await expect.poll(() => page.getByTestId('watch-state').textContent(), WAIT).toBe('reconnecting…');
      // The same database and HTTP address: the page's stream resumes after the last seq it received.
      await using second = await startSidecarProcess({ dataDir, args: ['--quiet', '--http', httpAddress] });
      const again = createClient(Service, second.address);
      try {
        await again.endEpoch({ jobId: 'restarted-1', epoch: 1, metrics: { 'metrics/mAP50(B)': 0.45 } });
      } finally {
        again.close();
      }
      await expect.poll(() => page.getByTestId('primary-value').textContent(), WAIT).toBe('45.00%');
      expect(await page.getByTestId('watch-state').textContent()).toBe('● live');
      expect(await page.getByTestId('epoch-count').textContent()).toBe('2');
      await page.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('compares jobs on their primary and shared metrics', async () => {
    await detectionJob('compare-a');
    const b = callbacks('compare-b');
    await b.onTrainBegin();
    await b.onEpochEnd(0, { 'metrics/mAP50(B)': 0.4, 'train/box_loss': 0.9 });
    const page = await newPage();
    // Picked in the list: the compare button opens /compare with both.
    await page.goto(`${base}/?q=compare-`);
    for (const jobId of ['compare-a', 'compare-b']) {
      const row = page.locator(`[data-testid=job-row][data-job-id="${jobId}"]`);
      await row.waitFor(WAIT);
      await row.locator('input[type=checkbox]').check();
    }
    await page.getByTestId('compare').click();
    await page.getByTestId('compare-table').waitFor(WAIT);
    expect(new URL(page.url()).search).toBe('?job=compare-a&job=compare-b');
    expect(await page.getByTestId('compare-row').count()).toBe(2);
    expect(await page.getByTestId('compare-table').textContent()).toContain('52.00%');
    const charts = await page.getByTestId('compare-chart').evaluateAll((e) => e.map((x) => x.dataset.name));
    // Shared: mAP50 (the primary, first) and train_box_loss; not gpu_util (compare-a only).
    expect(charts).toEqual(['mAP50', 'train_box_loss']);
    await page.close();
  });

  it.each([
    { metrics: 4, steps: 250_000 },
    { metrics: 1, steps: 1_000_000 },
  ])(
    'renders the charts of a job with 1 M batch points ($metrics × $steps) quickly and stays responsive',
    async ({ metrics: width, steps }) => {
      const jobId = `million-points-${width}`;
      const cb = callbacks(jobId);
      await cb.onTrainBegin();
      const all = { loss: 0, lr: 1e-3, box_loss: 0, cls_loss: 0 };
      const metrics: Record<string, number> = Object.fromEntries(Object.entries(all).slice(0, width));
      for (let step = 0; step < steps; step++) {
        metrics.loss = 1 / (step + 1) + (step % 100) / 1000;
        if (width > 1) {
          metrics.box_loss = Math.sin(step / 5000);
          metrics.cls_loss = (step % 1000) / 1000;
        }
        cb.onBatchEnd(step, metrics);
        if (step % 256 === 255) await new Promise((resolve) => setImmediate(resolve));
      }
      await cb.flush();
      expect(cb.stats()).toMatchObject({ pointsAccepted: 1_000_000, pointsDropped: 0 });

      const page = await newPage();
      // Long tasks (main thread busy ≥ 50 ms) from the first script on.
      await page.addInitScript(() => {
        const longTasks: number[] = [];
        Object.assign(window, { longTasks });
        new PerformanceObserver((list) => {
          for (const entry of list.getEntries()) longTasks.push(entry.duration);
        }).observe({ type: 'longtask', buffered: true });
      });
      await page.goto(`${base}/jobs/${jobId}`);
      await page.waitForFunction(
        () => performance.getEntriesByName('tc:batch-charts-drawn').length > 0,
        undefined,
        {
          timeout: 60_000,
        },
      );
      const charts = page.getByTestId('batch-chart');
      expect(await charts.count()).toBe(width);
      for (const chart of await charts.all()) {
        expect(await chart.getAttribute('data-total')).toBe(String(steps));
        const points = Number(await chart.getAttribute('data-points'));
        expect(points).toBeGreaterThan(0);
        expect(points).toBeLessThanOrEqual(2000);
      }
      const measured = await page.evaluate(async () => {
        const drawn = performance.getEntriesByName('tc:batch-charts-drawn')[0]!.startTime;
        const navigation = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
        const series = performance
          .getEntriesByType('resource')
          .filter((e) => e.name.endsWith('/GetMetricSeries')) as PerformanceResourceTiming[];
        // Responsiveness: how long a click on the page waits for the main thread right now.
        const started = performance.now();
        const clickDelay = await new Promise<number>((resolve) => {
          const button = document.querySelector<HTMLElement>('[data-testid=custom-metrics] summary, nav a');
          document.addEventListener(
            'click',
            (e) => {
              e.preventDefault();
              e.stopPropagation();
            },
            { once: true, capture: true },
          );
          requestAnimationFrame(() => {
            button?.click();
            setTimeout(() => resolve(performance.now() - started), 0);
          });
        });
        const longTasks = (window as unknown as { longTasks: number[] }).longTasks;
        console.log(
          (performance.getEntriesByType('resource') as PerformanceResourceTiming[])
            .map((e) => `${e.name.split('/').pop()} ${e.startTime.toFixed(0)}→${e.responseEnd.toFixed(0)}`)
            .join(', '),
        );
        return {
          drawnMs: drawn,
          domContentLoadedMs: navigation.domContentLoadedEventEnd,
          firstSeriesStartMs: Math.min(...series.map((s) => s.startTime)),
          lastSeriesEndMs: Math.max(...series.map((s) => s.responseEnd)),
          seriesRequests: series.length,
          longestTaskMs: Math.max(0, ...longTasks),
          longTasks: longTasks.length,
          clickDelayMs: clickDelay,
        };
      });
      console.log(
        `1 M batch points (${width} × ${steps}): charts drawn ${measured.drawnMs.toFixed(0)} ms after navigation start ` +
          `(DOMContentLoaded ${measured.domContentLoadedMs.toFixed(0)} ms; GetMetricSeries ×${measured.seriesRequests} ` +
          `from ${measured.firstSeriesStartMs.toFixed(0)} to ${measured.lastSeriesEndMs.toFixed(0)} ms, ` +
          `drawn ${(measured.drawnMs - measured.lastSeriesEndMs).toFixed(0)} ms after the last answer); ` +
          `longest main-thread task ${measured.longestTaskMs.toFixed(0)} ms (${measured.longTasks} ≥ 50 ms); ` +
          `click answered in ${measured.clickDelayMs.toFixed(1)} ms`,
      );
      if (width === 1) return page.close();
      // Zoom: drag across 2 pixels (≈ 1000 steps) of the first chart; that range is asked again, at full resolution.
      const over = charts.first().locator('.u-over');
      const box = (await over.boundingBox())!;
      await page.mouse.move(box.x + box.width * 0.4, box.y + box.height / 2);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.4 + 2, box.y + box.height / 2, { steps: 2 });
      await page.mouse.up();
      await expect.poll(() => charts.first().locator('figcaption').textContent(), WAIT).toContain('zoomed');
      expect(await charts.first().locator('figcaption').textContent()).toContain('full resolution');
      await page.close();
    },
  );
});
