// The TrainingCallbacks service: validate, normalise through the metric catalog, commit to the store,
// then acknowledge. Nothing is answered OK before the store's transaction has committed, and a refused
// call changes nothing. Each concern's handlers live in a file of their own under handlers/.
import type { ServiceHandlers } from '@training-callbacks/grpc-adapter';
import { artifactHandlers } from './handlers/artifacts.ts';
import { batchMetricHandlers } from './handlers/batch-metrics.ts';
import { beginTrainingHandlers } from './handlers/begin-training.ts';
import {
  createHandlerContext,
  type HandlerContext,
  type Methods,
  type ServiceOptions,
} from './handlers/context.ts';
import { endTrainingHandlers } from './handlers/end-training.ts';
import { epochHandlers } from './handlers/epochs.ts';
import { heartbeatHandlers } from './handlers/heartbeat.ts';
import { mlflowSyncHandlers } from './handlers/mlflow-sync.ts';
import { readHandlers } from './handlers/reads.ts';
import { seriesHandlers } from './handlers/series.ts';
import type { Verdicts } from './handlers/verdicts.ts';
import { watchHandlers } from './handlers/watch.ts';

export type { ServiceOptions } from './handlers/context.ts';

/** The service's handlers, and its verdicts (started, checked at shutdown and stopped by the sidecar). */
export function createTrainingCallbacksService(options: ServiceOptions): {
  handlers: ServiceHandlers<Methods>;
  verdicts: Verdicts;
} {
  const ctx = createHandlerContext(options);
  return { handlers: handlersOf(ctx), verdicts: ctx.verdicts };
}

function handlersOf(ctx: HandlerContext): ServiceHandlers<Methods> {
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
    ...watchHandlers(ctx, { keepaliveMs: ctx.watchKeepaliveMs }),
  };
}
