"""Errors raised by the client.

Every error is a :class:`TrainingCallbacksError`. In the default (lenient) mode the
:class:`~training_callbacks.TrainingCallbacks` reporting methods never raise them into the
training loop; they are raised by :class:`~training_callbacks.SidecarClient` (the read API), by
constructors given invalid arguments, and by the reporting methods in ``strict=True`` mode.
"""

from __future__ import annotations

import grpc

from ._status_table import RETRY_METADATA_KEY, StatusClass, classify_status

__all__ = [
    "BufferFullError",
    "ConfigurationError",
    "SidecarRejectedError",
    "SidecarUnavailableError",
    "TrainingCallbacksError",
    "error_from_rpc",
    "status_class",
]


class TrainingCallbacksError(Exception):
    """Base class of every error raised by this package."""


class ConfigurationError(TrainingCallbacksError, ValueError):
    """An argument or environment variable has a value the client cannot use."""


class SidecarUnavailableError(TrainingCallbacksError):
    """The sidecar could not be reached, or did not answer in time.

    Attributes:
        code: The gRPC status code (UNAVAILABLE or DEADLINE_EXCEEDED), or None for a local timeout.
    """

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class SidecarRejectedError(TrainingCallbacksError):
    """The sidecar refused a call (for instance INVALID_ARGUMENT or NOT_FOUND); retrying won't help.

    Attributes:
        code: The gRPC status code.
        details: The sidecar's message, which says what to fix.
    """

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class BufferFullError(TrainingCallbacksError):
    """The batch-metric queue is full (only raised in strict mode; otherwise the point is dropped)."""


def status_class(err: grpc.RpcError) -> StatusClass:
    """How a failed write is handled, by the shared status table (proto/status-table.json):
    ``transient`` (retry until acknowledged or the flush deadline), ``permanent`` (drop, warn, count)
    or ``suspect`` (retry a few times, then as permanent). The sidecar's trailing metadata
    ``training-callbacks-retry`` overrides the status's default for one refusal."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    marker = None
    try:
        trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    except Exception:  # noqa: BLE001 - a call that never completed has no trailers
        trailing = None
    for key, value in trailing or ():
        if key == RETRY_METADATA_KEY:
            marker = value.decode() if isinstance(value, bytes) else str(value)
    return classify_status(code.value[0], marker)


def error_from_rpc(err: grpc.RpcError) -> TrainingCallbacksError:
    """Converts a grpc error into this package's error type."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else None) or str(err)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return SidecarUnavailableError(f"{code.name}: {details}", code)
    return SidecarRejectedError(code, details)
