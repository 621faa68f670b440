export { type FaultMode, startTcpFaultProxy, type TcpFaultProxy } from './fault-proxy.ts';
export { type HttpFault, type HttpFaultInjector, startHttpFaultInjector } from './http-fault.ts';
export {
  freePort,
  type MlflowServer,
  mlflowPython,
  repoRoot,
  type StartMlflowServerOptions,
  startMlflowServer,
} from './mlflow-server.ts';
