"""``TrainingCallbacks``: report a training job to the sidecar without ever hurting the trainer.

This module is the public API: the reporting calls, the context manager and what the client tells
about itself. Every reporting method returns at once: it queues the report on the job's
:class:`~training_callbacks._transport.Transport`, whose background thread delivers it in order,
retrying until it is acknowledged (see ``_transport.py`` for the queues and the retry rules). When
the sidecar is unreachable the client warns once, keeps buffering (batch metrics up to
``max_queued_batches`` rows, beyond which new rows are dropped and counted) and keeps retrying;
nothing is raised into the training loop unless ``strict=True``.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, cast

from google.protobuf import timestamp_pb2

from ._config import (
    TaskTypeLike,
    config_get,
    flatten_params,
    numeric_values,
    param_text,
    params_within_limits,
    parse_task_type,
    resolve_rank,
    to_struct,
    wire_text,
    world_size,
)
from ._client_batching import FLUSH_INTERVAL_SECONDS
from ._connection import resolve_connection
from . import _exit
from ._background import Background
from ._losses import Losses
from ._proto.trainingcallbacks.v1 import training_callbacks_pb2 as pb
from ._trainer import new_session_id, trainer_process
from ._transport import JobState, Op, Transport
from .errors import (
    BufferFullError,
    ConfigurationError,
    SidecarUnavailableError,
    TrainingCallbacksError,
)

__all__ = ["ClientStats", "FailureGuard", "Losses", "Outcome", "TrainingCallbacks"]

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
        heartbeats: Heartbeats the sidecar answered (from the background thread).
        system_samples: System-metric samples taken (see ``system_metrics_interval``).
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
    heartbeats: int = 0
    system_samples: int = 0


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
        flush_interval: How often the background sender sends queued batch rows (seconds; default 0.2,
            the TypeScript client's too: proto/client-batching.json).
        verbose: Log the sidecar's one-line summary of each epoch at INFO level.
        end_at_exit: End the job when the process ends without ``on_train_end``: a normal exit →
            completed, ``sys.exit(n≠0)`` or an unhandled exception → failed with the error,
            SIGTERM or KeyboardInterrupt → cancelled (see ``_exit.py`` for every path). False: the job
            stays RUNNING (until the sidecar's verdict); what is queued is still delivered.
        exit_flush_timeout: How long an exit path waits for what is queued and the end to be
            acknowledged (seconds; one deadline for all the clients of the process).
        system_metrics_interval: Seconds between two samples of CPU, memory and (with
            ``nvidia-ml-py`` installed) GPU metrics, sent as batch metrics under MLflow's
            ``system/...`` names from the client's background thread; None or 0 turns them off.
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
        flush_interval: float = FLUSH_INTERVAL_SECONDS,
        verbose: bool = False,
        end_at_exit: bool = True,
        exit_flush_timeout: float = 5.0,
        system_metrics_interval: float | None = 10.0,
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
        if system_metrics_interval and not 1.0 <= float(system_metrics_interval) <= 3600.0:
            raise ConfigurationError(
                f"system_metrics_interval is {system_metrics_interval!r} s; use 1 to 3600 (10-15 s is usual), or None to turn them off"
            )
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
        self.end_at_exit = bool(end_at_exit)
        self.exit_flush_timeout = float(exit_flush_timeout)
        self.system_metrics_interval = float(system_metrics_interval) if system_metrics_interval else None
        self._epoch = self.start_epoch
        self._state = JobState()
        self._init_runtime()


    # Pickling (e.g. into a spawned DDP worker) keeps the configuration and the job's state; the
    # queue, thread and channel are process-local and start afresh on the other side.
    _PICKLED = (
        "address", "connection", "rank", "world_size", "job_id", "enabled", "strict", "model_config", "training_config",
        "params", "task_type", "framework", "model_name", "custom_metrics", "start_epoch",
        "run_name", "tags", "max_queued_batches", "flush_timeout", "call_timeout", "flush_interval", "verbose",
        "end_at_exit", "exit_flush_timeout", "system_metrics_interval", "_epoch",
    )  # fmt: skip

    def __getstate__(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self._PICKLED}
        # A queued BeginTraining may not have arrived: the other side sends it again (it is idempotent).
        state["_begin"] = "none" if self._state.begin == "queued" else self._state.begin
        state["_ended"] = self._state.ended
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._state = JobState(state.pop("_begin"), state.pop("_ended"))
        self.__dict__.update(state)
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.RLock()
        self._forked = False
        self._began_in_thread: int | None = None  # an unhandled exception there ends the job
        #: This client's session (TrainerProcess.session_id), sent with every report and heartbeat.
        self.session_id = new_session_id()
        self._reset_transport()
        _exit.live.add(self)

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
        queue = self._batches  # the transport's queue, bound in _reset_transport (one lookup less)
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
            if self._state.begin != "none":
                return
            if self.task_type == pb.TASK_TYPE_UNSPECIFIED:
                self._fail(ConfigurationError("task_type is not set (argument or model_config.task_type)"), "no-task")
                self.enabled = False
                return
            self._state.begin = "queued"
            self._began_in_thread = threading.get_ident()
        if self.end_at_exit:
            _exit.install()
        self._submit(Op("begin", self._begin_request()))
        self._background.start()

    def on_epoch_begin(self, epoch: int) -> None:
        """Marks the start of ``epoch`` (0-based); batch rows default to this epoch."""
        self._epoch = int(epoch)
        if not self._usable():
            return
        self._ensure_begun()
        self._submit(Op("epoch_begin", pb.BeginEpochRequest(job_id=self.job_id, epoch=int(epoch), timestamp=_now(), session_id=self.session_id)))

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
            job_id=self.job_id,
            epoch=int(epoch),
            metrics=self.numeric_metrics(metrics, "epoch"),
            timestamp=_now(),
            session_id=self.session_id,
        )
        self._submit(Op("epoch_end", request))

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
        if not self._usable() or self._state.ended:
            return True
        self._ensure_begun()
        code = self._outcome(outcome, error)
        message = ""
        if isinstance(error, BaseException):
            message = f"{type(error).__name__}: {error}"
        elif error:
            message = str(error)
        final = self.numeric_metrics(final_metrics, "final")
        request = pb.EndTrainingRequest(
            job_id=self.job_id, outcome=code, final_metrics=final, error_message=message, session_id=self.session_id
        )
        self._state.ended = True
        self._ready = False
        timeout = self.flush_timeout if timeout is None else max(float(timeout), 0.0)
        self._transport.give_up_at = time.monotonic() + timeout - min(self.call_timeout, timeout / 2)
        op = self._end_op = Op("end", request)
        self._submit(op, wait=False)
        try:
            delivered = self._wait(op, timeout, what="on_train_end")
        finally:
            self._background.stop()  # no heartbeats after the end
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
        op = Op("barrier")
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

    def reporting_failures(self) -> FailureGuard:
        """A context manager that ends the job as failed when its block raises (and re-raises),
        without beginning it on entry: for adapters, where the framework's events begin the job.
        """
        return FailureGuard(self)

    def _end_from_block(self, exc: BaseException | None) -> None:
        if exc is None:
            if not self._state.ended:
                self.on_train_end()
            return
        if self._state.ended:
            return
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            self.on_train_end()  # sys.exit(0) is a normal end
            return
        signal_name = _exit.signal_received()
        outcome: Outcome = "cancelled" if isinstance(exc, KeyboardInterrupt) or signal_name else "failed"
        error: BaseException | str = exc
        if signal_name:
            error = f"{type(exc).__name__}: {exc} (after {signal_name})" if str(exc) else f"{type(exc).__name__} (after {signal_name})"
        try:
            self.on_train_end(outcome=outcome, error=error)
        except TrainingCallbacksError as err:
            # Strict mode: the training exception is the one that matters; it propagates.
            logger.warning("training-callbacks: could not record the failure of job %s: %s", self.job_id, err)

    # ------------------------------------------------------------------------------------------
    # Introspection

    @property
    def catalog(self) -> pb.TaskCatalog | None:
        """The task's metric catalog, as returned by the sidecar at BeginTraining (None until then)."""
        return self._state.catalog

    @property
    def job(self) -> pb.Job | None:
        """The job as last returned by the sidecar (BeginTraining, then EndTraining)."""
        return self._state.job

    @property
    def resumed(self) -> bool:
        """True when the sidecar continued an existing job with this id."""
        return self._state.resumed

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between heartbeats, as the sidecar answered BeginTraining (0 until then, or when it
        takes none)."""
        return self._state.heartbeat_interval

    @property
    def lease_seconds(self) -> float:
        """The job's lease (the sidecar's ``--trainer-lease``): without a heartbeat or report for this
        long, the sidecar declares the job lost. 0 until BeginTraining is answered."""
        return self._state.lease_seconds

    @property
    def process_watched(self) -> bool:
        """True when the sidecar watches this process (a verdict within seconds of its death)."""
        return self._state.process_watched

    @property
    def last_epoch_response(self) -> pb.EndEpochResponse | None:
        """The sidecar's answer to the last acknowledged epoch report (verdicts, best epoch, summary)."""
        return self._state.last_epoch_response

    def metric_catalog(self, timeout: float | None = None) -> pb.TaskCatalog:
        """The task's metric catalog from the sidecar (GetMetricCatalog); raises when unreachable."""
        if self._state.catalog is not None:
            return self._state.catalog
        from .client import SidecarClient

        with SidecarClient(self.address, timeout=timeout or self.call_timeout) as client:
            self._state.catalog = client.get_metric_catalog(self.task_type)
        return self._state.catalog

    def stats(self) -> ClientStats:
        """Counts of queued, sent and lost reports."""
        transport = self._transport
        losses = transport.losses()
        with transport.lock:
            queued, inflight = transport.pending_rows()
            return ClientStats(
                queued_rows=queued,
                inflight_rows=inflight,
                pending_writes=transport.pending_writes(),
                accepted_points=transport.accepted_points,
                rejected_points=losses.refused_points,
                dropped_rows=transport.dropped_rows,
                dropped_points=losses.dropped_points,
                failed_writes=losses.failed_writes,
                unreachable=transport.unreachable,
                heartbeats=self._background.heartbeats,
                system_samples=self._background.samples,
            )

    def losses(self) -> Losses:
        """What could not be delivered so far, with the reasons (sent with EndTraining)."""
        return self._transport.losses()

    def close(self) -> None:
        """Stops the background sender without waiting (queued reports are lost)."""
        self._transport.close()
        self._background.stop()
        _exit.live.discard(self)

    # ------------------------------------------------------------------------------------------
    # For adapters and callers that build on the client

    @property
    def began(self) -> bool:
        """True once the job's BeginTraining is queued (or delivered, or refused)."""
        return self._state.begin != "none"

    @property
    def ended(self) -> bool:
        """True once ``on_train_end`` (or an exit path) has ended the job."""
        return self._state.ended

    def set_start_epoch(self, epoch: int) -> bool:
        """Sets the epoch training (re)starts from, before the job begins; batch rows default to it
        until the next ``on_epoch_begin``. Returns False (and changes nothing) once the job has begun."""
        if self.began:
            return False
        self.start_epoch = self._epoch = int(epoch)
        return True

    def numeric_metrics(self, metrics: Mapping[str, Any] | None, what: str = "epoch") -> dict[str, float]:
        """The numeric values of ``metrics`` as floats: ``None`` values are left out (a missing value
        stays missing), other non-numbers are left out with a warning once per name (``what`` names
        the kind of metric in it)."""
        return numeric_values(metrics, what, self._state.warn_once)

    def warn_once(self, key: str, message: str, *args: Any) -> None:
        """Logs a warning on the ``training_callbacks`` logger the first time ``key`` is seen for this job."""
        self._state.warn_once(key, message, *args)

    # ------------------------------------------------------------------------------------------
    # Internals: state

    def _reset_transport(self) -> None:
        """(Re)creates everything that must not cross a fork: queues, thread, channel."""
        self._pid = os.getpid()
        self._transport = Transport(self, self._state, self._begin_request)
        self._background = Background(self, self._transport, self.system_metrics_interval)
        # The hot path's handles on the transport, bound once per transport.
        self._batches = self._transport.batches
        self._wake = self._transport.wake
        self._wake_rows = self._transport.wake_rows
        self._end_op: Op | None = None  # EndTraining, once on_train_end queued it
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
            self.session_id = new_session_id()  # another process: another trainer
            self._reset_transport()
            if self._state.begin == "queued":  # the parent's BeginTraining may never have arrived
                self._state.begin = "none"
        logger.debug("training-callbacks: fork detected; new queue and channel in pid %d", os.getpid())

    def _prepare_batch(self) -> bool:
        """Slow path of on_batch_end: start-up, fork, disabled, ended."""
        if not self._usable():
            return False
        if self._state.ended:
            self.warn_once("after-end", "training-callbacks: on_batch_end after on_train_end is ignored")
            return False
        self._ensure_begun()
        self._transport.ensure_thread()
        self._background.start()  # (after a fork: the child's own clock)
        self._ready = not self._state.ended
        return self._ready

    def _ensure_begun(self) -> None:
        if self._state.begin == "none":
            self.on_train_begin()

    def _drop(self, metrics: Mapping[str, Any]) -> None:
        self._transport.dropped_rows += 1
        self._transport.dropped_points += len(metrics)
        if self.strict:
            raise BufferFullError(f"batch queue full ({self.max_queued_batches} rows)")
        # (the sender thread warns: logging I/O does not belong in the training thread)

    def _fail(self, error: BaseException, key: str) -> None:
        """A problem the caller should know about: raised in strict mode, warned once otherwise."""
        if self.strict:
            raise error
        self.warn_once(key, "training-callbacks: %s", error)

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
            params=self._params_to_send(params),
            custom_metrics=custom,
            start_epoch=self.start_epoch,
            run_name=self.run_name,
            tags=self.tags,
            trainer=trainer_process(self.session_id),
        )
        model_config = to_struct(self.model_config)
        if model_config is not None:
            request.model_config.CopyFrom(model_config)
        training_config = to_struct(self.training_config)
        if training_config is not None:
            request.training_config.CopyFrom(training_config)
        return request

    def _params_to_send(self, params: Mapping[str, Any] | None) -> dict[str, str]:
        """The params as text, within the sidecar's limits: a param beyond them would have the whole
        BeginTraining refused, so it is dropped or shortened, with a warning naming it."""
        text = {wire_text(str(k)): param_text(v) for k, v in (params or {}).items()}
        kept, notes = params_within_limits(text)
        if notes:
            self.warn_once(
                "params-limits",
                "training-callbacks: %d params of job %s are beyond what the sidecar (and MLflow) accepts: %s; "
                "the full configuration is still stored as training_config",
                len(notes),
                self.job_id,
                "; ".join(notes[:10]) + (f"; and {len(notes) - 10} more" if len(notes) > 10 else ""),
            )
        return kept

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
        request = pb.LogArtifactRequest(
            job_id=self.job_id, path=local, artifact_path=artifact_path.strip("/"), session_id=self.session_id
        )
        self._submit(Op("artifact", request))

    # ------------------------------------------------------------------------------------------
    # Internals: submitting and waiting

    def _submit(self, op: Op, *, wait: bool | None = None) -> None:
        if self._state.ended and op.kind not in ("end", "barrier"):
            self.warn_once(f"after-end:{op.kind}", "training-callbacks: %s after on_train_end is ignored", op.kind)
            return
        if self.strict and self._state.deferred_error is not None:
            error, self._state.deferred_error = self._state.deferred_error, None
            raise error
        wait = self.strict if wait is None else wait
        if wait:
            op.deadline = time.monotonic() + self.call_timeout
        self._transport.put(op)
        if wait:
            self._wait(op, self.call_timeout + 1.0, what=op.kind)

    def _wait(self, op: Op, timeout: float, *, what: str) -> bool:
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
        if self.strict and self._state.deferred_error is not None:
            error, self._state.deferred_error = self._state.deferred_error, None
            raise error
        return True

    def _queue_row(self, step: int, metrics: dict[str, float]) -> None:
        """A row from the clock thread (system metrics): queued like on_batch_end's, never raising."""
        if self._state.ended or self._pid != os.getpid():
            return
        if len(self._batches) >= self.max_queued_batches:
            self._transport.dropped_rows += 1
            self._transport.dropped_points += len(metrics)
            return
        self._batches.append((self._epoch, step, metrics))

    def _end_at_exit(self, outcome: Outcome, error: BaseException | str | None, timeout: float) -> None:
        """An exit path ends the job (see ``_exit.py``); never raises."""
        if outcome == "completed":
            logger.info("training-callbacks: job %s ended as completed at interpreter exit (no on_train_end)", self.job_id)
        try:
            self.on_train_end(outcome=outcome, error=error, timeout=timeout)
        except TrainingCallbacksError as err:  # strict mode: exiting anyway
            logger.warning("training-callbacks: could not end job %s at exit: %s", self.job_id, err)

    def _open(self) -> bool:
        """Begun (and not refused) and not ended: an exit path has a job to end."""
        return self._state.begin in ("queued", "acked") and not self._state.ended

    def _ending(self) -> bool:
        """An EndTraining queued and not yet answered."""
        op = self._end_op
        return op is not None and not op.done.is_set() and self._pid == os.getpid()

    def _wait_ending(self, timeout: float) -> None:
        op = self._end_op
        if op is not None:
            op.done.wait(timeout)

    def _flush_at_exit(self) -> None:
        transport = self._transport
        if self._pid != os.getpid() or not self.enabled or self._state.ended:
            return  # (on_train_end has already waited for its flush)
        if transport.idle() or not transport.running():
            return
        op = Op("barrier")
        transport.put(op)
        if not op.done.wait(self.exit_flush_timeout):
            logger.warning(
                "training-callbacks: exiting with reports of job %s not delivered to %s", self.job_id, self.address
            )


class FailureGuard:
    """The context manager of :meth:`TrainingCallbacks.reporting_failures`."""

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


