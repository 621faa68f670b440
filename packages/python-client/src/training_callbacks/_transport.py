"""Ordered delivery of one job's reports: the queues, the background sender thread and the retry rules.

The training thread only appends to two queues (:attr:`Transport.ops` for job, epoch and artifact
writes, :attr:`Transport.batches` for batch rows) and returns. The sender thread delivers them in
order: every write is retried until acknowledged or refused, classified by the shared status table
(``proto/status-table.json``, generated into ``_status_table.py``): transient → retried with backoff,
permanent → dropped and counted, suspect → a few attempts. Batch rows are streamed in blocks over
``ReportBatchMetrics`` before each write that follows them, so the sidecar sees what the trainer did
in the order it did it. Everything that is not delivered is counted with its reason in :attr:`losses`.

A transport belongs to one process: after a fork the client builds a new one (queues, thread and
channel must not cross a fork).
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from ._config import numeric_values
from ._connection import Connection, create_channel
from ._losses import LossLedger, Losses
from ._proto.trainingcallbacks.v1 import training_callbacks_pb2 as pb
from ._proto.trainingcallbacks.v1 import training_callbacks_pb2_grpc as pb_grpc
from ._status_table import SUSPECT_ATTEMPTS, UPLOAD_FALLBACK_CODES
from .errors import SidecarRejectedError, SidecarUnavailableError, status_class

logger = logging.getLogger("training_callbacks")

#: Size of one UploadArtifact chunk (the contract allows up to 1 MiB).
CHUNK_BYTES = 1024 * 1024
#: Values per block and per ReportBatchMetrics message. Building or serialising a message is one C
#: call that holds the GIL, so they are kept small (a 32K-value message is ~300 KB, well under
#: grpc's default 4 MiB limit, and takes a fraction of a millisecond) to keep the training thread's
#: waits for the GIL short.
_VALUES_PER_BLOCK = 8 * 1024
_VALUES_PER_MESSAGE = 32 * 1024
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

#: One batch row as queued by ``on_batch_end``: (epoch, step, metrics).
Row = tuple[int, int, dict[str, Any]]


class Wake:
    """The sender's wake-up signal, set from the training thread without ever waiting.

    A ``threading.Event`` will not do: its ``set()`` takes the lock of a Condition the sender holds
    while it waits, wakes and clears, and a training thread that finds it held releases the GIL and
    then waits for the sender to hand the GIL back (up to the 5 ms switch interval) — an
    ``on_batch_end`` of several milliseconds while the sidecar restarts. ``queue.SimpleQueue.put``
    is one C call that takes no lock a waiter holds and does not release the GIL.
    """

    __slots__ = ("_signals",)

    def __init__(self) -> None:
        self._signals: queue.SimpleQueue[None] = queue.SimpleQueue()

    def set(self) -> None:
        """Wakes the sender (or makes its next wait return at once). Never blocks."""
        self._signals.put(None)

    def wait(self, timeout: float) -> None:
        """Until set or ``timeout`` seconds have passed (sender thread only); consumes the signals."""
        try:
            self._signals.get(timeout=timeout)
        except queue.Empty:
            return
        self.clear()

    def clear(self) -> None:
        """Forgets the signals given so far (sender thread only)."""
        try:
            while True:
                self._signals.get_nowait()
        except queue.Empty:
            pass


@dataclass
class Op:
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


class Settings(Protocol):
    """What the transport reads of its client, at each use (so a changed setting applies at once)."""

    job_id: str
    session_id: str
    address: str
    connection: Connection
    call_timeout: float
    flush_interval: float
    max_queued_batches: int
    strict: bool
    verbose: bool


class JobState:
    """The job as the client knows it; outlives a transport (a fork, a pickle keep the job's state).

    ``begin`` is ``none`` (not asked), ``queued`` (BeginTraining queued, not acknowledged),
    ``acked`` or ``refused``.
    """

    def __init__(self, begin: str = "none", ended: bool = False) -> None:
        self.begin = begin
        self.ended = ended
        self.begin_error: BaseException | None = None
        self.job: pb.Job | None = None
        self.catalog: pb.TaskCatalog | None = None
        self.resumed = False
        self.last_epoch_response: pb.EndEpochResponse | None = None
        self.deferred_error: BaseException | None = None  # strict mode: raised at the next call
        # From BeginTraining's answer: how often to beat (0: the sidecar takes no heartbeats), the lease,
        # and whether the sidecar watches this process.
        self.heartbeat_interval = 0.0
        self.lease_seconds = 0.0
        self.process_watched = False
        self._warned: set[str] = set()

    def warn_once(self, key: str, message: str, *args: Any) -> None:
        """Logs ``message`` the first time ``key`` is seen."""
        if key in self._warned:
            return
        self._warned.add(key)
        logger.warning(message, *args)

    def warned(self, key: str) -> bool:
        return key in self._warned


class Transport:
    """The queues and the sender thread of one job in one process.

    Args:
        settings: The client's delivery settings.
        state: The job's state, shared with the client.
        begin_request: Builds BeginTraining again (when the sidecar lost the job).
    """

    def __init__(self, settings: Settings, state: JobState, begin_request: Callable[[], pb.BeginTrainingRequest]) -> None:
        self.settings = settings
        self.state = state
        self._begin_request = begin_request
        self.pid = os.getpid()
        self.lock = threading.RLock()
        self.batches: collections.deque[Row] = collections.deque()
        self.ops: collections.deque[Op] = collections.deque()
        self.wake = Wake()
        self.stop = threading.Event()
        #: The queue length at which the training thread wakes the sender (rather than waiting for flush_interval).
        self.wake_rows = max(1, min(8192, settings.max_queued_batches // 4))
        self._inflight: list[Row] = []
        self._inflight_requests: tuple[list[pb.ReportBatchMetricsRequest], int] = ([], 0)
        self._thread: threading.Thread | None = None
        self._stub_lock = threading.Lock()  # the sender and the clock thread share the channel
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.TrainingCallbacksStub | None = None
        self.accepted_points = 0
        self.ledger = LossLedger()
        self.dropped_rows = 0
        self.dropped_points = 0  # queue full; counted in the training thread, without a lock
        self.give_up_at: float | None = None  # set by on_train_end: monotonic time to stop retrying
        self._last_transient = ""  # the last transient failure, for the give-up reason
        self.unreachable = False
        self._backoff = 0.0
        self._rebegin = False
        self._batch_rebegun = False
        self._batch_attempts = 0

    # -- what the client asks ------------------------------------------------------------------

    def losses(self) -> Losses:
        """What could not be delivered so far, with the reasons."""
        return self.ledger.snapshot(
            queue_full_points=self.dropped_points,
            queue_full_reason=(
                f"batch queue full ({self.settings.max_queued_batches} rows): raise max_queued_batches or report less often"
            ),
        )

    def pending_writes(self) -> int:
        return sum(1 for op in list(self.ops) if op.kind != "barrier")

    def pending_rows(self) -> tuple[int, int]:
        """(queued, in flight) batch rows."""
        return len(self.batches), len(self._inflight)

    def idle(self) -> bool:
        """Nothing queued nor in flight."""
        return not self.ops and not self.batches and not self._inflight

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def ensure_thread(self) -> None:
        if self.running():
            return
        with self.lock:
            if self.running():
                return
            self.stop.clear()
            self._thread = threading.Thread(target=self._run, name="training-callbacks-sender", daemon=True)
            self._thread.start()

    def put(self, op: Op) -> None:
        """Queues a write behind everything queued before it."""
        self.ensure_thread()
        self.ops.append(op)
        self.wake.set()

    def close(self) -> None:
        """Stops the sender without waiting (what is queued is not delivered)."""
        self.stop.set()
        self.wake.set()

    # -- the sender thread ---------------------------------------------------------------------

    @property
    def _client_stub(self) -> pb_grpc.TrainingCallbacksStub:
        with self._stub_lock:
            if self._stub is None:
                self._channel = create_channel(self.settings.connection)
                self._stub = pb_grpc.TrainingCallbacksStub(self._channel)
            return self._stub

    def heartbeat(self, session_id: str) -> pb.HeartbeatResponse | None:
        """One Heartbeat (from the clock thread); None when it failed. NOT_FOUND for an acknowledged
        job is the sidecar having lost it: BeginTraining is sent again, as for any write."""
        try:
            return self._client_stub.Heartbeat(
                pb.HeartbeatRequest(job_id=self.settings.job_id, session_id=session_id), timeout=self.settings.call_timeout
            )
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
            if self._job_lost(code, True):
                self.wake.set()  # the sender begins the job again
            else:
                logger.debug("training-callbacks: heartbeat of job %s failed: %s", self.settings.job_id, code.name)
            return None

    def _run(self) -> None:
        pid = os.getpid()
        while not self.stop.is_set() and pid == os.getpid():
            if self._backoff:
                self.stop.wait(self._backoff)
            else:
                self.wake.wait(self.settings.flush_interval)
            self.wake.clear()
            try:
                ok = self._pump()
            except Exception as err:  # noqa: BLE001 - the sender must survive anything
                logger.exception("training-callbacks: sender error (will retry): %s", err)
                ok = False
            if ok:
                self._backoff = 0.0
            else:
                self._backoff = min(max(self._backoff * 2, 0.1), 2.0)
            if self.state.ended and ok and self.idle():
                break
        if self._channel is not None and pid == os.getpid():
            with self._stub_lock:
                if self._channel is not None:
                    self._channel.close()
                self._channel = None
                self._stub = None

    def _pump(self) -> bool:
        """Sends what is queued. False on a transient failure (the caller backs off and retries)."""
        state = self.state
        if self.dropped_rows and not state.warned("drop"):
            state.warn_once(
                "drop",
                "training-callbacks: batch queue full (%d rows); dropping batch metrics until the sidecar "
                "catches up (training continues; drops are counted)",
                self.settings.max_queued_batches,
            )
        if self._rebegin:
            self._rebegin = False
            state.begin = "queued"
            self.ops.appendleft(Op("begin", self._begin_request()))
        if self.give_up_at is not None and time.monotonic() >= self.give_up_at:
            self._give_up()
        while self.ops:
            op = self.ops[0]
            if op.deadline is not None and time.monotonic() > op.deadline and not op.done.is_set():
                self.ops.popleft()
                op.finish(error=SidecarUnavailableError(f"{op.kind}: not acknowledged in time"))
                continue
            if state.begin == "refused" and op.kind not in ("begin", "barrier"):
                # The job does not exist (its BeginTraining was refused): refusing locally spares the
                # sidecar, and the log, one refusal per report.
                self.ops.popleft()
                self.ledger.add(f"{op.kind}: not sent, the job was refused", failed_writes=1)
                op.finish(error=state.begin_error)
                continue
            if op.kind != "begin" and not self._send_batches():
                return False
            if not self._send_op(op):
                return False
            self.ops.popleft()
        return self._send_batches()

    # -- retry rules ---------------------------------------------------------------------------

    def _rpc_failed(self, err: grpc.RpcError, op: Op | None, what: str) -> bool:
        """Classifies a failed RPC by the shared status table. True when it is to be retried:
        transient, or suspect with attempts left (what happens at the flush deadline: _give_up)."""
        code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
        details = (err.details() if hasattr(err, "details") else "") or ""
        attempts = op.attempts if op is not None else self._batch_attempts
        kind = status_class(err)
        if kind == "transient" or (kind == "suspect" and attempts < SUSPECT_ATTEMPTS):
            self._last_transient = f"{code.name}: {details}"
            if not self.unreachable:
                self.unreachable = True
                self.state.warn_once(
                    "unreachable",
                    "training-callbacks: sidecar at %s unreachable (%s: %s); buffering reports (up to %d batch "
                    "rows) and retrying in the background; training continues",
                    self.settings.address,
                    code.name,
                    details,
                    self.settings.max_queued_batches,
                )
            return True
        return False

    def _give_up(self) -> None:
        """on_train_end's flush deadline (less EndTraining's reserve) has passed: every write still
        unacknowledged, except the job's begin and end, is given up and counted, so that EndTraining
        goes out with the losses."""
        why = f"not acknowledged by on_train_end's flush deadline (last failure {self._last_transient or 'none'})"
        for _ in range(len(self.ops)):  # in place: the training thread may append meanwhile
            op = self.ops.popleft()
            if op.kind in ("begin", "end"):
                self.ops.append(op)
                continue
            if op.kind != "barrier":
                self.ledger.add(f"{op.kind}: {why}", failed_writes=1)
            op.finish(error=SidecarUnavailableError(f"{op.kind}: {why}"))
        with self.lock:
            rows = self._inflight + list(self.batches)
            self._inflight = []
            self.batches.clear()
        if rows:
            self.dropped_rows += len(rows)
            self.ledger.add(f"batch points: {why}", dropped_points=sum(len(m) for _, _, m in rows))

    def _job_lost(self, code: grpc.StatusCode, allowed: bool) -> bool:
        """NOT_FOUND for a job the sidecar acknowledged: it lost it (restarted on a new database?).
        BeginTraining is sent again (it is idempotent) before the write is retried, once per write."""
        if code != grpc.StatusCode.NOT_FOUND or not allowed or self.state.begin != "acked":
            return False
        self.state.warn_once(
            "job-lost",
            "training-callbacks: the sidecar at %s does not know job %s any more (restarted with another "
            "database?); beginning it again",
            self.settings.address,
            self.settings.job_id,
        )
        self._rebegin = True
        return True

    def _reached(self) -> None:
        if self.unreachable:
            self.unreachable = False
            logger.info("training-callbacks: sidecar at %s reachable again; sending buffered reports", self.settings.address)

    # -- writes --------------------------------------------------------------------------------

    def _send_op(self, op: Op) -> bool:
        """Sends one write. True when it is done (acknowledged or refused for good)."""
        if op.kind == "barrier":
            op.finish()
            return True
        op.attempts += 1
        stub = self._client_stub
        state = self.state
        timeout = self.settings.call_timeout
        try:
            if op.kind == "begin":
                response = stub.BeginTraining(op.request, timeout=timeout)
                state.job, state.catalog, state.resumed = response.job, response.catalog, response.resumed
                state.heartbeat_interval = response.heartbeat_interval_seconds
                state.lease_seconds = response.lease_seconds
                state.process_watched = response.process_watched
                state.begin = "acked"
            elif op.kind == "epoch_begin":
                response = stub.BeginEpoch(op.request, timeout=timeout)
            elif op.kind == "epoch_end":
                response = stub.EndEpoch(op.request, timeout=timeout)
                self._after_epoch(response)
            elif op.kind == "end":
                # Everything queued before the end is settled now (acknowledged, refused or given up).
                op.request.losses.CopyFrom(self.losses().to_proto())
                response = stub.EndTraining(op.request, timeout=timeout)
                state.job = response.job
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
            self.ledger.add(f"{op.kind} refused: {error}", failed_writes=1)
            if op.kind == "begin":
                state.begin = "refused"
                state.begin_error = error
                logger.warning(
                    "training-callbacks: job %s refused by the sidecar (%s); nothing of it will be reported",
                    self.settings.job_id,
                    error,
                )
            else:
                state.warn_once(
                    f"refused:{op.kind}:{code.name}",
                    "training-callbacks: %s of job %s refused by the sidecar (%s); dropped and counted, later "
                    "reports go on",
                    op.kind,
                    self.settings.job_id,
                    error,
                )
            op.finish(error=error)
            if op.deadline is None and self.settings.strict:
                state.deferred_error = error
            return True
        except OSError as err:  # artifact vanished or unreadable
            self.ledger.add(f"{op.kind} failed: {err}", failed_writes=1)
            logger.warning("training-callbacks: %s of job %s failed: %s", op.kind, self.settings.job_id, err)
            op.finish(error=err)
            return True
        self._reached()
        op.finish(result=response)
        return True

    def _after_epoch(self, response: pb.EndEpochResponse) -> None:
        self.state.last_epoch_response = response
        for verdict in response.verdicts:
            if verdict.tier == pb.METRIC_TIER_REJECTED:
                self.state.warn_once(
                    f"verdict:{verdict.reported_name}",
                    "training-callbacks: metric %r rejected by the sidecar: %s",
                    verdict.reported_name,
                    verdict.reason,
                )
        if self.settings.verbose and response.summary:
            logger.info("%s", response.summary)

    # -- artifacts -----------------------------------------------------------------------------

    def _send_artifact(self, stub: pb_grpc.TrainingCallbacksStub, op: Op) -> Any:
        request: pb.LogArtifactRequest = op.request
        if not op.uploaded:  # not yet falling back
            try:
                return stub.LogArtifact(request, timeout=self.settings.call_timeout)
            except grpc.RpcError as err:
                # UPLOAD_FALLBACK_CODES (proto/status-table.json): the sidecar cannot read the path.
                if err.code().value[0] not in UPLOAD_FALLBACK_CODES or not os.path.exists(request.path):
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
            job_id=self.settings.job_id,
            artifact_path=destination,
            size_bytes=size,
            sha256=digest.hexdigest(),
            session_id=self.settings.session_id,
        )

        def messages() -> Iterator[pb.UploadArtifactRequest]:
            yield pb.UploadArtifactRequest(header=header)
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK_BYTES):
                    yield pb.UploadArtifactRequest(chunk=chunk)

        timeout = self.settings.call_timeout + size / (20 * 1024 * 1024)  # allow 20 MiB/s
        return stub.UploadArtifact(messages(), timeout=timeout)

    # -- batch metrics -------------------------------------------------------------------------

    def _send_batches(self) -> bool:
        """Streams every queued row. False on a transient failure (rows are kept and re-sent)."""
        state = self.state
        if state.begin != "acked":
            if state.begin == "refused":  # nothing can be stored for this job
                with self.lock:
                    rows = self._inflight + list(self.batches)
                    self._inflight = []
                    self.batches.clear()
                if rows:
                    state.warn_once(
                        "no-job", "training-callbacks: job %s was refused; batch metrics dropped", self.settings.job_id
                    )
                    self.dropped_rows += len(rows)
                    self.ledger.add(
                        f"batch points: the job was refused ({state.begin_error})",
                        dropped_points=sum(len(m) for _, _, m in rows),
                    )
            return True
        stub = self._client_stub
        while True:
            if not self._inflight:
                take = min(len(self.batches), 50_000)
                if take == 0:
                    return True
                popleft = self.batches.popleft
                self._inflight = [popleft() for _ in range(take)]
                self._batch_attempts = 0
                self._batch_rebegun = False
                try:
                    self._inflight_requests = self._build_requests(self._inflight)
                except Exception as err:  # noqa: BLE001 - a bad row must not wedge the sender
                    logger.warning("training-callbacks: %d batch rows dropped: %s", len(self._inflight), err)
                    self.ledger.add(
                        f"batch rows not encodable: {err}", dropped_points=sum(len(m) for _, _, m in self._inflight)
                    )
                    with self.lock:
                        self.dropped_rows += len(self._inflight)
                        self._inflight = []
                    continue
            elif self.unreachable and not self._probe(stub):
                return False  # don't stream (and serialise) everything again just to hear UNAVAILABLE
            requests, points = self._inflight_requests
            self._batch_attempts += 1
            try:
                response = stub.ReportBatchMetrics(iter(requests), timeout=self.settings.call_timeout * 3)
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
                    self.settings.job_id,
                    err.code().name,
                    err.details(),
                )
                self.ledger.add(f"batch points refused: {err.code().name}: {err.details()}", refused_points=points)
                with self.lock:
                    self._inflight = []
                if self.settings.strict:
                    state.deferred_error = SidecarRejectedError(err.code(), err.details() or "")
                continue
            self._reached()
            with self.lock:
                self.accepted_points += response.accepted_points
                self._inflight = []
            if response.rejected_points:
                self.ledger.add(
                    "batch points refused: " + ("; ".join(response.rejections) or "no reason given"),
                    refused_points=response.rejected_points,
                )
            for reason in response.rejections:
                state.warn_once(f"rejection:{reason}", "training-callbacks: batch points rejected: %s", reason)
            if self.settings.strict and response.rejected_points:
                state.deferred_error = SidecarRejectedError(
                    grpc.StatusCode.INVALID_ARGUMENT, "; ".join(response.rejections) or "batch points rejected"
                )

    def _probe(self, stub: pb_grpc.TrainingCallbacksStub) -> bool:
        """A cheap call to see whether the sidecar is back."""
        try:
            stub.GetJob(pb.GetJobRequest(job_id=self.settings.job_id), timeout=self.settings.call_timeout)
        except grpc.RpcError as err:
            if status_class(err) == "transient":
                return False
        return True

    def _numeric(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        return numeric_values(metrics, "batch", self.state.warn_once)

    def _build_requests(self, rows: list[Row]) -> tuple[list[pb.ReportBatchMetricsRequest], int]:
        """Groups consecutive rows with the same epoch and names into blocks, blocks into messages."""
        job_id, session_id = self.settings.job_id, self.settings.session_id
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
                clean = self._numeric(metrics)
                try:
                    epoch, step = int(epoch), int(step)
                    if not _INT64_MIN <= step <= _INT64_MAX:
                        raise OverflowError(step)
                except (TypeError, ValueError, OverflowError):
                    clean = {}
                dropped = sum(1 for v in metrics.values() if v is not None) - len(clean)  # None: not reported
                if dropped:
                    self.ledger.add("batch values not numeric, or a bad step or epoch", dropped_points=dropped)
                if not clean:
                    with self.lock:
                        self.dropped_rows += 1
                    continue
                names, row = tuple(clean), list(clean.values())
            if key is None or key[0] != epoch or key[1] != names or len(values) + len(row) > _VALUES_PER_BLOCK:
                close_block()
                if in_message >= _VALUES_PER_MESSAGE:
                    requests.append(pb.ReportBatchMetricsRequest(job_id=job_id, blocks=blocks, session_id=session_id))
                    blocks, in_message = [], 0
                key, steps, values = (epoch, names), [], []
            steps.append(step)
            values.extend(row)
            points += len(row)
        close_block()
        if blocks:
            requests.append(pb.ReportBatchMetricsRequest(job_id=job_id, blocks=blocks, session_id=session_id))
        return requests, points
