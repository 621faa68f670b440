// Test fixtures shared by the store's tests and its users' (the sidecar's handler and mirror tests):
// one home for "a plain job", so each test states only what matters to it.
import type { NewJob } from './types.ts';

/** A running image-classification job with nothing in it; `overrides` for what a test is about. */
export function sampleJob(jobId: string, overrides: Partial<NewJob> = {}): NewJob {
  return {
    jobId,
    task: 'image_classification',
    framework: 'timm',
    modelName: 'resnet50',
    modelConfig: {},
    trainingConfig: {},
    params: {},
    customMetrics: [],
    startEpoch: 0,
    primaryMetric: 'accuracy',
    ...overrides,
  };
}
