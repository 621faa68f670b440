// Liveness and readiness, the same on gRPC (grpc.health.v1) and HTTP (/livez, /readyz).
// - liveness: the process runs and answers. It never looks at the database or MLflow: restarting
//   a sidecar because its disk is full would only lose what it holds in memory.
// - readiness: the sidecar can take writes now. It is NOT_SERVING while any condition is set —
//   the database is being opened or migrated, the database cannot be written (set by the
//   database probe), the sidecar is shutting down — and SERVING again as soon as none is left.
// The service names '' and trainingcallbacks.v1.TrainingCallbacks follow readiness (what clients
// and `grpc_health_probe` ask by default).
import { TrainingCallbacks } from '@training-callbacks/proto';
import { createHealthService, type HealthService } from './health-service.ts';
import { type HttpListener, plain } from './http/listener.ts';

export const LIVENESS_SERVICE = 'liveness';
export const READINESS_SERVICE = 'readiness';
const READINESS_NAMES = ['', TrainingCallbacks.typeName, READINESS_SERVICE] as const;

/** Conditions that make the sidecar not ready; each is set with a sentence and cleared with undefined. */
export type ReadinessCondition = 'database' | 'migrations' | 'shutdown';

export interface SidecarHealth {
  /** The grpc.health.v1 service to add to the gRPC server(s). */
  readonly grpc: HealthService;
  /** Sets (a sentence saying what is wrong) or clears (undefined) one readiness condition. */
  setCondition(condition: ReadinessCondition, problem: string | undefined): void;
  /** True when no condition is set. */
  readonly ready: boolean;
  /** What keeps it from being ready, one sentence per condition. */
  readonly problems: readonly string[];
  /** Mounts /livez and /readyz (public: Kubernetes' HTTP probes send no token). */
  mountProbes(http: HttpListener): void;
}

export function createSidecarHealth(
  initial: Partial<Record<ReadinessCondition, string>> = {},
): SidecarHealth {
  const conditions = new Map<ReadinessCondition, string>(
    Object.entries(initial) as Array<[ReadinessCondition, string]>,
  );
  const readiness = () => (conditions.size === 0 ? 'SERVING' : 'NOT_SERVING');
  const grpc = createHealthService({
    [LIVENESS_SERVICE]: 'SERVING',
    ...Object.fromEntries(READINESS_NAMES.map((name) => [name, readiness()])),
  });
  const publish = () => {
    for (const name of READINESS_NAMES) grpc.setStatus(name, readiness());
  };
  return {
    grpc,
    setCondition(condition, problem) {
      const was = conditions.get(condition);
      if (problem === undefined) conditions.delete(condition);
      else conditions.set(condition, problem);
      if (was !== problem) publish();
    },
    get ready() {
      return conditions.size === 0;
    },
    get problems() {
      return [...conditions.values()];
    },
    mountProbes(http) {
      http.route('/livez', (_request, response) => plain(response, 200, 'ok\n'), { access: 'public' });
      http.route(
        '/readyz',
        (_request, response) =>
          conditions.size === 0
            ? plain(response, 200, 'ready\n')
            : plain(response, 503, `not ready: ${[...conditions.values()].join('; ')}\n`),
        { access: 'public' },
      );
    },
  };
}
