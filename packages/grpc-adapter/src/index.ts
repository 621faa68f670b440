export type { CallOptions, ClientMethod, CreateClientOptions, ServiceClient } from './client.ts';
export { cancelCall, createClient } from './client.ts';
export { addReflection } from './reflection.ts';
export type { ErrorMapper, StatusCode } from './rpc-error.ts';
export { RpcError, Status, toStatusObject } from './rpc-error.ts';
export type { AddServiceOptions, CallContext, MethodHandler, ServiceHandlers } from './server.ts';
export { addService } from './server.ts';
export type { RequestDecoder } from './service-definition.ts';
export {
  createMethodDefinition,
  createServiceDefinition,
  preEncoded,
  sendsToMany,
  UndecodableRequest,
} from './service-definition.ts';
