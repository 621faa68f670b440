// The MLflow run link and sync state, against a real MLflow server: the sidecar mirrors the job, and the
// dashboard links the run on the MLflow UI the sidecar mirrors to (its MLFLOW_TRACKING_URI).
import { TrainingCallbacks } from '@training-callbacks/client';
import { createClient } from '@training-callbacks/grpc-adapter';
import { type MlflowServer, startMlflowServer } from '@training-callbacks/mlflow-bridge/testing';
import { TrainingCallbacks as Service } from '@training-callbacks/proto';
import { type SidecarProcess, startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchChromium } from './testing/browser.ts';

const WAIT = { timeout: 60_000 };
let mlflow: MlflowServer;
let sidecar: SidecarProcess;
let browser: Awaited<ReturnType<typeof launchChromium>>;

beforeAll(async () => {
  mlflow = await startMlflowServer();
  sidecar = await startSidecarProcess({
    args: ['--quiet', '--mlflow-max-backoff', '0.5'],
    env: { MLFLOW_TRACKING_URI: mlflow.url },
  });
  browser = await launchChromium();
  // On a fresh clone the first start creates .venv/mlflow from PyPI (minutes; another project may be
  // creating it already, venv.sh then waits for it).
}, 900_000);

afterAll(async () => {
  await browser?.close();
  await sidecar?.[Symbol.asyncDispose]();
  await mlflow?.stop();
});

it('links the job to its MLflow run and shows the sync state', async () => {
  const cb = new TrainingCallbacks({
    address: sidecar.address,
    jobId: 'mirrored-1',
    taskType: 'image_classification',
  });
  try {
    await cb.onTrainBegin();
    await cb.onEpochEnd(0, { accuracy: 0.8, train_loss: 0.4 });
    await cb.onTrainEnd();
  } finally {
    cb.close();
  }
  const reader = createClient(Service, sidecar.address);
  let experimentId = '';
  let runId = '';
  try {
    await expect
      .poll(async () => {
        const { job } = await reader.getJob({ jobId: 'mirrored-1' });
        experimentId = job?.mlflowExperimentId ?? '';
        runId = job?.mlflowRunId ?? '';
        return job?.mlflowSync?.inSync === true && runId !== '';
      }, WAIT)
      .toBe(true);
  } finally {
    reader.close();
  }
  const runUrl = `${mlflow.url}/#/experiments/${experimentId}/runs/${runId}`;
  // The link's run is the real one.
  const run = await fetch(`${mlflow.url}/api/2.0/mlflow/runs/get?run_id=${runId}`);
  expect(run.status).toBe(200);

  const page = await browser.newPage();
  await page.goto(`http://${sidecar.httpAddress}/`);
  const row = page.locator('[data-testid=job-row][data-job-id="mirrored-1"]');
  await row.waitFor(WAIT);
  expect(await row.getByRole('link', { name: 'run' }).getAttribute('href')).toBe(runUrl);
  await expect.poll(() => row.getByTestId('job-sync').textContent(), WAIT).toBe('in sync');
  await row.getByRole('link', { name: 'mirrored-1' }).click();
  const link = page.getByTestId('mlflow-link');
  await link.waitFor(WAIT);
  expect(await link.getAttribute('href')).toBe(runUrl);
  await page.close();
});
