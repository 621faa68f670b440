"""Python client of the TrainingCallbacks sidecar.

Report a training job with :class:`TrainingCallbacks` (never blocks, never raises into the training
loop); read jobs, epochs, batch metrics, artifacts and the metric catalog back with
:class:`SidecarClient`. Framework adapters live in :mod:`training_callbacks.ultralytics`,
:mod:`training_callbacks.lightning` and :mod:`training_callbacks.huggingface`.
"""

from __future__ import annotations

from ._config import ADDRESS_ENV, DEFAULT_ADDRESS, parse_task_type, task_type_name
from ._proto.trainingcallbacks.v1 import training_callbacks_pb2 as pb
from .callbacks import ClientStats, Losses, Outcome, TrainingCallbacks
from .client import SidecarClient
from .errors import (
    BufferFullError,
    ConfigurationError,
    SidecarRejectedError,
    SidecarUnavailableError,
    TrainingCallbacksError,
)

__version__ = "0.1.0"

__all__ = [
    "ADDRESS_ENV",
    "DEFAULT_ADDRESS",
    "BufferFullError",
    "ClientStats",
    "ConfigurationError",
    "Losses",
    "Outcome",
    "SidecarClient",
    "SidecarRejectedError",
    "SidecarUnavailableError",
    "TrainingCallbacks",
    "TrainingCallbacksError",
    "__version__",
    "parse_task_type",
    "pb",
    "task_type_name",
]
