// The TrainingCallbacks service: validate, normalise through the metric catalog, commit to the store,
// then acknowledge. Nothing is answered OK before the store's transaction has committed, and a refused
// call changes nothing. Each concern's handlers live in a file of their own under handlers/.
import type { ServiceHandlers } from '@training-callbacks/grpc-adapter';
import { artifactHandlers } from './handlers/artifacts.ts';
import { batchMetricHandlers } from './handlers/batch-metrics.ts';
import { beginTrainingHandlers } from './handlers/begin-training.ts';
import { createHandlerContext, type Methods, type ServiceOptions } from './handlers/context.ts';
import { endTrainingHandlers } from './handlers/end-training.ts';
import { epochHandlers } from './handlers/epochs.ts';
import { heartbeatHandlers } from './handlers/heartbeat.ts';
import { mlflowSyncHandlers } from './handlers/mlflow-sync.ts';
import { readHandlers } from './handlers/reads.ts';
import { seriesHandlers } from './handlers/series.ts';
import { watchHandlers } from './handlers/watch.ts';

export type { ServiceOptions } from './handlers/context.ts';

export function createTrainingCallbacksHandlers(options: ServiceOptions): ServiceHandlers<Methods> {
  const ctx = createHandlerContext(options);
  return {
    ...beginTrainingHandlers(ctx),
    ...epochHandlers(ctx),
    ...batchMetricHandlers(ctx),
    ...endTrainingHandlers(ctx),
    ...artifactHandlers(ctx),
    ...heartbeatHandlers(ctx),
    ...readHandlers(ctx),
    ...mlflowSyncHandlers(ctx),
    ...seriesHandlers(ctx),
    ...watchHandlers(ctx, { keepaliveMs: options.watchKeepaliveMs ?? 15_000 }),
  };
}
