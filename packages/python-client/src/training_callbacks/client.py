"""A thin synchronous client of the sidecar's read RPCs and metric catalog.

Reporting goes through :class:`~training_callbacks.TrainingCallbacks`, which never blocks the
trainer. :class:`SidecarClient` is for everything else — reading back jobs, epochs, batch metrics
and artifacts, and the catalog — and raises :class:`~training_callbacks.errors.TrainingCallbacksError`
subclasses on failure.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any, Callable, TypeVar, cast

import grpc

from ._config import TaskTypeLike, parse_task_type
from ._connection import create_channel, resolve_connection
from ._proto.trainingcallbacks.v1 import training_callbacks_pb2 as pb
from ._proto.trainingcallbacks.v1 import training_callbacks_pb2_grpc as pb_grpc
from .errors import ConfigurationError, error_from_rpc

__all__ = ["SidecarClient"]

_T = TypeVar("_T")


class SidecarClient:
    """Synchronous access to one sidecar.

    The channel is created on first use, in the process that uses it, and re-created after a fork.

    Args:
        address: ``host:port`` or ``unix:/path``; defaults to ``$TRAINING_CALLBACKS_ADDRESS`` or
            ``127.0.0.1:50051``.
        timeout: Per-call deadline in seconds.
        token, token_file, ca_file, client_cert_file, client_key_file: Authentication and TLS, as for
            :class:`~training_callbacks.TrainingCallbacks` (defaults from ``$TRAINING_CALLBACKS_TOKEN``,
            ``$TRAINING_CALLBACKS_TOKEN_FILE``, ``$TRAINING_CALLBACKS_CA_FILE``, …; see docs/security.md).

    Example:
        >>> with SidecarClient("127.0.0.1:50051") as sidecar:  # doctest: +SKIP
        ...     job = sidecar.get_job("job-1")
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        timeout: float = 10.0,
        token: str | None = None,
        token_file: str | None = None,
        ca_file: str | None = None,
        client_cert_file: str | None = None,
        client_key_file: str | None = None,
    ) -> None:
        self.connection = resolve_connection(
            address,
            token=token,
            token_file=token_file,
            ca_file=ca_file,
            client_cert_file=client_cert_file,
            client_key_file=client_key_file,
        )
        self.address = self.connection.address
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pid = -1
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.TrainingCallbacksStub | None = None

    # -- channel ------------------------------------------------------------------------------

    @property
    def stub(self) -> pb_grpc.TrainingCallbacksStub:
        """The generated gRPC stub (created lazily, per process)."""
        pid = os.getpid()
        with self._lock:
            if self._stub is None or self._pid != pid:
                # A channel inherited through fork() must not be used (nor closed) in the child.
                self._channel = create_channel(self.connection)
                self._stub = pb_grpc.TrainingCallbacksStub(self._channel)
                self._pid = pid
            return self._stub

    def close(self) -> None:
        """Closes the channel (if this process opened it)."""
        with self._lock:
            if self._channel is not None and self._pid == os.getpid():
                self._channel.close()
            self._channel = None
            self._stub = None

    def __enter__(self) -> SidecarClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Blocks until the channel is connected.

        Raises:
            SidecarUnavailableError: not connected within ``timeout`` seconds.
        """
        from .errors import SidecarUnavailableError

        self.stub  # noqa: B018 - creates the channel
        assert self._channel is not None
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise SidecarUnavailableError(f"sidecar at {self.address} not reachable within {timeout} s") from None

    def _call(self, method: Callable[..., _T], request: Any, timeout: float | None = None) -> _T:
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as err:
            raise error_from_rpc(err) from None

    # -- reads --------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> pb.Job:
        """Returns one job (raises ``SidecarRejectedError`` with NOT_FOUND when it does not exist)."""
        return self._call(self.stub.GetJob, pb.GetJobRequest(job_id=job_id)).job

    def list_jobs(
        self,
        *,
        status: int = pb.JOB_STATUS_UNSPECIFIED,
        task_type: TaskTypeLike | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> pb.ListJobsResponse:
        """Lists jobs, newest first (one page)."""
        request = pb.ListJobsRequest(
            status=cast(pb.JobStatus, status),
            task_type=parse_task_type(task_type),
            page_size=page_size,
            page_token=page_token,
        )
        return self._call(self.stub.ListJobs, request)

    def iter_jobs(self, *, status: int = pb.JOB_STATUS_UNSPECIFIED, task_type: TaskTypeLike | None = None) -> Iterator[pb.Job]:
        """Iterates over every job, following page tokens."""
        token = ""
        while True:
            page = self.list_jobs(status=status, task_type=task_type, page_token=token)
            yield from page.jobs
            token = page.next_page_token
            if not token:
                return

    def _pages(self, method: Any, request: Any) -> Iterator[Any]:
        """Every page of a list RPC, following ``next_page_token`` (pages are bounded by the sidecar)."""
        while True:
            page = self._call(method, request)
            yield page
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    def iter_epochs(self, job_id: str) -> Iterator[pb.EpochRecord]:
        """Iterates over a job's epochs in epoch order, page by page."""
        for page in self._pages(self.stub.ListEpochs, pb.ListEpochsRequest(job_id=job_id)):
            yield from page.epochs

    def list_epochs(self, job_id: str) -> list[pb.EpochRecord]:
        """Returns a job's epochs in epoch order (every page)."""
        return list(self.iter_epochs(job_id))

    def get_best_epoch(self, job_id: str) -> pb.GetBestEpochResponse:
        """Returns the primary metric's name and the best epoch (``HasField("epoch")`` is False if none)."""
        return self._call(self.stub.GetBestEpoch, pb.GetBestEpochRequest(job_id=job_id))

    def iter_batch_metrics(self, job_id: str, epoch: int | None = None) -> Iterator[pb.BatchMetricsBlock]:
        """Iterates over a job's batch-metric blocks in step order, page by page (names are canonical)."""
        request = pb.ListBatchMetricsRequest(job_id=job_id)
        if epoch is not None:
            request.epoch = epoch
        for page in self._pages(self.stub.ListBatchMetrics, request):
            yield from page.blocks

    def list_batch_metrics(self, job_id: str, epoch: int | None = None) -> list[pb.BatchMetricsBlock]:
        """Returns a job's batch-metric blocks in step order (every page; a stored block may come in parts)."""
        return list(self.iter_batch_metrics(job_id, epoch))

    def batch_points(self, job_id: str, epoch: int | None = None) -> list[tuple[int, int, str, float]]:
        """A job's batch metrics flattened to ``(epoch, step, name, value)`` tuples."""
        points: list[tuple[int, int, str, float]] = []
        for block in self.list_batch_metrics(job_id, epoch):
            names = list(block.names)
            for row, step in enumerate(block.steps):
                for col, name in enumerate(names):
                    points.append((block.epoch, step, name, block.values[row * len(names) + col]))
        return points

    def iter_artifacts(self, job_id: str) -> Iterator[pb.Artifact]:
        """Iterates over a job's artifacts in the order they were first logged, page by page."""
        for page in self._pages(self.stub.ListArtifacts, pb.ListArtifactsRequest(job_id=job_id)):
            yield from page.artifacts

    def list_artifacts(self, job_id: str) -> list[pb.Artifact]:
        """Returns a job's artifacts in the order they were first logged (every page)."""
        return list(self.iter_artifacts(job_id))

    def get_metric_catalogs(self) -> list[pb.TaskCatalog]:
        """Returns the catalog of every task type."""
        return list(self._call(self.stub.GetMetricCatalog, pb.GetMetricCatalogRequest()).catalogs)

    def get_metric_catalog(self, task_type: TaskTypeLike) -> pb.TaskCatalog:
        """Returns the catalog of one task type: primary metric, standard metrics and aliases."""
        value = parse_task_type(task_type)
        if value == pb.TASK_TYPE_UNSPECIFIED:
            raise ConfigurationError("task_type must be set")
        catalogs = self._call(self.stub.GetMetricCatalog, pb.GetMetricCatalogRequest(task_type=value)).catalogs
        for catalog in catalogs:
            if catalog.task_type == value:
                return catalog
        raise ConfigurationError(f"the sidecar has no catalog for {pb.TaskType.Name(value)}")
