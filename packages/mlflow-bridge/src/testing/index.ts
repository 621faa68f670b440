import {
  type HttpFaultInjector,
  type HttpFaultInjectorOptions,
  startHttpFaultInjector as startGenericHttpFaultInjector,
} from '@training-callbacks/fault-injection';

// The fault tools live in @training-callbacks/fault-injection; re-exported here for the importers of
// this harness (apps/sidecar-e2e, tools/bench).
export {
  type FaultMode,
  type HttpFault,
  type HttpFaultInjector,
  startTcpFaultProxy,
  type TcpFaultProxy,
} from '@training-callbacks/fault-injection';
export {
  freePort,
  type MlflowServer,
  mlflowPython,
  repoRoot,
  type StartMlflowServerOptions,
  startMlflowServer,
} from './mlflow-server.ts';

/** An injected status's body in MLflow's error format: `{"error_code": …, "message": …}`. */
export function mlflowErrorBody(status: number): string {
  return JSON.stringify({
    error_code: status === 429 ? 'REQUEST_LIMIT_EXCEEDED' : 'INTERNAL_ERROR',
    message: `injected HTTP ${status}`,
  });
}

/** The HTTP fault injector of @training-callbacks/fault-injection in front of MLflow, answering in its error format. */
export function startHttpFaultInjector(
  target: string,
  options: HttpFaultInjectorOptions = {},
): Promise<HttpFaultInjector> {
  return startGenericHttpFaultInjector(target, { errorBody: mlflowErrorBody, ...options });
}
