// grpc.health.v1 (Check, Watch, List) on protobuf-es, the library the sidecar's own contract uses.
// It answers as grpc-health-check's HealthImplementation does (the same statuses, NOT_FOUND for an
// unknown service on Check, SERVICE_UNKNOWN then updates on Watch, RESOURCE_EXHAUSTED past 100 services
// on List), without that package's start-up cost: it parses health.proto with protobufjs when imported,
// ~1.5 MiB of resident memory for four messages. The messages are generated from grpc-health-check's
// health.proto into src/gen (see the README, "Probes").
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { Server, ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import { createServiceDefinition, Status, UndecodableRequest } from '@training-callbacks/grpc-adapter';
import {
  Health,
  type HealthCheckRequest,
  HealthCheckResponse_ServingStatus,
  type HealthCheckResponseSchema,
  type HealthListResponseSchema,
} from './gen/grpc/health/v1/health_pb.ts';

/** The statuses a service can be set to. */
export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/** List answers RESOURCE_EXHAUSTED beyond this many services (as grpc-health-check does). */
const LIST_LIMIT = 100;

/** The health statuses of named services, served on any number of gRPC servers. */
export interface HealthService {
  /** Sets `service`'s status; watchers of it get the new one. */
  setStatus(service: string, status: ServingStatus): void;
  /** Adds grpc.health.v1.Health to `server`. */
  addToServer(server: Server): void;
}

export function createHealthService(initial: Record<string, ServingStatus>): HealthService {
  const statuses = new Map<string, ServingStatus>(Object.entries(initial));
  const watchers = new Map<string, Set<(status: ServingStatus) => void>>();
  const response = (
    status: ServingStatus | 'SERVICE_UNKNOWN',
  ): MessageInitShape<typeof HealthCheckResponseSchema> => ({
    status: HealthCheckResponse_ServingStatus[status],
  });
  /** Bytes that are no HealthCheckRequest: INVALID_ARGUMENT, as on the sidecar's own service. */
  const refusal = (request: unknown) => {
    if (!(request instanceof UndecodableRequest)) return undefined;
    const error = request.toRpcError();
    return { code: error.code, details: error.message };
  };
  const definition = createServiceDefinition(Health);
  const implementation = {
    check(call: ServerUnaryCall<HealthCheckRequest, unknown>, callback: sendUnaryData<unknown>) {
      const refused = refusal(call.request);
      if (refused) return callback(refused);
      const status = statuses.get(call.request.service);
      if (status) callback(null, response(status));
      else
        callback({
          code: Status.NOT_FOUND,
          details: `Health status unknown for service ${call.request.service}`,
        });
    },
    watch(call: ServerWritableStream<HealthCheckRequest, unknown>) {
      const refused = refusal(call.request);
      if (refused) return void call.emit('error', refused);
      const service = call.request.service;
      const watcher = (status: ServingStatus) => call.write(response(status));
      const set = watchers.get(service) ?? new Set();
      watchers.set(service, set.add(watcher));
      call.on('cancelled', () => set.delete(watcher));
      call.write(response(statuses.get(service) ?? 'SERVICE_UNKNOWN'));
    },
    list(_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) {
      if (statuses.size > LIST_LIMIT)
        return callback({ code: Status.RESOURCE_EXHAUSTED, details: 'Too many services to list.' });
      const list: MessageInitShape<typeof HealthListResponseSchema> = {
        statuses: Object.fromEntries([...statuses].map(([name, status]) => [name, response(status)])),
      };
      callback(null, list);
    },
  };
  return {
    setStatus(service, status) {
      statuses.set(service, status);
      for (const watcher of watchers.get(service) ?? []) watcher(status);
    },
    addToServer(server) {
      server.addService(definition, implementation as never);
    },
  };
}
