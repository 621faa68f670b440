"""``TrainingCallbacks``: report a training job to the sidecar without ever hurting the trainer.

Every reporting method returns at once. Writes go to an ordered queue that a background thread
sends to the sidecar, retrying until each is acknowledged; batch metrics go to a bounded queue that
the same thread streams in blocks over ``ReportBatchMetrics``. When the sidecar is unreachable the
client warns once, keeps buffering (batch metrics up to ``max_queued_batches`` rows, beyond which
new rows are dropped and counted) and keeps retrying; nothing is raised into the training loop
unless ``strict=True``.
"""

from __future__ import annotations

import atexit
import collections
import enum
import hashlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, cast

import grpc
from google.protobuf import timestamp_pb2

from ._config import (
    TaskTypeLike,
    config_get,
    flatten_params,
    param_text,
    parse_task_type,
    resolve_rank,
    to_struct,
    wire_text,
    world_size,
)
from ._connection import create_channel, resolve_connection
from ._proto.trainingcallbacks.v1 import training_callbacks_pb2 as pb
from ._proto.trainingcallbacks.v1 import training_callbacks_pb2_grpc as pb_grpc
from ._losses import LossLedger, Losses
from ._status_table import SUSPECT_ATTEMPTS
from .errors import (
    BufferFullError,
    ConfigurationError,
    SidecarRejectedError,
    SidecarUnavailableError,
    TrainingCallbacksError,
    status_class,
)

__all__ = ["ClientStats", "Losses", "Outcome", "TrainingCallbacks"]

logger = logging.getLogger("training_callbacks")

#: How a job ended: a name or the contract's ``TrainingOutcome`` value.
Outcome = Literal["completed", "failed", "cancelled"]

_OUTCOMES: dict[str, pb.TrainingOutcome] = {
    "completed": pb.TRAINING_OUTCOME_COMPLETED,
    "success": pb.TRAINING_OUTCOME_COMPLETED,
    "finished": pb.TRAINING_OUTCOME_COMPLETED,
    "failed": pb.TRAINING_OUTCOME_FAILED,
    "cancelled": pb.TRAINING_OUTCOME_CANCELLED,
    "canceled": pb.TRAINING_OUTCOME_CANCELLED,
    "killed": pb.TRAINING_OUTCOME_CANCELLED,
}

#: Size of one UploadArtifact chunk (the contract allows up to 1 MiB).
CHUNK_BYTES = 1024 * 1024
#: Codes on which LogArtifact falls back to streaming the file (no shared volume / outside the roots).
_UPLOAD_FALLBACK_CODES = frozenset(
    {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND}
)
#: Values per block and per ReportBatchMetrics message. Building or serialising a message is one C
#: call that holds the GIL, so they are kept small (a 32K-value message is ~300 KB, well under
#: grpc's default 4 MiB limit, and takes a fraction of a millisecond) to keep the training thread's
#: waits for the GIL short.
_VALUES_PER_BLOCK = 8 * 1024
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_VALUES_PER_MESSAGE = 32 * 1024


def _now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(time.time_ns())
    return ts


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of what the client has queued, sent and lost.

    Attributes:
        queued_rows: Batch rows waiting in the queue.
        inflight_rows: Batch rows sent and not yet acknowledged (re-sent after a failure).
        pending_writes: Epoch, job and artifact writes not yet acknowledged.
        accepted_points: Batch points the sidecar stored.
        rejected_points: Batch points the sidecar refused (see the warnings for why).
        dropped_rows: Batch rows dropped because the queue was full, or not numeric.
        dropped_points: Points in those rows.
        failed_writes: Writes the sidecar refused (INVALID_ARGUMENT, NOT_FOUND, ...).
        unreachable: True while the last attempt to reach the sidecar failed.
    """

    queued_rows: int
    inflight_rows: int
    pending_writes: int
    accepted_points: int
    rejected_points: int
    dropped_rows: int
    dropped_points: int
    failed_writes: int
    unreachable: bool


@dataclass
class _Op:
    """One queued write."""

    kind: str  # begin | epoch_begin | epoch_end | end | artifact | barrier
    request: Any = None
    deadline: float | None = None  # monotonic; None = retry until acknowledged
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    result: Any = None
    attempts: int = 0
    uploaded: set[str] = field(default_factory=set)  # artifact fallback: files already uploaded
    rebegun: bool = False  # BeginTraining was re-sent once because the sidecar did not know the job

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


# Clients alive in this process, so that a fork can reset them and exit can flush them.
_live: weakref.WeakSet[TrainingCallbacks] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_live):
        client._ready = False  # the next call rebuilds the queue, the thread and the channel
        client._forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _flush_at_exit() -> None:
    for client in list(_live):
        try:
            client._flush_at_exit()
        except Exception:  # noqa: BLE001 - exit must not fail because of reporting
            pass


class TrainingCallbacks:
    """Reports one training job to the sidecar.

    Usage follows the callback pattern model developers already use::

        callbacks = TrainingCallbacks("job-42", task_type="image_classification",
                                      training_config={"epochs": 10, "lr": 1e-3})
        with callbacks:                                     # on_train_begin(); failure on exception
            for epoch in range(10):
                callbacks.on_epoch_begin(epoch)
                for step, loss in train_one_epoch():
                    callbacks.on_batch_end(step, {"loss": loss})
                callbacks.on_epoch_end(epoch, {"train_loss": ..., "accuracy": ...})
            callbacks.on_train_end({"accuracy": 0.91})

    Metric names are sent as the framework reports them: the sidecar maps aliases
    (``metrics/mAP50(B)``, ``eval_accuracy``, ...) to canonical names and converts units.

    Args:
        job_id: The job's id (1-128 characters); re-using an id continues that job.
        task_type: ``"image_classification"``, ``"object_detection"``, ``"instance_segmentation"``,
            ``"semantic_segmentation"``, ``"pose_estimation"`` (or the contract's enum value, or an
            ``enum.Enum`` with such a name or value). Read from ``model_config.task_type`` when None.
            A model configuration object in this position is taken as ``model_config`` (the seed's
            ``TrainingCallbacks(job_id, model_config, training_config)`` order).
        model_config: Model configuration: a mapping, dataclass or object (``framework`` and
            ``model_name`` are read from it when not given).
        training_config: Training configuration (epochs, batch size, optimiser, ...).
        params: Flat parameters mirrored to MLflow; by default ``training_config`` flattened.
        address: ``host:port`` or ``unix:/path``; defaults to ``$TRAINING_CALLBACKS_ADDRESS``, else
            ``127.0.0.1:50051``.
        token: Bearer token for a sidecar started with ``--auth-token-file``; defaults to
            ``$TRAINING_CALLBACKS_TOKEN``. ``token_file``: a file holding it (``$TRAINING_CALLBACKS_TOKEN_FILE``).
        ca_file: PEM CA bundle of a sidecar serving TLS (turns TLS on); defaults to ``$TRAINING_CALLBACKS_CA_FILE``.
        client_cert_file: With ``client_key_file``, a client certificate for mutual TLS
            (``$TRAINING_CALLBACKS_CLIENT_CERT_FILE`` / ``_KEY_FILE``). See docs/security.md.
        framework: Framework name, e.g. ``"timm"``.
        model_name: Model name, e.g. ``"resnet18"``.
        custom_metrics: Definitions of custom metrics (``MetricDefinition`` messages or dicts with
            ``name``, ``label``, ``format`` ("percent"/"float"/"int"), ``higher_is_better``,
            ``description``).
        start_epoch: The epoch training (re)starts from.
        run_name: Name of the job's MLflow run; default ``job_<job_id>``. A resume with another name
            renames the run.
        tags: Extra MLflow run tags (keys not ``mlflow.*`` nor ``training_callbacks.*``; the proto
            says the limits).
        strict: Raise errors into the caller instead of warning (for tests): writes wait for their
            acknowledgement, a full queue raises :class:`BufferFullError`.
        rank: Global rank of this process; read from ``$RANK`` / ``$LOCAL_RANK`` when None.
        all_ranks: Report from every rank, not only rank 0. Ranks other than 0 then report to the
            job ``"{job_id}-rank{rank}"``.
        enabled: Force reporting on or off (overrides the rank rule).
        max_queued_batches: Bound of the batch queue, in rows (one ``on_batch_end`` call is a row).
        flush_timeout: How long ``on_train_end`` waits for everything to be acknowledged (seconds).
        call_timeout: Deadline of one RPC (seconds).
        flush_interval: How often the background sender sends queued batch rows (seconds).
        verbose: Log the sidecar's one-line summary of each epoch at INFO level.
    """

    def __init__(
        self,
        job_id: str,
        task_type: TaskTypeLike | None = None,
        model_config: Any = None,
        training_config: Any = None,
        params: Mapping[str, Any] | None = None,
        *,
        address: str | None = None,
        token: str | None = None,
        token_file: str | None = None,
        ca_file: str | None = None,
        client_cert_file: str | None = None,
        client_key_file: str | None = None,
        framework: str | None = None,
        model_name: str | None = None,
        custom_metrics: list[Any] | None = None,
        start_epoch: int = 0,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        strict: bool = False,
        rank: int | None = None,
        all_ranks: bool = False,
        enabled: bool | None = None,
        max_queued_batches: int = 100_000,
        flush_timeout: float = 30.0,
        call_timeout: float = 10.0,
        flush_interval: float = 0.2,
        verbose: bool = False,
        db_session: Any = None,  # accepted for compatibility with the in-process version; unused
    ) -> None:
        del db_session
        if task_type is not None and not isinstance(task_type, (int, str, enum.Enum)) and training_config is None:
            # TrainingCallbacks(job_id, model_config, training_config[, db_session]): the seed's order
            task_type, model_config, training_config = None, task_type, model_config
            if params is not None and not isinstance(params, Mapping):
                params = None  # a positional db_session
        if not isinstance(job_id, str) or not job_id:
            raise ConfigurationError("job_id must be a non-empty string")
        if max_queued_batches < 1:
            raise ConfigurationError("max_queued_batches must be at least 1")
        self.connection = resolve_connection(
            address,
            token=token,
            token_file=token_file,
            ca_file=ca_file,
            client_cert_file=client_cert_file,
            client_key_file=client_key_file,
        )
        self.address = self.connection.address
        self.rank = resolve_rank(rank)
        self.world_size = world_size()
        self.job_id = job_id if self.rank == 0 or not all_ranks else f"{job_id}-rank{self.rank}"
        self.enabled = enabled if enabled is not None else (self.rank == 0 or all_ranks)
        self.strict = strict
        self.model_config = model_config
        self.training_config = training_config
        self.params = params
        self.task_type = parse_task_type(task_type if task_type is not None else config_get(model_config, "task_type"))
        self.framework = framework if framework is not None else str(config_get(model_config, "framework") or "")
        self.model_name = model_name if model_name is not None else str(config_get(model_config, "model_name") or "")
        self.custom_metrics = list(custom_metrics or [])
        self.start_epoch = int(start_epoch)
        self.run_name = run_name or ""
        self.tags = {str(k): str(v) for k, v in (tags or {}).items()}
        self.max_queued_batches = int(max_queued_batches)
        self.flush_timeout = float(flush_timeout)
        self.call_timeout = float(call_timeout)
        self.flush_interval = float(flush_interval)
        self.verbose = verbose
        self.exit_flush_timeout = 5.0
        self._epoch = self.start_epoch
        self._begin_state = "none"  # none | queued | acked | refused
        self._ended = False
        self._init_runtime()

    # Pickling (e.g. into a spawned DDP worker) keeps the configuration and the job's state; the
    # queue, thread and channel are process-local and start afresh on the other side.
    _PICKLED = (
        "address", "connection", "rank", "world_size", "job_id", "enabled", "strict", "model_config", "training_config",
        "params", "task_type", "framework", "model_name", "custom_metrics", "start_epoch",
        "run_name", "tags", "max_queued_batches", "flush_timeout", "call_timeout", "flush_interval", "verbose",
        "exit_flush_timeout", "_epoch", "_begin_state", "_ended",
    )  # fmt: skip

    def __getstate__(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self._PICKLED}
        if state["_begin_state"] == "queued":
            state["_begin_state"] = "none"  # it may not have arrived: send it again (idempotent)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        self._forked = False
        self._warned: set[str] = set()
        self._catalog: pb.TaskCatalog | None = None
        self._job: pb.Job | None = None
        self._resumed = False
        self._last_epoch_response: pb.EndEpochResponse | None = None
        self._deferred_error: BaseException | None = None  # strict mode: raised at the next call
        self._begin_error: BaseException | None = None
        self._reset_transport()
        _live.add(self)

    # ------------------------------------------------------------------------------------------
    # Hot path

    def on_batch_end(self, step: int, metrics: Mapping[str, float], epoch: int | None = None) -> None:
        """Queues one row of batch metrics and returns (about a microsecond; never blocks).

        Args:
            step: Global step of the row (monotonic over the whole training).
            metrics: Metric name → number (floats, ints, numpy or 0-d torch scalars; prefer
                ``loss.item()`` over a CUDA tensor). The mapping is copied.
            epoch: The epoch the step belongs to; defaults to the last ``on_epoch_begin`` epoch.

        Consecutive rows with the same names are sent as one block. When the queue holds
        ``max_queued_batches`` rows the row is dropped and counted (strict mode raises).
        """
        if not self._ready and not self._prepare_batch():
            return
        queue = self._batches
        n = len(queue)
        if n >= self.max_queued_batches:
            self._drop(metrics)
            return
        queue.append((self._epoch if epoch is None else epoch, step, dict(metrics)))
        if n == self._wake_rows:
            self._wake.set()

    # ------------------------------------------------------------------------------------------
    # Lifecycle

    def on_train_begin(self, config: Mapping[str, Any] | None = None) -> None:
        """Begins the job (or continues it, if the id exists). Returns at once.

        Args:
            config: Extra training configuration, merged into ``training_config``.

        A second call is ignored. Reporting methods called before this one begin the job implicitly.
        """
        if config:
            base = self.training_config
            if base is None:
                self.training_config = dict(config)
            elif isinstance(base, Mapping):
                self.training_config = {**base, **config}
            else:
                self.training_config = {"config": base, **config}
        if not self._usable():
            return
        with self._lock:
            if self._begin_state != "none":
                return
            if self.task_type == pb.TASK_TYPE_UNSPECIFIED:
                self._fail(ConfigurationError("task_type is not set (argument or model_config.task_type)"), "no-task")
                self.enabled = False
                return
            self._begin_state = "queued"
        self._submit(_Op("begin", self._begin_request()))

    def on_epoch_begin(self, epoch: int) -> None:
        """Marks the start of ``epoch`` (0-based); batch rows default to this epoch."""
        self._epoch = int(epoch)
        if not self._usable():
            return
        self._ensure_begun()
        self._submit(_Op("epoch_begin", pb.BeginEpochRequest(job_id=self.job_id, epoch=int(epoch), timestamp=_now())))

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, Any] | None = None) -> None:
        """Reports the metrics of a finished epoch (0-based). Re-reporting an epoch replaces it.

        Args:
            epoch: The epoch number.
            metrics: Metric name → number, named as the framework reports them. ``None`` values and
                non-numeric values are left out (a missing value stays missing); NaN is sent as is.
        """
        self._epoch = int(epoch) + 1
        if not self._usable():
            return
        self._ensure_begun()
        request = pb.EndEpochRequest(
            job_id=self.job_id, epoch=int(epoch), metrics=self._numeric(metrics, "epoch"), timestamp=_now()
        )
        self._submit(_Op("epoch_end", request))

    def on_train_end(
        self,
        final_metrics: Mapping[str, Any] | None = None,
        *,
        outcome: Outcome | int | None = None,
        error: BaseException | str | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Ends the job and waits (at most ``timeout``, default ``flush_timeout``) until everything
        queued is acknowledged.

        Args:
            final_metrics: Final metrics (normalised like epoch metrics).
            outcome: ``"completed"`` (default), ``"failed"`` or ``"cancelled"``.
            error: An exception or message; implies ``outcome="failed"`` unless given.
            timeout: Flush deadline in seconds.

        Returns:
            True when every report of the job was acknowledged in time and nothing was lost. What
            was lost (see :meth:`losses`) is logged as a warning and sent with EndTraining, so the
            job shows it. Transient failures are retried until ``timeout`` minus a reserve for
            EndTraining itself (the smaller of ``call_timeout`` and half of ``timeout``); what is
            still unacknowledged then is given up and counted. Only the first call ends the job;
            later calls return at once.
        """
        if not self._usable() or self._ended:
            return True
        self._ensure_begun()
        code = self._outcome(outcome, error)
        message = ""
        if isinstance(error, BaseException):
            message = f"{type(error).__name__}: {error}"
        elif error:
            message = str(error)
        final = self._numeric(final_metrics, "final")
        request = pb.EndTrainingRequest(job_id=self.job_id, outcome=code, final_metrics=final, error_message=message)
        self._ended = True
        self._ready = False
        timeout = self.flush_timeout if timeout is None else max(float(timeout), 0.0)
        self._give_up_at = time.monotonic() + timeout - min(self.call_timeout, timeout / 2)
        op = _Op("end", request)
        self._submit(op, wait=False)
        delivered = self._wait(op, timeout, what="on_train_end")
        losses = self.losses()
        if losses:
            logger.warning("training-callbacks: job %s lost reports: %s", self.job_id, losses.describe())
        return delivered and not losses

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until everything queued so far is acknowledged, at most ``timeout`` seconds.

        Returns:
            True when everything was acknowledged in time.
        """
        if not self._usable():
            return True
        op = _Op("barrier")
        self._submit(op, wait=False)
        return self._wait(op, self.flush_timeout if timeout is None else timeout, what="flush")

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str = "") -> None:
        """Logs a file into the run's artifacts, in directory ``artifact_path`` (e.g. ``"checkpoints"``).

        The sidecar reads the file by path when it shares a volume with the trainer; otherwise
        (PERMISSION_DENIED / FAILED_PRECONDITION) the client streams it with UploadArtifact. The
        write is queued: the file must stay in place until ``on_train_end``.
        """
        self._queue_artifact(path, artifact_path, directory=False)

    def log_artifacts(self, dir_path: str | os.PathLike[str], artifact_path: str = "") -> None:
        """Logs every file under ``dir_path`` into directory ``artifact_path`` of the run's artifacts."""
        self._queue_artifact(dir_path, artifact_path, directory=True)

    # ------------------------------------------------------------------------------------------
    # Context manager

    def __enter__(self) -> TrainingCallbacks:
        self.on_train_begin()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        self._end_from_block(exc)
        return False

    def reporting_failures(self) -> _FailureGuard:
        """A context manager that ends the job as failed when its block raises (and re-raises),
        without beginning it on entry: for adapters, where the framework's events begin the job.
        """
        return _FailureGuard(self)

    def _end_from_block(self, exc: BaseException | None) -> None:
        if exc is None:
            if not self._ended:
                self.on_train_end()
            return
        if self._ended:
            return
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            self.on_train_end()  # sys.exit(0) is a normal end
            return
        outcome: Outcome = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
        try:
            self.on_train_end(outcome=outcome, error=exc)
        except TrainingCallbacksError as err:
            # Strict mode: the training exception is the one that matters; it propagates.
            logger.warning("training-callbacks: could not record the failure of job %s: %s", self.job_id, err)

    # ------------------------------------------------------------------------------------------
    # Introspection

    @property
    def catalog(self) -> pb.TaskCatalog | None:
        """The task's metric catalog, as returned by the sidecar at BeginTraining (None until then)."""
        return self._catalog

    @property
    def job(self) -> pb.Job | None:
        """The job as last returned by the sidecar (BeginTraining, then EndTraining)."""
        return self._job

    @property
    def resumed(self) -> bool:
        """True when the sidecar continued an existing job with this id."""
        return self._resumed

    @property
    def last_epoch_response(self) -> pb.EndEpochResponse | None:
        """The sidecar's answer to the last acknowledged epoch report (verdicts, best epoch, summary)."""
        return self._last_epoch_response

    def metric_catalog(self, timeout: float | None = None) -> pb.TaskCatalog:
        """The task's metric catalog from the sidecar (GetMetricCatalog); raises when unreachable."""
        if self._catalog is not None:
            return self._catalog
        from .client import SidecarClient

        with SidecarClient(self.address, timeout=timeout or self.call_timeout) as client:
            self._catalog = client.get_metric_catalog(self.task_type)
        return self._catalog

    def stats(self) -> ClientStats:
        """Counts of queued, sent and lost reports."""
        losses = self.losses()
        with self._lock:
            return ClientStats(
                queued_rows=len(self._batches),
                inflight_rows=len(self._inflight),
                pending_writes=sum(1 for op in list(self._ops) if op.kind != "barrier"),
                accepted_points=self._accepted_points,
                rejected_points=losses.refused_points,
                dropped_rows=self._dropped_rows,
                dropped_points=losses.dropped_points,
                failed_writes=losses.failed_writes,
                unreachable=self._unreachable,
            )

    def losses(self) -> Losses:
        """What could not be delivered so far, with the reasons (sent with EndTraining)."""
        return self._losses.snapshot(
            queue_full_points=self._dropped_points,
            queue_full_reason=f"batch queue full ({self.max_queued_batches} rows): raise max_queued_batches or report less often",
        )

    def close(self) -> None:
        """Stops the background sender without waiting (queued reports are lost)."""
        self._stop.set()
        self._wake.set()
        _live.discard(self)

    # ------------------------------------------------------------------------------------------
    # Internals: state

    def _reset_transport(self) -> None:
        """(Re)creates everything that must not cross a fork: queues, thread, channel."""
        self._pid = os.getpid()
        self._batches: collections.deque[tuple[int, int, dict[str, Any]]] = collections.deque()
        self._inflight: list[tuple[int, int, dict[str, Any]]] = []
        self._inflight_requests: tuple[list[pb.ReportBatchMetricsRequest], int] = ([], 0)
        self._ops: collections.deque[_Op] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._wake_rows = max(1, min(8192, self.max_queued_batches // 4))
        self._thread: threading.Thread | None = None
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.TrainingCallbacksStub | None = None
        self._accepted_points = 0
        self._losses = LossLedger()
        self._dropped_rows = 0
        self._dropped_points = 0  # queue full; counted in the training thread, without a lock
        self._give_up_at: float | None = None  # set by on_train_end: monotonic time to stop retrying
        self._last_transient = ""  # the last transient failure, for the give-up reason
        self._unreachable = False
        self._backoff = 0.0
        self._rebegin = False
        self._batch_rebegun = False
        self._ready = False

    def _usable(self) -> bool:
        """True when this process reports; rebuilds the transport after a fork."""
        if not self.enabled:
            return False
        if self._pid != os.getpid() or self._forked:
            self._after_fork()
        return True

    def _after_fork(self) -> None:
        with self._lock:
            if self._pid == os.getpid() and not self._forked:
                return
            self._forked = False
            self._reset_transport()
            if self._begin_state == "queued":  # the parent's BeginTraining may never have arrived
                self._begin_state = "none"
        logger.debug("training-callbacks: fork detected; new queue and channel in pid %d", os.getpid())

    def _prepare_batch(self) -> bool:
        """Slow path of on_batch_end: start-up, fork, disabled, ended."""
        if not self._usable():
            return False
        if self._ended:
            self._warn_once("after-end", "training-callbacks: on_batch_end after on_train_end is ignored")
            return False
        self._ensure_begun()
        self._ensure_thread()
        self._ready = not self._ended
        return self._ready

    def _ensure_begun(self) -> None:
        if self._begin_state == "none":
            self.on_train_begin()

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="training-callbacks-sender", daemon=True)
            self._thread.start()

    def _drop(self, metrics: Mapping[str, Any]) -> None:
        self._dropped_rows += 1
        self._dropped_points += len(metrics)
        if self.strict:
            raise BufferFullError(f"batch queue full ({self.max_queued_batches} rows)")
        # (the sender thread warns: logging I/O does not belong in the training thread)

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        logger.warning(message, *args)

    def _fail(self, error: BaseException, key: str) -> None:
        """A problem the caller should know about: raised in strict mode, warned once otherwise."""
        if self.strict:
            raise error
        self._warn_once(key, "training-callbacks: %s", error)

    def _numeric(self, metrics: Mapping[str, Any] | None, what: str) -> dict[str, float]:
        out: dict[str, float] = {}
        if not metrics:
            return out
        for name, value in metrics.items():
            if value is None:
                continue
            try:
                out[wire_text(str(name))] = float(value)
            except (TypeError, ValueError):
                self._warn_once(
                    f"non-numeric:{what}:{name}",
                    "training-callbacks: %s metric %r has a non-numeric value %r; left out",
                    what,
                    name,
                    value,
                )
        return out

    @staticmethod
    def _outcome(outcome: Outcome | int | None, error: BaseException | str | None) -> pb.TrainingOutcome:
        if outcome is None:
            return pb.TRAINING_OUTCOME_FAILED if error else pb.TRAINING_OUTCOME_COMPLETED
        if isinstance(outcome, int):
            return cast(pb.TrainingOutcome, outcome)
        key = outcome.value if isinstance(outcome, enum.Enum) else str(outcome)
        try:
            return _OUTCOMES[key.strip().lower()]
        except KeyError:
            raise ConfigurationError(f"unknown outcome {outcome!r}; use completed, failed or cancelled") from None

    def _begin_request(self) -> pb.BeginTrainingRequest:
        params = self.params if self.params is not None else flatten_params(self.training_config)
        custom = []
        for definition in self.custom_metrics:
            if isinstance(definition, pb.MetricDefinition):
                custom.append(definition)
            else:
                d = dict(definition)
                fmt = d.get("format", "float")
                if isinstance(fmt, str):
                    d["format"] = pb.MetricFormat.Value("METRIC_FORMAT_" + fmt.upper())
                custom.append(pb.MetricDefinition(**d))
        request = pb.BeginTrainingRequest(
            job_id=self.job_id,
            task_type=self.task_type,
            framework=self.framework,
            model_name=self.model_name,
            params={str(k): param_text(v) for k, v in (params or {}).items()},
            custom_metrics=custom,
            start_epoch=self.start_epoch,
            run_name=self.run_name,
            tags=self.tags,
        )
        model_config = to_struct(self.model_config)
        if model_config is not None:
            request.model_config.CopyFrom(model_config)
        training_config = to_struct(self.training_config)
        if training_config is not None:
            request.training_config.CopyFrom(training_config)
        return request

    def _queue_artifact(self, path: str | os.PathLike[str], artifact_path: str, *, directory: bool) -> None:
        if not self._usable():
            return
        local = os.path.abspath(os.fspath(path))
        ok = os.path.isdir(local) if directory else os.path.isfile(local)
        if not ok:
            kind = "directory" if directory else "file"
            self._fail(FileNotFoundError(f"artifact {kind} {local} does not exist"), f"artifact:{local}")
            return
        self._ensure_begun()
        request = pb.LogArtifactRequest(job_id=self.job_id, path=local, artifact_path=artifact_path.strip("/"))
        self._submit(_Op("artifact", request))

    # ------------------------------------------------------------------------------------------
    # Internals: submitting and waiting

    def _submit(self, op: _Op, *, wait: bool | None = None) -> None:
        if self._ended and op.kind not in ("end", "barrier"):
            self._warn_once(f"after-end:{op.kind}", "training-callbacks: %s after on_train_end is ignored", op.kind)
            return
        if self.strict and self._deferred_error is not None:
            error, self._deferred_error = self._deferred_error, None
            raise error
        wait = self.strict if wait is None else wait
        if wait:
            op.deadline = time.monotonic() + self.call_timeout
        self._ensure_thread()
        self._ops.append(op)
        self._wake.set()
        if wait:
            self._wait(op, self.call_timeout + 1.0, what=op.kind)

    def _wait(self, op: _Op, timeout: float, *, what: str) -> bool:
        if not op.done.wait(max(timeout, 0.0)):
            stats = self.stats()
            message = (
                f"{what}: the sidecar at {self.address} did not acknowledge within {timeout:g} s "
                f"({stats.pending_writes} writes and {stats.queued_rows + stats.inflight_rows} batch rows pending; "
                "the client keeps retrying while the process runs)"
            )
            if self.strict:
                raise SidecarUnavailableError(message)
            logger.warning("training-callbacks: %s", message)
            return False
        if op.error is not None:
            if self.strict:
                raise op.error
            return False
        if self.strict and self._deferred_error is not None:
            error, self._deferred_error = self._deferred_error, None
            raise error
        return True

    def _flush_at_exit(self) -> None:
        if self._pid != os.getpid() or not self.enabled or self._ended:
            return  # (on_train_end has already waited for its flush)
        if not self._ops and not self._batches and not self._inflight:
            return
        if self._thread is None or not self._thread.is_alive():
            return
        op = _Op("barrier")
        self._ops.append(op)
        self._wake.set()
        if not op.done.wait(self.exit_flush_timeout):
            logger.warning(
                "training-callbacks: exiting with reports of job %s not delivered to %s", self.job_id, self.address
            )

    # ------------------------------------------------------------------------------------------
    # Internals: the background sender

    @property
    def _client_stub(self) -> pb_grpc.TrainingCallbacksStub:
        if self._stub is None:
            self._channel = create_channel(self.connection)
            self._stub = pb_grpc.TrainingCallbacksStub(self._channel)
        return self._stub

    def _run(self) -> None:
        pid = os.getpid()
        while not self._stop.is_set() and pid == os.getpid():
            if self._backoff:
                self._stop.wait(self._backoff)
            else:
                self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                ok = self._pump()
            except Exception as err:  # noqa: BLE001 - the sender must survive anything
                logger.exception("training-callbacks: sender error (will retry): %s", err)
                ok = False
            if ok:
                self._backoff = 0.0
            else:
                self._backoff = min(max(self._backoff * 2, 0.1), 2.0)
            if self._ended and ok and not self._ops and not self._batches and not self._inflight:
                break
        if self._channel is not None and pid == os.getpid():
            self._channel.close()
            self._channel = None
            self._stub = None

    def _pump(self) -> bool:
        """Sends what is queued. False on a transient failure (the caller backs off and retries)."""
        if self._dropped_rows and "drop" not in self._warned:
            self._warn_once(
                "drop",
                "training-callbacks: batch queue full (%d rows); dropping batch metrics until the sidecar "
                "catches up (training continues; drops are counted)",
                self.max_queued_batches,
            )
        if self._rebegin:
            self._rebegin = False
            self._begin_state = "queued"
            self._ops.appendleft(_Op("begin", self._begin_request()))
        if self._give_up_at is not None and time.monotonic() >= self._give_up_at:
            self._give_up()
        while self._ops:
            op = self._ops[0]
            if op.deadline is not None and time.monotonic() > op.deadline and not op.done.is_set():
                self._ops.popleft()
                op.finish(error=SidecarUnavailableError(f"{op.kind}: not acknowledged in time"))
                continue
            if self._begin_state == "refused" and op.kind not in ("begin", "barrier"):
                # The job does not exist (its BeginTraining was refused): refusing locally spares the
                # sidecar, and the log, one refusal per report.
                self._ops.popleft()
                self._losses.add(f"{op.kind}: not sent, the job was refused", failed_writes=1)
                op.finish(error=self._begin_error)
                continue
            if op.kind != "begin" and not self._send_batches():
                return False
            if not self._send_op(op):
                return False
            self._ops.popleft()
        return self._send_batches()

    def _rpc_failed(self, err: grpc.RpcError, op: _Op | None, what: str) -> bool:
        """Classifies a failed RPC by the shared status table. True when it is to be retried:
        transient, or suspect with attempts left (what happens at the flush deadline: _give_up)."""
        code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
        details = (err.details() if hasattr(err, "details") else "") or ""
        attempts = op.attempts if op is not None else self._batch_attempts
        kind = status_class(err)
        if kind == "transient" or (kind == "suspect" and attempts < SUSPECT_ATTEMPTS):
            self._last_transient = f"{code.name}: {details}"
            if not self._unreachable:
                self._unreachable = True
                self._warn_once(
                    "unreachable",
                    "training-callbacks: sidecar at %s unreachable (%s: %s); buffering reports (up to %d batch "
                    "rows) and retrying in the background; training continues",
                    self.address,
                    code.name,
                    details,
                    self.max_queued_batches,
                )
            return True
        return False

    def _give_up(self) -> None:
        """on_train_end's flush deadline (less EndTraining's reserve) has passed: every write still
        unacknowledged, except the job's begin and end, is given up and counted, so that EndTraining
        goes out with the losses."""
        why = f"not acknowledged by on_train_end's flush deadline (last failure {self._last_transient or 'none'})"
        for _ in range(len(self._ops)):  # in place: the training thread may append meanwhile
            op = self._ops.popleft()
            if op.kind in ("begin", "end"):
                self._ops.append(op)
                continue
            if op.kind != "barrier":
                self._losses.add(f"{op.kind}: {why}", failed_writes=1)
            op.finish(error=SidecarUnavailableError(f"{op.kind}: {why}"))
        with self._lock:
            rows = self._inflight + list(self._batches)
            self._inflight = []
            self._batches.clear()
        if rows:
            self._dropped_rows += len(rows)
            self._losses.add(f"batch points: {why}", dropped_points=sum(len(m) for _, _, m in rows))

    def _job_lost(self, code: grpc.StatusCode, allowed: bool) -> bool:
        """NOT_FOUND for a job the sidecar acknowledged: it lost it (restarted on a new database?).
        BeginTraining is sent again (it is idempotent) before the write is retried, once per write."""
        if code != grpc.StatusCode.NOT_FOUND or not allowed or self._begin_state != "acked":
            return False
        self._warn_once(
            "job-lost",
            "training-callbacks: the sidecar at %s does not know job %s any more (restarted with another "
            "database?); beginning it again",
            self.address,
            self.job_id,
        )
        self._rebegin = True
        return True

    def _reached(self) -> None:
        if self._unreachable:
            self._unreachable = False
            logger.info("training-callbacks: sidecar at %s reachable again; sending buffered reports", self.address)

    def _send_op(self, op: _Op) -> bool:
        """Sends one write. True when it is done (acknowledged or refused for good)."""
        if op.kind == "barrier":
            op.finish()
            return True
        op.attempts += 1
        stub = self._client_stub
        try:
            if op.kind == "begin":
                response = stub.BeginTraining(op.request, timeout=self.call_timeout)
                self._job, self._catalog, self._resumed = response.job, response.catalog, response.resumed
                self._begin_state = "acked"
            elif op.kind == "epoch_begin":
                response = stub.BeginEpoch(op.request, timeout=self.call_timeout)
            elif op.kind == "epoch_end":
                response = stub.EndEpoch(op.request, timeout=self.call_timeout)
                self._after_epoch(op.request, response)
            elif op.kind == "end":
                # Everything queued before the end is settled now (acknowledged, refused or given up).
                op.request.losses.CopyFrom(self.losses().to_proto())
                response = stub.EndTraining(op.request, timeout=self.call_timeout)
                self._job = response.job
            elif op.kind == "artifact":
                response = self._send_artifact(stub, op)
            else:  # pragma: no cover
                raise AssertionError(op.kind)
        except grpc.RpcError as err:
            if self._rpc_failed(err, op, op.kind):
                return False
            self._reached()
            code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
            if self._job_lost(code, op.kind != "begin" and not op.rebegun):
                op.rebegun = True
                return False
            error = SidecarRejectedError(code, (err.details() if hasattr(err, "details") else "") or str(err))
            self._losses.add(f"{op.kind} refused: {error}", failed_writes=1)
            if op.kind == "begin":
                self._begin_state = "refused"
                self._begin_error = error
                logger.warning(
                    "training-callbacks: job %s refused by the sidecar (%s); nothing of it will be reported",
                    self.job_id,
                    error,
                )
            else:
                self._warn_once(
                    f"refused:{op.kind}:{code.name}",
                    "training-callbacks: %s of job %s refused by the sidecar (%s); dropped and counted, later "
                    "reports go on",
                    op.kind,
                    self.job_id,
                    error,
                )
            op.finish(error=error)
            if op.deadline is None and self.strict:
                self._deferred_error = error
            return True
        except OSError as err:  # artifact vanished or unreadable
            self._losses.add(f"{op.kind} failed: {err}", failed_writes=1)
            logger.warning("training-callbacks: %s of job %s failed: %s", op.kind, self.job_id, err)
            op.finish(error=err)
            return True
        self._reached()
        op.finish(result=response)
        return True

    def _after_epoch(self, request: pb.EndEpochRequest, response: pb.EndEpochResponse) -> None:
        self._last_epoch_response = response
        for verdict in response.verdicts:
            if verdict.tier == pb.METRIC_TIER_REJECTED:
                self._warn_once(
                    f"verdict:{verdict.reported_name}",
                    "training-callbacks: metric %r rejected by the sidecar: %s",
                    verdict.reported_name,
                    verdict.reason,
                )
        if self.verbose and response.summary:
            logger.info("%s", response.summary)

    # -- artifacts ------------------------------------------------------------------------------

    def _send_artifact(self, stub: pb_grpc.TrainingCallbacksStub, op: _Op) -> Any:
        request: pb.LogArtifactRequest = op.request
        if not op.uploaded:  # not yet falling back
            try:
                return stub.LogArtifact(request, timeout=self.call_timeout)
            except grpc.RpcError as err:
                if err.code() not in _UPLOAD_FALLBACK_CODES or not os.path.exists(request.path):
                    raise
                logger.debug("training-callbacks: LogArtifact refused (%s); uploading %s", err.code().name, request.path)
        uploads: list[tuple[str, str]] = []
        if os.path.isdir(request.path):
            for root, dirs, files in os.walk(request.path):
                dirs.sort()
                for name in sorted(files):
                    full = os.path.join(root, name)
                    rel = os.path.relpath(full, request.path).replace(os.sep, "/")
                    uploads.append((full, rel))
        else:
            uploads.append((request.path, os.path.basename(request.path)))
        op.uploaded.add("")  # marks the fallback as chosen
        stored = []
        for full, rel in uploads:
            if full in op.uploaded:
                continue
            destination = f"{request.artifact_path}/{rel}" if request.artifact_path else rel
            response = self._upload_file(stub, full, destination)
            op.uploaded.add(full)
            stored.append(response.artifact)
        return pb.LogArtifactResponse(artifacts=stored)

    def _upload_file(self, stub: pb_grpc.TrainingCallbacksStub, path: str, destination: str) -> pb.UploadArtifactResponse:
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
        header = pb.UploadArtifactHeader(
            job_id=self.job_id, artifact_path=destination, size_bytes=size, sha256=digest.hexdigest()
        )

        def messages() -> Iterator[pb.UploadArtifactRequest]:
            yield pb.UploadArtifactRequest(header=header)
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK_BYTES):
                    yield pb.UploadArtifactRequest(chunk=chunk)

        timeout = self.call_timeout + size / (20 * 1024 * 1024)  # allow 20 MiB/s
        return stub.UploadArtifact(messages(), timeout=timeout)

    # -- batch metrics --------------------------------------------------------------------------

    _batch_attempts = 0

    def _send_batches(self) -> bool:
        """Streams every queued row. False on a transient failure (rows are kept and re-sent)."""
        if self._begin_state != "acked":
            if self._begin_state == "refused":  # nothing can be stored for this job
                with self._lock:
                    rows = self._inflight + list(self._batches)
                    self._inflight = []
                    self._batches.clear()
                if rows:
                    self._warn_once("no-job", "training-callbacks: job %s was refused; batch metrics dropped", self.job_id)
                    self._dropped_rows += len(rows)
                    self._losses.add(
                        f"batch points: the job was refused ({self._begin_error})",
                        dropped_points=sum(len(m) for _, _, m in rows),
                    )
            return True
        stub = self._client_stub
        while True:
            if not self._inflight:
                take = min(len(self._batches), 50_000)
                if take == 0:
                    return True
                popleft = self._batches.popleft
                self._inflight = [popleft() for _ in range(take)]
                self._batch_attempts = 0
                self._batch_rebegun = False
                try:
                    self._inflight_requests = self._build_requests(self._inflight)
                except Exception as err:  # noqa: BLE001 - a bad row must not wedge the sender
                    logger.warning("training-callbacks: %d batch rows dropped: %s", len(self._inflight), err)
                    self._losses.add(
                        f"batch rows not encodable: {err}", dropped_points=sum(len(m) for _, _, m in self._inflight)
                    )
                    with self._lock:
                        self._dropped_rows += len(self._inflight)
                        self._inflight = []
                    continue
            elif self._unreachable and not self._probe(stub):
                return False  # don't stream (and serialise) everything again just to hear UNAVAILABLE
            requests, points = self._inflight_requests
            self._batch_attempts += 1
            try:
                response = stub.ReportBatchMetrics(iter(requests), timeout=self.call_timeout * 3)
            except grpc.RpcError as err:
                if self._rpc_failed(err, None, "batch"):
                    return False
                self._reached()
                if self._job_lost(err.code(), not self._batch_rebegun):
                    self._batch_rebegun = True
                    return False
                logger.warning(
                    "training-callbacks: %d batch points of job %s refused by the sidecar: %s: %s",
                    points,
                    self.job_id,
                    err.code().name,
                    err.details(),
                )
                self._losses.add(f"batch points refused: {err.code().name}: {err.details()}", refused_points=points)
                with self._lock:
                    self._inflight = []
                if self.strict:
                    self._deferred_error = SidecarRejectedError(err.code(), err.details() or "")
                continue
            self._reached()
            with self._lock:
                self._accepted_points += response.accepted_points
                self._inflight = []
            if response.rejected_points:
                self._losses.add(
                    "batch points refused: " + ("; ".join(response.rejections) or "no reason given"),
                    refused_points=response.rejected_points,
                )
            for reason in response.rejections:
                self._warn_once(f"rejection:{reason}", "training-callbacks: batch points rejected: %s", reason)
            if self.strict and response.rejected_points:
                self._deferred_error = SidecarRejectedError(
                    grpc.StatusCode.INVALID_ARGUMENT, "; ".join(response.rejections) or "batch points rejected"
                )

    def _probe(self, stub: pb_grpc.TrainingCallbacksStub) -> bool:
        """A cheap call to see whether the sidecar is back."""
        try:
            stub.GetJob(pb.GetJobRequest(job_id=self.job_id), timeout=self.call_timeout)
        except grpc.RpcError as err:
            if status_class(err) == "transient":
                return False
        return True

    def _build_requests(self, rows: list[tuple[int, int, dict[str, Any]]]) -> tuple[list[pb.ReportBatchMetricsRequest], int]:
        """Groups consecutive rows with the same epoch and names into blocks, blocks into messages."""
        requests: list[pb.ReportBatchMetricsRequest] = []
        blocks: list[pb.BatchMetricsBlock] = []
        in_message = 0
        points = 0
        key: tuple[int, tuple[str, ...]] | None = None
        steps: list[int] = []
        values: list[float] = []

        def close_block() -> None:
            nonlocal in_message
            if key is not None and steps:
                blocks.append(pb.BatchMetricsBlock(epoch=key[0], names=key[1], steps=steps, values=values))
                in_message += len(values)

        for index, (epoch, step, metrics) in enumerate(rows):
            if index & 511 == 511:
                time.sleep(0)  # let a training thread that waits for the GIL have it
            names = tuple(metrics)
            try:
                row = [float(v) for v in metrics.values()]
                if key is None or key[1] != names or key[0] != epoch:
                    epoch, names = int(epoch), tuple(n if type(n) is str else str(n) for n in names)
                step = int(step)
                if not _INT64_MIN <= step <= _INT64_MAX:
                    raise OverflowError(step)
            except (TypeError, ValueError, OverflowError):
                clean = self._numeric(metrics, "batch")
                try:
                    epoch, step = int(epoch), int(step)
                    if not _INT64_MIN <= step <= _INT64_MAX:
                        raise OverflowError(step)
                except (TypeError, ValueError, OverflowError):
                    clean = {}
                dropped = sum(1 for v in metrics.values() if v is not None) - len(clean)  # None: not reported
                if dropped:
                    self._losses.add("batch values not numeric, or a bad step or epoch", dropped_points=dropped)
                if not clean:
                    with self._lock:
                        self._dropped_rows += 1
                    continue
                names, row = tuple(clean), list(clean.values())
            if key is None or key[0] != epoch or key[1] != names or len(values) + len(row) > _VALUES_PER_BLOCK:
                close_block()
                if in_message >= _VALUES_PER_MESSAGE:
                    requests.append(pb.ReportBatchMetricsRequest(job_id=self.job_id, blocks=blocks))
                    blocks, in_message = [], 0
                key, steps, values = (epoch, names), [], []
            steps.append(step)
            values.extend(row)
            points += len(row)
        close_block()
        if blocks:
            requests.append(pb.ReportBatchMetricsRequest(job_id=self.job_id, blocks=blocks))
        return requests, points


class _FailureGuard:
    """See :meth:`TrainingCallbacks.reporting_failures`."""

    def __init__(self, callbacks: TrainingCallbacks) -> None:
        self._callbacks = callbacks

    def __enter__(self) -> TrainingCallbacks:
        return self._callbacks

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        if exc is not None:
            self._callbacks._end_from_block(exc)
        return False


