export {
  type HttpFault,
  type HttpFaultInjector,
  type HttpFaultInjectorOptions,
  startHttpFaultInjector,
} from './http-fault-injector.ts';
export {
  type FaultMode,
  startTcpFaultProxy,
  type TcpFaultProxy,
  type TcpFaultProxyOptions,
} from './tcp-fault-proxy.ts';
