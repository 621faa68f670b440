// Conversions between the wire (protobuf-es messages) and the libraries' plain records. Enum
// mappings are derived from the generated descriptors — a proto enum value TASK_TYPE_OBJECT_DETECTION
// is the catalog's 'object_detection' — so no table here repeats the contract by hand.
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import type {
  MetricDefinition as CatalogDefinition,
  MetricVerdict,
  TaskCatalog,
  TaskType,
} from '@training-callbacks/metric-catalog';
import { isTaskType } from '@training-callbacks/metric-catalog';
import type { JobSync } from '@training-callbacks/mlflow-bridge/mirror';
import {
  type Artifact,
  ArtifactSchema,
  type BatchMetricsBlock,
  BatchMetricsBlockSchema,
  EndCauseSchema,
  type EpochRecord,
  EpochRecordSchema,
  enumNames,
  type Job,
  JobSchema,
  JobStatusSchema,
  MetricDefinitionSchema,
  MetricFormatSchema,
  MetricTierSchema,
  MetricVerdictSchema,
  type MetricDefinition as ProtoDefinition,
  type TaskCatalog as ProtoTaskCatalog,
  type MetricVerdict as ProtoVerdict,
  TaskCatalogSchema,
  TaskTypeSchema,
  type TrainerProcess,
  type TrainerProcessSchema,
} from '@training-callbacks/proto';
import type {
  ArtifactRecord,
  BatchBlock,
  CustomMetricDefinition,
  EndCause,
  JobRecord,
  EpochRecord as StoredEpoch,
  JobStatus as StoredStatus,
  TrainerRecord,
} from '@training-callbacks/store';
import { lossesToProto } from './client-losses.ts';

export const taskTypes = enumNames<TaskType>()(TaskTypeSchema);
export const jobStatuses = enumNames<StoredStatus>()(JobStatusSchema);
export const endCauses = enumNames<EndCause>()(EndCauseSchema);
const formats = enumNames<CatalogDefinition['format']>()(MetricFormatSchema);
const tiers = enumNames<MetricVerdict['tier']>()(MetricTierSchema);

// Fail at start-up, not at the first call, if the contract and the catalog ever disagree.
for (const name of taskTypes.names()) {
  if (!isTaskType(name)) throw new Error(`proto TaskType "${name}" is missing from the metric catalog`);
}

export function definitionToProto(definition: CatalogDefinition): ProtoDefinition {
  return create(MetricDefinitionSchema, {
    name: definition.name,
    label: definition.label,
    format: formats.number(definition.format),
    higherIsBetter: definition.higherIsBetter,
    description: definition.description,
  });
}

/**
 * A custom metric definition from BeginTraining; `index` names it in the refusal of a format number
 * that is no MetricFormat (METRIC_FORMAT_UNSPECIFIED means float).
 */
export function definitionFromProto(definition: ProtoDefinition, index = 0): CustomMetricDefinition {
  const format = definition.format === 0 ? 'float' : formats.name(definition.format);
  if (format === undefined) {
    throw new RpcError(
      Status.INVALID_ARGUMENT,
      `custom_metrics[${index}].format ${definition.format} is not a MetricFormat; send ${formats
        .names()
        .map((n) => `METRIC_FORMAT_${n.toUpperCase()}`)
        .join(', ')
        .replace(/, ([^,]*)$/, ' or $1')}`,
    );
  }
  return {
    name: definition.name,
    label: definition.label || definition.name,
    format,
    higherIsBetter: definition.higherIsBetter,
    description: definition.description,
  };
}

export function catalogToProto(catalog: TaskCatalog): ProtoTaskCatalog {
  return create(TaskCatalogSchema, {
    taskType: taskTypes.number(catalog.task),
    primaryMetric: catalog.primaryMetric,
    standardMetrics: catalog.standardMetrics.map(definitionToProto),
    aliases: catalog.aliases.map((a) => ({ alias: a.alias, name: a.name, scale: a.scale })),
  });
}

export function verdictToProto(verdict: MetricVerdict): ProtoVerdict {
  return create(MetricVerdictSchema, {
    reportedName: verdict.reportedName,
    name: verdict.name,
    tier: tiers.number(verdict.tier),
    value: verdict.value,
    reason: verdict.reason,
  });
}

export function jobToProto(job: JobRecord, sync?: JobSync): Job {
  return create(JobSchema, {
    jobId: job.jobId,
    taskType: isTaskType(job.task) ? taskTypes.number(job.task) : 0,
    framework: job.framework,
    modelName: job.modelName,
    status: jobStatuses.number(job.status),
    modelConfig: job.modelConfig as never,
    trainingConfig: job.trainingConfig as never,
    params: job.params,
    runName: job.runName,
    tags: job.tags,
    customMetrics: job.customMetrics.map(definitionToProto),
    startEpoch: job.startEpoch,
    epochsReported: job.epochsReported,
    primaryMetric: job.primaryMetric,
    ...(job.bestEpoch !== undefined && { bestEpoch: job.bestEpoch }),
    ...(job.bestValue !== undefined && { bestValue: job.bestValue }),
    finalMetrics: job.finalMetrics,
    ...(job.finalPrimaryValue !== undefined && { finalPrimaryValue: job.finalPrimaryValue }),
    errorMessage: job.errorMessage,
    mlflowExperimentId: job.mlflowExperimentId,
    mlflowRunId: job.mlflowRunId,
    mlflowSync: sync ?? { enabled: false, inSync: true },
    createdAt: timestampFromDate(job.createdAt),
    updatedAt: timestampFromDate(job.updatedAt),
    ...(job.endedAt && { endedAt: timestampFromDate(job.endedAt) }),
    ...(job.clientLosses && { clientLosses: lossesToProto(job.clientLosses) }),
    ...(job.endCause && { endCause: endCauses.number(job.endCause) }),
    endReason: job.endReason,
    ...(job.lastSeenAt && { lastSeenAt: timestampFromDate(job.lastSeenAt) }),
    ...(job.leaseExpiresAt && { leaseExpiresAt: timestampFromDate(job.leaseExpiresAt) }),
    ...(job.trainer && { trainer: trainerToProto(job.trainer) }),
  });
}

export function trainerToProto(trainer: TrainerRecord): MessageInitShape<typeof TrainerProcessSchema> {
  return {
    pid: trainer.pid,
    startTimeTicks: BigInt(trainer.startTimeTicks),
    hostname: trainer.hostname,
    bootId: trainer.bootId,
    sessionId: trainer.sessionId,
  };
}

/** BeginTraining's trainer as stored; undefined when the client sent none. */
export function trainerFromProto(trainer: TrainerProcess | undefined): TrainerRecord | undefined {
  if (!trainer) return undefined;
  return {
    pid: trainer.pid,
    startTimeTicks: trainer.startTimeTicks.toString(),
    hostname: trainer.hostname,
    bootId: trainer.bootId,
    sessionId: trainer.sessionId,
  };
}

export function epochToProto(epoch: StoredEpoch): EpochRecord {
  return create(EpochRecordSchema, {
    epoch: epoch.epoch,
    metrics: epoch.metrics,
    nonFiniteMetrics: epoch.nonFinite,
    timestamp: timestampFromDate(epoch.timestamp),
    ...(epoch.beganAt && { beganAt: timestampFromDate(epoch.beganAt) }),
  });
}

export function blockToProto(block: BatchBlock): BatchMetricsBlock {
  return create(BatchMetricsBlockSchema, {
    epoch: block.epoch,
    names: block.names,
    steps: [...block.steps],
    values: [...block.values],
  });
}

export function artifactToProto(artifact: ArtifactRecord): Artifact {
  return create(ArtifactSchema, {
    artifactPath: artifact.artifactPath,
    sizeBytes: BigInt(artifact.sizeBytes),
    sha256: artifact.sha256,
    sourcePath: artifact.sourcePath,
    loggedAt: timestampFromDate(artifact.loggedAt),
  });
}
