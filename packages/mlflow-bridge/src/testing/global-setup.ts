import type { TestProject } from 'vitest/node';
import { startMlflowServer } from './mlflow-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    mlflowUrl: string;
  }
}

/**
 * Vitest globalSetup: one real MLflow server for the whole test run, its URL provided as `mlflowUrl`
 * (`inject('mlflowUrl')`). Other packages copy these lines into their own global setup, importing
 * `startMlflowServer` from `@training-callbacks/mlflow-bridge/testing`.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const server = await startMlflowServer();
  process.stderr.write(`mlflow server ready at ${server.url} in ${Date.now() - started} ms\n`);
  project.provide('mlflowUrl', server.url);
  return () => server.stop();
}
