import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_TYPE_UNSPECIFIED: _ClassVar[TaskType]
    TASK_TYPE_IMAGE_CLASSIFICATION: _ClassVar[TaskType]
    TASK_TYPE_OBJECT_DETECTION: _ClassVar[TaskType]
    TASK_TYPE_INSTANCE_SEGMENTATION: _ClassVar[TaskType]
    TASK_TYPE_SEMANTIC_SEGMENTATION: _ClassVar[TaskType]
    TASK_TYPE_POSE_ESTIMATION: _ClassVar[TaskType]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_RUNNING: _ClassVar[JobStatus]
    JOB_STATUS_COMPLETED: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]
    JOB_STATUS_CANCELLED: _ClassVar[JobStatus]

class TrainingOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRAINING_OUTCOME_UNSPECIFIED: _ClassVar[TrainingOutcome]
    TRAINING_OUTCOME_COMPLETED: _ClassVar[TrainingOutcome]
    TRAINING_OUTCOME_FAILED: _ClassVar[TrainingOutcome]
    TRAINING_OUTCOME_CANCELLED: _ClassVar[TrainingOutcome]

class EndCause(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    END_CAUSE_UNSPECIFIED: _ClassVar[EndCause]
    END_CAUSE_REPORTED: _ClassVar[EndCause]
    END_CAUSE_LEASE_EXPIRED: _ClassVar[EndCause]
    END_CAUSE_PROCESS_EXITED: _ClassVar[EndCause]

class MetricFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_FORMAT_UNSPECIFIED: _ClassVar[MetricFormat]
    METRIC_FORMAT_PERCENT: _ClassVar[MetricFormat]
    METRIC_FORMAT_FLOAT: _ClassVar[MetricFormat]
    METRIC_FORMAT_INT: _ClassVar[MetricFormat]

class MetricTier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_TIER_UNSPECIFIED: _ClassVar[MetricTier]
    METRIC_TIER_PRIMARY: _ClassVar[MetricTier]
    METRIC_TIER_STANDARD: _ClassVar[MetricTier]
    METRIC_TIER_CUSTOM: _ClassVar[MetricTier]
    METRIC_TIER_REJECTED: _ClassVar[MetricTier]
TASK_TYPE_UNSPECIFIED: TaskType
TASK_TYPE_IMAGE_CLASSIFICATION: TaskType
TASK_TYPE_OBJECT_DETECTION: TaskType
TASK_TYPE_INSTANCE_SEGMENTATION: TaskType
TASK_TYPE_SEMANTIC_SEGMENTATION: TaskType
TASK_TYPE_POSE_ESTIMATION: TaskType
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_RUNNING: JobStatus
JOB_STATUS_COMPLETED: JobStatus
JOB_STATUS_FAILED: JobStatus
JOB_STATUS_CANCELLED: JobStatus
TRAINING_OUTCOME_UNSPECIFIED: TrainingOutcome
TRAINING_OUTCOME_COMPLETED: TrainingOutcome
TRAINING_OUTCOME_FAILED: TrainingOutcome
TRAINING_OUTCOME_CANCELLED: TrainingOutcome
END_CAUSE_UNSPECIFIED: EndCause
END_CAUSE_REPORTED: EndCause
END_CAUSE_LEASE_EXPIRED: EndCause
END_CAUSE_PROCESS_EXITED: EndCause
METRIC_FORMAT_UNSPECIFIED: MetricFormat
METRIC_FORMAT_PERCENT: MetricFormat
METRIC_FORMAT_FLOAT: MetricFormat
METRIC_FORMAT_INT: MetricFormat
METRIC_TIER_UNSPECIFIED: MetricTier
METRIC_TIER_PRIMARY: MetricTier
METRIC_TIER_STANDARD: MetricTier
METRIC_TIER_CUSTOM: MetricTier
METRIC_TIER_REJECTED: MetricTier

class MetricDefinition(_message.Message):
    __slots__ = ("name", "label", "format", "higher_is_better", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    HIGHER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    label: str
    format: MetricFormat
    higher_is_better: bool
    description: str
    def __init__(self, name: _Optional[str] = ..., label: _Optional[str] = ..., format: _Optional[_Union[MetricFormat, str]] = ..., higher_is_better: _Optional[bool] = ..., description: _Optional[str] = ...) -> None: ...

class MetricAlias(_message.Message):
    __slots__ = ("alias", "name", "scale")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    alias: str
    name: str
    scale: float
    def __init__(self, alias: _Optional[str] = ..., name: _Optional[str] = ..., scale: _Optional[float] = ...) -> None: ...

class TaskCatalog(_message.Message):
    __slots__ = ("task_type", "primary_metric", "standard_metrics", "aliases")
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_METRIC_FIELD_NUMBER: _ClassVar[int]
    STANDARD_METRICS_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    task_type: TaskType
    primary_metric: str
    standard_metrics: _containers.RepeatedCompositeFieldContainer[MetricDefinition]
    aliases: _containers.RepeatedCompositeFieldContainer[MetricAlias]
    def __init__(self, task_type: _Optional[_Union[TaskType, str]] = ..., primary_metric: _Optional[str] = ..., standard_metrics: _Optional[_Iterable[_Union[MetricDefinition, _Mapping]]] = ..., aliases: _Optional[_Iterable[_Union[MetricAlias, _Mapping]]] = ...) -> None: ...

class MlflowSync(_message.Message):
    __slots__ = ("enabled", "in_sync", "pending_items", "oldest_pending_age_seconds", "parked_error")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    IN_SYNC_FIELD_NUMBER: _ClassVar[int]
    PENDING_ITEMS_FIELD_NUMBER: _ClassVar[int]
    OLDEST_PENDING_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PARKED_ERROR_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    in_sync: bool
    pending_items: int
    oldest_pending_age_seconds: float
    parked_error: str
    def __init__(self, enabled: _Optional[bool] = ..., in_sync: _Optional[bool] = ..., pending_items: _Optional[int] = ..., oldest_pending_age_seconds: _Optional[float] = ..., parked_error: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "task_type", "framework", "model_name", "status", "model_config", "training_config", "params", "custom_metrics", "start_epoch", "epochs_reported", "primary_metric", "best_epoch", "best_value", "final_metrics", "final_primary_value", "error_message", "mlflow_experiment_id", "mlflow_run_id", "mlflow_sync", "created_at", "updated_at", "ended_at", "client_losses", "run_name", "tags", "end_cause", "end_reason", "last_seen_at", "lease_expires_at", "trainer")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class FinalMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODEL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRAINING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_METRICS_FIELD_NUMBER: _ClassVar[int]
    START_EPOCH_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_REPORTED_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_METRIC_FIELD_NUMBER: _ClassVar[int]
    BEST_EPOCH_FIELD_NUMBER: _ClassVar[int]
    BEST_VALUE_FIELD_NUMBER: _ClassVar[int]
    FINAL_METRICS_FIELD_NUMBER: _ClassVar[int]
    FINAL_PRIMARY_VALUE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MLFLOW_EXPERIMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MLFLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MLFLOW_SYNC_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_LOSSES_FIELD_NUMBER: _ClassVar[int]
    RUN_NAME_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    END_CAUSE_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    TRAINER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    task_type: TaskType
    framework: str
    model_name: str
    status: JobStatus
    model_config: _struct_pb2.Struct
    training_config: _struct_pb2.Struct
    params: _containers.ScalarMap[str, str]
    custom_metrics: _containers.RepeatedCompositeFieldContainer[MetricDefinition]
    start_epoch: int
    epochs_reported: int
    primary_metric: str
    best_epoch: int
    best_value: float
    final_metrics: _containers.ScalarMap[str, float]
    final_primary_value: float
    error_message: str
    mlflow_experiment_id: str
    mlflow_run_id: str
    mlflow_sync: MlflowSync
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    client_losses: ClientLosses
    run_name: str
    tags: _containers.ScalarMap[str, str]
    end_cause: EndCause
    end_reason: str
    last_seen_at: _timestamp_pb2.Timestamp
    lease_expires_at: _timestamp_pb2.Timestamp
    trainer: TrainerProcess
    def __init__(self, job_id: _Optional[str] = ..., task_type: _Optional[_Union[TaskType, str]] = ..., framework: _Optional[str] = ..., model_name: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ..., model_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., training_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., params: _Optional[_Mapping[str, str]] = ..., custom_metrics: _Optional[_Iterable[_Union[MetricDefinition, _Mapping]]] = ..., start_epoch: _Optional[int] = ..., epochs_reported: _Optional[int] = ..., primary_metric: _Optional[str] = ..., best_epoch: _Optional[int] = ..., best_value: _Optional[float] = ..., final_metrics: _Optional[_Mapping[str, float]] = ..., final_primary_value: _Optional[float] = ..., error_message: _Optional[str] = ..., mlflow_experiment_id: _Optional[str] = ..., mlflow_run_id: _Optional[str] = ..., mlflow_sync: _Optional[_Union[MlflowSync, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., client_losses: _Optional[_Union[ClientLosses, _Mapping]] = ..., run_name: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., end_cause: _Optional[_Union[EndCause, str]] = ..., end_reason: _Optional[str] = ..., last_seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lease_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trainer: _Optional[_Union[TrainerProcess, _Mapping]] = ...) -> None: ...

class TrainerProcess(_message.Message):
    __slots__ = ("pid", "start_time_ticks", "hostname", "boot_id", "session_id")
    PID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_TICKS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    BOOT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    pid: int
    start_time_ticks: int
    hostname: str
    boot_id: str
    session_id: str
    def __init__(self, pid: _Optional[int] = ..., start_time_ticks: _Optional[int] = ..., hostname: _Optional[str] = ..., boot_id: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class ClientLosses(_message.Message):
    __slots__ = ("dropped_points", "refused_points", "failed_writes", "reasons")
    DROPPED_POINTS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_POINTS_FIELD_NUMBER: _ClassVar[int]
    FAILED_WRITES_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    dropped_points: int
    refused_points: int
    failed_writes: int
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, dropped_points: _Optional[int] = ..., refused_points: _Optional[int] = ..., failed_writes: _Optional[int] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class MetricVerdict(_message.Message):
    __slots__ = ("reported_name", "name", "tier", "value", "reason")
    REPORTED_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    reported_name: str
    name: str
    tier: MetricTier
    value: float
    reason: str
    def __init__(self, reported_name: _Optional[str] = ..., name: _Optional[str] = ..., tier: _Optional[_Union[MetricTier, str]] = ..., value: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class EpochRecord(_message.Message):
    __slots__ = ("epoch", "metrics", "non_finite_metrics", "timestamp", "began_at")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    NON_FINITE_METRICS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    BEGAN_AT_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    metrics: _containers.ScalarMap[str, float]
    non_finite_metrics: _containers.RepeatedScalarFieldContainer[str]
    timestamp: _timestamp_pb2.Timestamp
    began_at: _timestamp_pb2.Timestamp
    def __init__(self, epoch: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ..., non_finite_metrics: _Optional[_Iterable[str]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., began_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BestEpoch(_message.Message):
    __slots__ = ("epoch", "value")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    value: float
    def __init__(self, epoch: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...

class BeginTrainingRequest(_message.Message):
    __slots__ = ("job_id", "task_type", "framework", "model_name", "model_config", "training_config", "params", "custom_metrics", "start_epoch", "run_name", "tags", "trainer")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    FRAMEWORK_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRAINING_CONFIG_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_METRICS_FIELD_NUMBER: _ClassVar[int]
    START_EPOCH_FIELD_NUMBER: _ClassVar[int]
    RUN_NAME_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    TRAINER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    task_type: TaskType
    framework: str
    model_name: str
    model_config: _struct_pb2.Struct
    training_config: _struct_pb2.Struct
    params: _containers.ScalarMap[str, str]
    custom_metrics: _containers.RepeatedCompositeFieldContainer[MetricDefinition]
    start_epoch: int
    run_name: str
    tags: _containers.ScalarMap[str, str]
    trainer: TrainerProcess
    def __init__(self, job_id: _Optional[str] = ..., task_type: _Optional[_Union[TaskType, str]] = ..., framework: _Optional[str] = ..., model_name: _Optional[str] = ..., model_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., training_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., params: _Optional[_Mapping[str, str]] = ..., custom_metrics: _Optional[_Iterable[_Union[MetricDefinition, _Mapping]]] = ..., start_epoch: _Optional[int] = ..., run_name: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., trainer: _Optional[_Union[TrainerProcess, _Mapping]] = ...) -> None: ...

class BeginTrainingResponse(_message.Message):
    __slots__ = ("job", "resumed", "catalog", "heartbeat_interval_seconds", "lease_seconds", "process_watched")
    JOB_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PROCESS_WATCHED_FIELD_NUMBER: _ClassVar[int]
    job: Job
    resumed: bool
    catalog: TaskCatalog
    heartbeat_interval_seconds: float
    lease_seconds: float
    process_watched: bool
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., resumed: _Optional[bool] = ..., catalog: _Optional[_Union[TaskCatalog, _Mapping]] = ..., heartbeat_interval_seconds: _Optional[float] = ..., lease_seconds: _Optional[float] = ..., process_watched: _Optional[bool] = ...) -> None: ...

class BeginEpochRequest(_message.Message):
    __slots__ = ("job_id", "epoch", "timestamp", "session_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    epoch: int
    timestamp: _timestamp_pb2.Timestamp
    session_id: str
    def __init__(self, job_id: _Optional[str] = ..., epoch: _Optional[int] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., session_id: _Optional[str] = ...) -> None: ...

class BeginEpochResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EndEpochRequest(_message.Message):
    __slots__ = ("job_id", "epoch", "metrics", "timestamp", "session_id")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    epoch: int
    metrics: _containers.ScalarMap[str, float]
    timestamp: _timestamp_pb2.Timestamp
    session_id: str
    def __init__(self, job_id: _Optional[str] = ..., epoch: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., session_id: _Optional[str] = ...) -> None: ...

class EndEpochResponse(_message.Message):
    __slots__ = ("verdicts", "is_best", "best", "summary")
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    IS_BEST_FIELD_NUMBER: _ClassVar[int]
    BEST_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    verdicts: _containers.RepeatedCompositeFieldContainer[MetricVerdict]
    is_best: bool
    best: BestEpoch
    summary: str
    def __init__(self, verdicts: _Optional[_Iterable[_Union[MetricVerdict, _Mapping]]] = ..., is_best: _Optional[bool] = ..., best: _Optional[_Union[BestEpoch, _Mapping]] = ..., summary: _Optional[str] = ...) -> None: ...

class BatchMetricsBlock(_message.Message):
    __slots__ = ("epoch", "names", "steps", "values")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    names: _containers.RepeatedScalarFieldContainer[str]
    steps: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, epoch: _Optional[int] = ..., names: _Optional[_Iterable[str]] = ..., steps: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class ReportBatchMetricsRequest(_message.Message):
    __slots__ = ("job_id", "blocks", "session_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    blocks: _containers.RepeatedCompositeFieldContainer[BatchMetricsBlock]
    session_id: str
    def __init__(self, job_id: _Optional[str] = ..., blocks: _Optional[_Iterable[_Union[BatchMetricsBlock, _Mapping]]] = ..., session_id: _Optional[str] = ...) -> None: ...

class ReportBatchMetricsResponse(_message.Message):
    __slots__ = ("accepted_points", "rejected_points", "non_finite_points", "rejections", "replaced_points")
    ACCEPTED_POINTS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_POINTS_FIELD_NUMBER: _ClassVar[int]
    NON_FINITE_POINTS_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    REPLACED_POINTS_FIELD_NUMBER: _ClassVar[int]
    accepted_points: int
    rejected_points: int
    non_finite_points: int
    rejections: _containers.RepeatedScalarFieldContainer[str]
    replaced_points: int
    def __init__(self, accepted_points: _Optional[int] = ..., rejected_points: _Optional[int] = ..., non_finite_points: _Optional[int] = ..., rejections: _Optional[_Iterable[str]] = ..., replaced_points: _Optional[int] = ...) -> None: ...

class EndTrainingRequest(_message.Message):
    __slots__ = ("job_id", "outcome", "final_metrics", "error_message", "losses", "session_id")
    class FinalMetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    FINAL_METRICS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    outcome: TrainingOutcome
    final_metrics: _containers.ScalarMap[str, float]
    error_message: str
    losses: ClientLosses
    session_id: str
    def __init__(self, job_id: _Optional[str] = ..., outcome: _Optional[_Union[TrainingOutcome, str]] = ..., final_metrics: _Optional[_Mapping[str, float]] = ..., error_message: _Optional[str] = ..., losses: _Optional[_Union[ClientLosses, _Mapping]] = ..., session_id: _Optional[str] = ...) -> None: ...

class EndTrainingResponse(_message.Message):
    __slots__ = ("job", "verdicts")
    JOB_FIELD_NUMBER: _ClassVar[int]
    VERDICTS_FIELD_NUMBER: _ClassVar[int]
    job: Job
    verdicts: _containers.RepeatedCompositeFieldContainer[MetricVerdict]
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., verdicts: _Optional[_Iterable[_Union[MetricVerdict, _Mapping]]] = ...) -> None: ...

class Artifact(_message.Message):
    __slots__ = ("artifact_path", "size_bytes", "sha256", "source_path", "logged_at")
    ARTIFACT_PATH_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    LOGGED_AT_FIELD_NUMBER: _ClassVar[int]
    artifact_path: str
    size_bytes: int
    sha256: str
    source_path: str
    logged_at: _timestamp_pb2.Timestamp
    def __init__(self, artifact_path: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., source_path: _Optional[str] = ..., logged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LogArtifactRequest(_message.Message):
    __slots__ = ("job_id", "path", "artifact_path", "session_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_PATH_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    path: str
    artifact_path: str
    session_id: str
    def __init__(self, job_id: _Optional[str] = ..., path: _Optional[str] = ..., artifact_path: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class LogArtifactResponse(_message.Message):
    __slots__ = ("artifacts",)
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    def __init__(self, artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ...) -> None: ...

class UploadArtifactHeader(_message.Message):
    __slots__ = ("job_id", "artifact_path", "size_bytes", "sha256", "session_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_PATH_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    artifact_path: str
    size_bytes: int
    sha256: str
    session_id: str
    def __init__(self, job_id: _Optional[str] = ..., artifact_path: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class UploadArtifactRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadArtifactHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[UploadArtifactHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadArtifactResponse(_message.Message):
    __slots__ = ("artifact",)
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    artifact: Artifact
    def __init__(self, artifact: _Optional[_Union[Artifact, _Mapping]] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("job_id", "session_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    session_id: str
    def __init__(self, job_id: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("status", "end_cause", "revived", "lease_expires_at")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    END_CAUSE_FIELD_NUMBER: _ClassVar[int]
    REVIVED_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    status: JobStatus
    end_cause: EndCause
    revived: bool
    lease_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, status: _Optional[_Union[JobStatus, str]] = ..., end_cause: _Optional[_Union[EndCause, str]] = ..., revived: _Optional[bool] = ..., lease_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RetryMlflowSyncRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class RetryMlflowSyncResponse(_message.Message):
    __slots__ = ("retried_items", "job")
    RETRIED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    retried_items: int
    job: Job
    def __init__(self, retried_items: _Optional[int] = ..., job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class RemirrorMlflowRunRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class RemirrorMlflowRunResponse(_message.Message):
    __slots__ = ("queued_items", "dropped_items", "job")
    QUEUED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    queued_items: int
    dropped_items: int
    job: Job
    def __init__(self, queued_items: _Optional[int] = ..., dropped_items: _Optional[int] = ..., job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("status", "task_type", "page_size", "page_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: JobStatus
    task_type: TaskType
    page_size: int
    page_token: str
    def __init__(self, status: _Optional[_Union[JobStatus, str]] = ..., task_type: _Optional[_Union[TaskType, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListEpochsRequest(_message.Message):
    __slots__ = ("job_id", "page_size", "page_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    page_size: int
    page_token: str
    def __init__(self, job_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEpochsResponse(_message.Message):
    __slots__ = ("epochs", "next_page_token")
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    epochs: _containers.RepeatedCompositeFieldContainer[EpochRecord]
    next_page_token: str
    def __init__(self, epochs: _Optional[_Iterable[_Union[EpochRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetBestEpochRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetBestEpochResponse(_message.Message):
    __slots__ = ("primary_metric", "epoch")
    PRIMARY_METRIC_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    primary_metric: str
    epoch: EpochRecord
    def __init__(self, primary_metric: _Optional[str] = ..., epoch: _Optional[_Union[EpochRecord, _Mapping]] = ...) -> None: ...

class ListBatchMetricsRequest(_message.Message):
    __slots__ = ("job_id", "epoch", "page_size", "page_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    epoch: int
    page_size: int
    page_token: str
    def __init__(self, job_id: _Optional[str] = ..., epoch: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBatchMetricsResponse(_message.Message):
    __slots__ = ("blocks", "next_page_token")
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    blocks: _containers.RepeatedCompositeFieldContainer[BatchMetricsBlock]
    next_page_token: str
    def __init__(self, blocks: _Optional[_Iterable[_Union[BatchMetricsBlock, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListArtifactsRequest(_message.Message):
    __slots__ = ("job_id", "page_size", "page_token")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    page_size: int
    page_token: str
    def __init__(self, job_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListArtifactsResponse(_message.Message):
    __slots__ = ("artifacts", "next_page_token")
    ARTIFACTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    artifacts: _containers.RepeatedCompositeFieldContainer[Artifact]
    next_page_token: str
    def __init__(self, artifacts: _Optional[_Iterable[_Union[Artifact, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetMetricCatalogRequest(_message.Message):
    __slots__ = ("task_type",)
    TASK_TYPE_FIELD_NUMBER: _ClassVar[int]
    task_type: TaskType
    def __init__(self, task_type: _Optional[_Union[TaskType, str]] = ...) -> None: ...

class GetMetricCatalogResponse(_message.Message):
    __slots__ = ("catalogs",)
    CATALOGS_FIELD_NUMBER: _ClassVar[int]
    catalogs: _containers.RepeatedCompositeFieldContainer[TaskCatalog]
    def __init__(self, catalogs: _Optional[_Iterable[_Union[TaskCatalog, _Mapping]]] = ...) -> None: ...

class GetMetricSeriesRequest(_message.Message):
    __slots__ = ("job_id", "name", "min_step", "max_step", "max_points")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_STEP_FIELD_NUMBER: _ClassVar[int]
    MAX_STEP_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    name: str
    min_step: int
    max_step: int
    max_points: int
    def __init__(self, job_id: _Optional[str] = ..., name: _Optional[str] = ..., min_step: _Optional[int] = ..., max_step: _Optional[int] = ..., max_points: _Optional[int] = ...) -> None: ...

class SeriesBucket(_message.Message):
    __slots__ = ("first_step", "last_step", "min", "max", "last", "count")
    FIRST_STEP_FIELD_NUMBER: _ClassVar[int]
    LAST_STEP_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    first_step: int
    last_step: int
    min: float
    max: float
    last: float
    count: int
    def __init__(self, first_step: _Optional[int] = ..., last_step: _Optional[int] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., last: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class GetMetricSeriesResponse(_message.Message):
    __slots__ = ("buckets", "full_resolution", "total_points", "name")
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    FULL_RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_POINTS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    buckets: _containers.RepeatedCompositeFieldContainer[SeriesBucket]
    full_resolution: bool
    total_points: int
    name: str
    def __init__(self, buckets: _Optional[_Iterable[_Union[SeriesBucket, _Mapping]]] = ..., full_resolution: _Optional[bool] = ..., total_points: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class WatchHeartbeat(_message.Message):
    __slots__ = ("at",)
    AT_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchJobsRequest(_message.Message):
    __slots__ = ("after_seq", "from_head")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    FROM_HEAD_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    from_head: bool
    def __init__(self, after_seq: _Optional[int] = ..., from_head: _Optional[bool] = ...) -> None: ...

class WatchJobsResponse(_message.Message):
    __slots__ = ("seq", "heartbeat", "events")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    heartbeat: WatchHeartbeat
    events: _containers.RepeatedCompositeFieldContainer[WatchJobsEvent]
    def __init__(self, seq: _Optional[int] = ..., heartbeat: _Optional[_Union[WatchHeartbeat, _Mapping]] = ..., events: _Optional[_Iterable[_Union[WatchJobsEvent, _Mapping]]] = ...) -> None: ...

class WatchJobsEvent(_message.Message):
    __slots__ = ("seq", "job")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    seq: int
    job: Job
    def __init__(self, seq: _Optional[int] = ..., job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "after_seq", "from_head")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    FROM_HEAD_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    after_seq: int
    from_head: bool
    def __init__(self, job_id: _Optional[str] = ..., after_seq: _Optional[int] = ..., from_head: _Optional[bool] = ...) -> None: ...

class WatchJobResponse(_message.Message):
    __slots__ = ("seq", "heartbeat", "events")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    heartbeat: WatchHeartbeat
    events: _containers.RepeatedCompositeFieldContainer[WatchJobEvent]
    def __init__(self, seq: _Optional[int] = ..., heartbeat: _Optional[_Union[WatchHeartbeat, _Mapping]] = ..., events: _Optional[_Iterable[_Union[WatchJobEvent, _Mapping]]] = ...) -> None: ...

class WatchJobEvent(_message.Message):
    __slots__ = ("seq", "job", "epoch", "batch", "artifact", "epoch_job")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_JOB_FIELD_NUMBER: _ClassVar[int]
    seq: int
    job: Job
    epoch: EpochRecord
    batch: BatchMetricsBlock
    artifact: Artifact
    epoch_job: Job
    def __init__(self, seq: _Optional[int] = ..., job: _Optional[_Union[Job, _Mapping]] = ..., epoch: _Optional[_Union[EpochRecord, _Mapping]] = ..., batch: _Optional[_Union[BatchMetricsBlock, _Mapping]] = ..., artifact: _Optional[_Union[Artifact, _Mapping]] = ..., epoch_job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...
