"""What the client could not deliver for a job, counted and explained.

Every report that does not reach the sidecar's store is counted here with a reason: the counts go to
the sidecar with EndTraining (``EndTrainingRequest.losses``, shown in the job), and ``on_train_end``
logs them and returns False. Nothing is lost silently.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ._proto.trainingcallbacks.v1 import training_callbacks_pb2 as pb

__all__ = ["LossLedger", "Losses"]

#: Distinct reasons kept (the contract bounds them too); later ones are counted, not kept.
MAX_REASONS = 16
#: Characters kept of one reason.
MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class Losses:
    """What a client could not deliver for a job.

    Attributes:
        dropped_points: Batch points never delivered: dropped by the client (queue full, not
            numeric, job refused) or not acknowledged by ``on_train_end``'s flush deadline.
        refused_points: Batch points the sidecar refused.
        failed_writes: Job, epoch and artifact writes refused by the sidecar or not acknowledged
            by the flush deadline.
        reasons: Why, one line per distinct reason with its count (at most 16).
    """

    dropped_points: int = 0
    refused_points: int = 0
    failed_writes: int = 0
    reasons: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.dropped_points or self.refused_points or self.failed_writes)

    def to_proto(self) -> pb.ClientLosses:
        """As sent with EndTraining (``EndTrainingRequest.losses``)."""
        return pb.ClientLosses(
            dropped_points=self.dropped_points,
            refused_points=self.refused_points,
            failed_writes=self.failed_writes,
            reasons=self.reasons,
        )

    def describe(self) -> str:
        """One line for a log: the counts, then the reasons."""
        parts = []
        if self.dropped_points:
            parts.append(f"{self.dropped_points} batch points dropped")
        if self.refused_points:
            parts.append(f"{self.refused_points} batch points refused")
        if self.failed_writes:
            parts.append(f"{self.failed_writes} writes failed")
        text = ", ".join(parts) or "nothing lost"
        return f"{text} ({'; '.join(self.reasons)})" if self.reasons else text


class LossLedger:
    """Thread-safe counts and reasons of what was lost (the training thread's hot-path drops are
    counted by the caller without a lock and passed to :meth:`snapshot`)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant: a signal handler may end the job while it is held
        self._dropped = 0
        self._refused = 0
        self._failed = 0
        self._reasons: dict[str, int] = {}
        self._unkept = 0

    def add(self, reason: str, *, dropped_points: int = 0, refused_points: int = 0, failed_writes: int = 0) -> None:
        with self._lock:
            self._dropped += dropped_points
            self._refused += refused_points
            self._failed += failed_writes
            self._note(reason)

    def _note(self, reason: str) -> None:
        reason = reason[:MAX_REASON_CHARS]
        if reason in self._reasons:
            self._reasons[reason] += 1
        elif len(self._reasons) < MAX_REASONS - 1:
            self._reasons[reason] = 1
        else:
            self._unkept += 1

    def snapshot(self, *, queue_full_points: int = 0, queue_full_reason: str = "") -> Losses:
        with self._lock:
            reasons = [f"{r} (×{n})" if n > 1 else r for r, n in self._reasons.items()]
            if queue_full_points:
                reasons.insert(0, queue_full_reason)
            if self._unkept:
                reasons.append(f"{self._unkept} more of other reasons")
            return Losses(
                dropped_points=self._dropped + queue_full_points,
                refused_points=self._refused,
                failed_writes=self._failed,
                reasons=tuple(reasons[:MAX_REASONS]),
            )
