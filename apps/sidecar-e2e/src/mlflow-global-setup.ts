// Vitest globalSetup: one real MLflow server for the whole run (the bridge's pattern), its URL provided
// as `mlflowUrl`. When the run is filtered to files that are not mlflow-*.spec.ts, no server is started.
// Vitest loads global setup files without the workspace's source export condition, so the bridge's
// MLflow server starter (TypeScript source, no build needed) is imported by path — the file itself,
// not the testing index, whose imports of other workspace packages would resolve to an unbuilt dist/.

import type { TestProject } from 'vitest/node';
import { startMlflowServer } from '../../../packages/mlflow-bridge/src/testing/mlflow-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    mlflowUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  // `vitest run src/durability.spec.ts` needs no MLflow; a plain `vitest run` (CI) starts it.
  // (The config file of `-c vitest.postgres.config.ts` is no file filter.)
  const files = process.argv
    .slice(2)
    .filter((a) => /\.spec|\.ts$|\//.test(a) && !a.startsWith('-') && !/vitest\.[\w.]*config\.ts$/.test(a));
  if (files.length > 0 && !files.some((f) => f.includes('mlflow') || f.includes('shared-postgres'))) {
    project.provide('mlflowUrl', '');
    return undefined;
  }
  const started = Date.now();
  const server = await startMlflowServer();
  process.stderr.write(`mlflow server ready at ${server.url} in ${Date.now() - started} ms\n`);
  project.provide('mlflowUrl', server.url);
  return () => server.stop();
}
