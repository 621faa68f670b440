import type { TestProject } from 'vitest/node';
import { startMlflowServer } from './mlflow-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    mlflowUrl: string;
  }
}

/**
 * Vitest globalSetup: one real MLflow server for the whole test run, its URL provided as `mlflowUrl`
 * (`inject('mlflowUrl')`). Other packages can use it with
 * `globalSetup: ['@training-callbacks/mlflow-bridge/testing/global-setup']`-style paths or call
 * `startMlflowServer()` themselves.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const server = await startMlflowServer();
  process.stderr.write(`mlflow server ready at ${server.url} in ${Date.now() - started} ms\n`);
  project.provide('mlflowUrl', server.url);
  return () => server.stop();
}
