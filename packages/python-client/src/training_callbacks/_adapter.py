"""What every framework adapter shares: a lazily created client that survives pickling, and the
constructor of the adapters a framework is handed as an object (Lightning's logger, Hugging Face's
callback). Adapters use the client's public API only."""

from __future__ import annotations

import os
from typing import Any

from ._config import parse_task_type
from ._proto.trainingcallbacks.v1 import training_callbacks_pb2 as pb
from .callbacks import FailureGuard, TrainingCallbacks
from .errors import ConfigurationError


class AdapterBase:
    """Holds either a ready :class:`TrainingCallbacks` or the arguments to build one.

    Args:
        callbacks: An existing client; or None to build one from ``job_id`` and ``client_kwargs``.
        job_id: The job's id; defaults to ``$TRAINING_CALLBACKS_JOB_ID``.
        task_type: The task type; adapters that can tell it from the framework fill it in.
        **client_kwargs: Any other :class:`TrainingCallbacks` argument (``address``, ``strict``, ...).
    """

    framework = ""

    def __init__(
        self, callbacks: TrainingCallbacks | None = None, *, job_id: str | None = None, task_type: Any = None, **client_kwargs: Any
    ) -> None:
        job_id = job_id or os.environ.get("TRAINING_CALLBACKS_JOB_ID") or None
        if callbacks is None and not job_id:
            raise ConfigurationError("give callbacks=TrainingCallbacks(...) or job_id= (or set $TRAINING_CALLBACKS_JOB_ID)")
        if task_type is not None:
            parse_task_type(task_type)  # fail early on a typo
        self._callbacks = callbacks
        self._client_kwargs: dict[str, Any] = {"job_id": job_id, "task_type": task_type, **client_kwargs}
        self._client_kwargs.setdefault("framework", self.framework)

    @property
    def callbacks(self) -> TrainingCallbacks:
        """The client (built on first use)."""
        if self._callbacks is None:
            self._callbacks = TrainingCallbacks(**self._client_kwargs)
        return self._callbacks

    def reporting_failures(self) -> FailureGuard:
        """Context manager: when its block raises, the job ends as failed (and the error propagates).

        Needed for frameworks that call no hook when training raises (Ultralytics, Hugging Face)::

            with adapter.reporting_failures():
                trainer.train()
        """
        return self.callbacks.reporting_failures()

    def _fill_in(self, *, task_type: Any = None, model_name: str = "", framework: str = "") -> TrainingCallbacks:
        """Completes what the framework tells us (without overriding what the user gave)."""
        client = self.callbacks
        if client.task_type == pb.TASK_TYPE_UNSPECIFIED and task_type is not None:
            try:
                client.task_type = parse_task_type(task_type)
            except ConfigurationError:
                pass
        if not client.model_name and model_name:
            client.model_name = model_name
        if not client.framework and framework:
            client.framework = framework
        return client

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)


class HookAdapter(AdapterBase):
    """The shared constructor of the adapters whose framework calls their hooks (Lightning's
    ``Logger``, Hugging Face's ``TrainerCallback``): the job first, as those frameworks' own loggers
    and callbacks take their run's name first.

    Args:
        job_id: The job's id (or ``$TRAINING_CALLBACKS_JOB_ID``).
        task_type: The task type (required unless ``callbacks`` has one).
        callbacks: An existing client instead of ``job_id``/``task_type``/``client_kwargs``.
        batch_metrics: Send the framework's per-step logs as batch rows too.
        **client_kwargs: Other :class:`~training_callbacks.TrainingCallbacks` arguments.
    """

    def __init__(
        self,
        job_id: str | None = None,
        task_type: Any = None,
        *,
        callbacks: TrainingCallbacks | None = None,
        batch_metrics: bool = True,
        **client_kwargs: Any,
    ) -> None:
        AdapterBase.__init__(self, callbacks, job_id=job_id, task_type=task_type, **client_kwargs)
        self.batch_metrics = batch_metrics
        self._start()

    def _start(self) -> None:
        """Sets up the adapter's own state of a run (called by the constructor)."""
