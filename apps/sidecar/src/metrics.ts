// Prometheus metrics (`GET /metrics` on the HTTP listener). Low cardinality on purpose: no label takes
// a job id, a metric name or a message; every label has a small fixed set of values. Counters are
// bumped where the event happens (the RPC interceptor, the handlers, the MLflow thread's batches);
// store-wide gauges (jobs by status, outbox depth) are read from the database when scraped.

import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import {
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  ServerListenerBuilder,
  status as Status,
} from '@grpc/grpc-js';
import type { ServiceHandlers } from '@training-callbacks/grpc-adapter';
import type { MlflowRequestOutcome } from '@training-callbacks/mlflow-bridge';
import type { ClientLossesRecord, OperationalCounts, Store } from '@training-callbacks/store';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { type HistogramChild, LatencyHistogram } from './latency-histogram.ts';

const PREFIX = 'training_callbacks_';

/** [outcome, seconds] of MLflow requests since the sync thread's last report. */
export type MlflowRequestObservations = ReadonlyArray<readonly [MlflowRequestOutcome, number]>;

/** Why points were refused; fixed values so the label stays small. */
export type RejectionReason =
  | 'out_of_range'
  | 'empty_block'
  | 'block_shape'
  | 'negative_epoch'
  | 'bad_name'
  | 'duplicate_name';

export interface SidecarMetrics {
  readonly registry: Registry;
  /** Counts and times every gRPC call (all services) by method and status code. */
  readonly rpcInterceptor: ServerInterceptor;
  /**
   * `handlers` wrapped so that `rpc_handlers_in_flight` counts each call from its handler being called
   * until the handler has finished. Unlike the status the interceptor sees, this outlives a client's
   * cancel: a cut stream's handler may still commit what it read (see ReportBatchMetrics' proto).
   */
  countHandlersInFlight<T extends GenServiceMethods>(
    service: GenService<T>,
    handlers: ServiceHandlers<T>,
  ): ServiceHandlers<T>;
  epochIngested(): void;
  batchPointsIngested(points: number): void;
  metricsRejected(source: 'epoch' | 'batch', reason: RejectionReason, count: number): void;
  /**
   * The timer of one store operation's write transactions (committed or failed): bound once per
   * operation, so that a commit's observation looks no label up.
   */
  dbCommitTimer(operation: string): HistogramChild;
  mlflowRequests(observations: MlflowRequestObservations): void;
  /** What a trainer's client reported it could not deliver (EndTrainingRequest.losses). */
  clientLosses(losses: Pick<ClientLossesRecord, 'droppedPoints' | 'refusedPoints' | 'failedWrites'>): void;
  /** A verdict on a lost trainer: its lease ran out, or its process was seen exiting. */
  jobLost(cause: 'lease_expired' | 'process_exited'): void;
  /** A lost job revived by its trainer's heartbeat or report. */
  jobRevived(): void;
  /** Reads store-wide gauges from `store` at every scrape (jobs by status, outbox, parked jobs). */
  watchStore(store: Pick<Store, 'operationalCounts'>): void;
  /** The exposition text and its content type. */
  scrape(): Promise<{ contentType: string; body: string }>;
}

/** One method's call series (see createSidecarMetrics). */
interface RpcSeries {
  readonly labels: { readonly service: string; readonly method: string };
  /** Calls by status code. */
  readonly codes: Map<number, number>;
  readonly seconds: HistogramChild;
  /** Handlers running now; set for the methods whose handlers are counted (countHandlersInFlight). */
  handlers: { running: number } | undefined;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const MLFLOW_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];

export function createSidecarMetrics(): SidecarMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: PREFIX });
  // The per-call series (calls by method and code, their durations, handlers in flight) are counted
  // in plain per-method records and handed to prom-client when scraped: prom-client hashes a label
  // object on every increment, which showed in the profile of a sidecar doing 1000s of calls/s.
  const byPath = new Map<string, RpcSeries>();
  const rpcSeriesOf = (path: string): RpcSeries => {
    let series = byPath.get(path);
    if (!series) {
      const slash = path.lastIndexOf('/');
      const labels = { service: path.slice(1, slash), method: path.slice(slash + 1) };
      series = { labels, codes: new Map(), seconds: rpcSeconds.child(labels), handlers: undefined };
      byPath.set(path, series);
    }
    return series;
  };
  new Counter({
    name: `${PREFIX}rpc_requests_total`,
    help: 'gRPC calls handled, by service, method and status code',
    labelNames: ['service', 'method', 'code'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels, codes } of byPath.values())
        for (const [code, n] of codes) this.inc({ ...labels, code: Status[code] ?? String(code) }, n);
    },
  });
  const rpcSeconds = new LatencyHistogram({
    name: `${PREFIX}rpc_duration_seconds`,
    help: 'Time from a gRPC call arriving to its status being sent, by service and method',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  new Gauge({
    name: `${PREFIX}rpc_handlers_in_flight`,
    help:
      'Handlers running now, by service and method: from the handler being called until it has finished, ' +
      'also after its client cancelled (a server stream counts from its first read)',
    labelNames: ['service', 'method'] as const,
    registers: [registry],
    collect() {
      for (const { labels, handlers } of byPath.values()) if (handlers) this.set(labels, handlers.running);
    },
  });
  const epochs = new Counter({
    name: `${PREFIX}epochs_ingested_total`,
    help: 'Epoch reports committed (EndEpoch)',
    registers: [registry],
  });
  const batchPoints = new Counter({
    name: `${PREFIX}batch_points_ingested_total`,
    help: 'Batch-level metric points committed (ReportBatchMetrics): new or changed ones, not those resent as stored',
    registers: [registry],
  });
  const rejected = new Counter({
    name: `${PREFIX}metrics_rejected_total`,
    help: 'Metric values refused, by where they came from and why',
    labelNames: ['source', 'reason'] as const,
    registers: [registry],
  });
  const dbCommit = new LatencyHistogram({
    name: `${PREFIX}db_commit_duration_seconds`,
    help: 'Duration of the store write transactions, by store operation',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const mlflowRequests = new Counter({
    name: `${PREFIX}mlflow_requests_total`,
    help: 'HTTP requests to the MLflow tracking server, by outcome',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const mlflowSeconds = new Histogram({
    name: `${PREFIX}mlflow_request_duration_seconds`,
    help: 'Duration of HTTP requests to the MLflow tracking server, by outcome',
    labelNames: ['outcome'] as const,
    buckets: MLFLOW_BUCKETS,
    registers: [registry],
  });

  const losses = new Counter({
    name: `${PREFIX}client_losses_total`,
    help: "What trainers' clients reported they could not deliver (EndTraining losses), by kind",
    labelNames: ['kind'] as const,
    registers: [registry],
  });

  const leasesExpired = new Counter({
    name: `${PREFIX}leases_expired_total`,
    help: 'Running jobs ended FAILED as lost because no heartbeat or report came for the whole trainer lease',
    registers: [registry],
  });
  const processExits = new Counter({
    name: `${PREFIX}trainer_process_exits_total`,
    help: 'Running jobs ended FAILED as lost because the sidecar saw their trainer process exit without ending them',
    registers: [registry],
  });
  const revived = new Counter({
    name: `${PREFIX}jobs_revived_total`,
    help: 'Lost jobs that ran again because their trainer (the same client session) sent a heartbeat or report',
    registers: [registry],
  });

  // Store-wide gauges: one aggregate read per scrape, shared by the four gauges.
  let store: Pick<Store, 'operationalCounts'> | undefined;
  let snapshot: Promise<OperationalCounts | undefined> | undefined;
  const counts = () => {
    snapshot ??= (async () => {
      try {
        return store ? await store.operationalCounts() : undefined;
      } catch {
        return undefined; // database unreadable: readiness says so; the gauges are left out
      } finally {
        queueMicrotask(() => {
          snapshot = undefined;
        });
      }
    })();
    return snapshot;
  };
  new Gauge({
    name: `${PREFIX}jobs`,
    help: 'Jobs in the database, by status',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const c = await counts();
      if (c) for (const [status, n] of Object.entries(c.jobsByStatus)) this.set({ status }, n);
    },
  });
  new Gauge({
    name: `${PREFIX}outbox_pending_items`,
    help: 'Outbox entries not yet delivered to MLflow (parked ones included)',
    registers: [registry],
    async collect() {
      const c = await counts();
      if (c) this.set(c.outboxPending);
    },
  });
  new Gauge({
    name: `${PREFIX}outbox_oldest_pending_timestamp_seconds`,
    help: 'When the oldest undelivered outbox entry was written (Unix seconds); 0 when the outbox is empty',
    registers: [registry],
    async collect() {
      const c = await counts();
      if (c) this.set(c.outboxOldestCreatedAtMs === undefined ? 0 : c.outboxOldestCreatedAtMs / 1000);
    },
  });
  new Gauge({
    name: `${PREFIX}mlflow_parked_jobs`,
    help: 'Jobs whose MLflow sync is parked until RetryMlflowSync or a restart',
    registers: [registry],
    async collect() {
      const c = await counts();
      if (c) this.set(c.parkedJobs);
    },
  });

  const rpcInterceptor: ServerInterceptor = (descriptor, call: ServerInterceptingCallInterface) => {
    const started = performance.now();
    const series = rpcSeriesOf(descriptor.path);
    let recorded = false;
    const record = (code: number) => {
      if (recorded) return;
      recorded = true;
      series.codes.set(code, (series.codes.get(code) ?? 0) + 1);
      series.seconds.observe((performance.now() - started) / 1000);
    };
    return new ServerInterceptingCall(call, {
      start(next) {
        next(new ServerListenerBuilder().withOnCancel(() => record(Status.CANCELLED)).build());
      },
      sendStatus(status, next) {
        record(status.code);
        next(status);
      },
    });
  };

  return {
    registry,
    rpcInterceptor,
    countHandlersInFlight<T extends GenServiceMethods>(service: GenService<T>, handlers: ServiceHandlers<T>) {
      const wrapped: Record<string, unknown> = {};
      for (const method of service.methods) {
        const byName = handlers as unknown as Record<string, (...args: unknown[]) => unknown>;
        const handler = byName[method.localName]!;
        // One record per method, made now: the series reads 0 before the first call, and each call
        // costs an increment, not a label lookup.
        const series = rpcSeriesOf(`/${service.typeName}/${method.name}`);
        series.handlers ??= { running: 0 };
        const gauge = series.handlers;
        wrapped[method.localName] =
          method.methodKind === 'server_streaming'
            ? async function* (request: unknown, context: unknown) {
                gauge.running++;
                try {
                  yield* handler(request, context) as AsyncIterable<unknown>;
                } finally {
                  gauge.running--;
                }
              }
            : async (request: unknown, context: unknown) => {
                gauge.running++; // before the handler's first await: at once when the call starts
                try {
                  return await (handler(request, context) as Promise<unknown>);
                } finally {
                  gauge.running--;
                }
              };
      }
      return wrapped as ServiceHandlers<T>;
    },
    epochIngested: () => epochs.inc(),
    batchPointsIngested: (points) => batchPoints.inc(points),
    metricsRejected: (source, reason, count) => rejected.inc({ source, reason }, count),
    dbCommitTimer: (operation) => dbCommit.child({ operation }),
    mlflowRequests(observations) {
      for (const [outcome, seconds] of observations) {
        mlflowRequests.inc({ outcome });
        mlflowSeconds.observe({ outcome }, seconds);
      }
    },
    clientLosses(reported) {
      if (reported.droppedPoints) losses.inc({ kind: 'dropped_points' }, reported.droppedPoints);
      if (reported.refusedPoints) losses.inc({ kind: 'refused_points' }, reported.refusedPoints);
      if (reported.failedWrites) losses.inc({ kind: 'failed_writes' }, reported.failedWrites);
    },
    jobLost: (cause) => (cause === 'lease_expired' ? leasesExpired : processExits).inc(),
    jobRevived: () => revived.inc(),
    watchStore(watched) {
      store = watched;
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}

/** The store's write methods whose transactions {@link instrumentStoreCommits} times. */
const WRITE_OPERATIONS = [
  'createOrGetJob',
  'reopenJob',
  'beginEpoch',
  'saveEpoch',
  'appendBatchBlocks',
  'endJob',
  'renewLease',
  'expireLeases',
  'endLostJob',
  'extendLeases',
  'putArtifacts',
  'setMlflowIds',
  'enqueueOutbox',
  'completeOutbox',
  'rescheduleOutboxItem',
  'parkOutboxItem',
  'retryOutboxNow',
  'saveMirrorState',
] as const satisfies ReadonlyArray<keyof Store>;

/**
 * Times each write of `store` (one transaction each) into `metrics`. The methods are replaced on the
 * instance itself, so the store's private state is untouched and every caller is timed.
 */
export function instrumentStoreCommits(store: Store, metrics: SidecarMetrics): void {
  const methods = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const operation of WRITE_OPERATIONS) {
    const original = methods[operation]!.bind(store);
    const timer = metrics.dbCommitTimer(operation);
    methods[operation] = async (...args: unknown[]) => {
      const started = performance.now();
      try {
        return await original(...args);
      } finally {
        timer.observe((performance.now() - started) / 1000);
      }
    };
  }
}
