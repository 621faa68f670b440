"""PyTorch Lightning adapter: a ``Logger`` that reports to the sidecar.

One line::

    trainer = lightning.Trainer(logger=TrainingCallbacksLogger(job_id="job-1", task_type="image_classification"))

- ``log_hyperparams`` → the job's params and training configuration (sent with BeginTraining,
  which happens on the first ``log_metrics``/``finalize``);
- ``log_metrics`` → each call is a batch row at ``step`` (names as logged: ``train_loss_step``,
  ``val_acc``, ...), and the latest value of every name logged during an epoch forms that epoch's
  record, sent when the next epoch's first metrics arrive or at ``finalize``. Calls without an
  ``epoch`` key (``LearningRateMonitor``) join the epoch of the next call that has one;
- ``finalize("success")`` → completed; ``finalize("failed")`` (Lightning calls it when training
  raises, with the exception still being handled) → failed with the exception's message, or
  cancelled when it is a KeyboardInterrupt or Lightning's own stop on SIGTERM.

Only global rank zero reports (Lightning's ``rank_zero_only``, and the client's own rank check).
"""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

from ._adapter import HookAdapter
from ._config import flatten_params, to_plain

__all__ = ["TrainingCallbacksLogger"]

_STATUS = {"success": "completed", "finished": "completed", "failed": "failed", "interrupted": "cancelled"}


class TrainingCallbacksLogger(HookAdapter, Logger):
    """A Lightning logger that reports to the TrainingCallbacks sidecar.

    Args:
        job_id: The job's id.
        task_type: The task type (required unless ``callbacks`` has one).
        callbacks: An existing client instead of ``job_id``/``task_type``/``client_kwargs``.
        batch_metrics: Send every ``log_metrics`` call as a batch row too.
        **client_kwargs: Other :class:`~training_callbacks.TrainingCallbacks` arguments.
    """

    framework = "lightning"

    def _start(self) -> None:
        self._epoch: int | None = None
        self._epoch_metrics: dict[str, float] = {}
        self._hparams: dict[str, Any] = {}
        self._unattributed: list[tuple[int | None, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "training-callbacks"

    @property
    def version(self) -> str:
        return self.callbacks.job_id

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        values = vars(params) if isinstance(params, Namespace) else dict(params or {})
        client = self.callbacks
        if client.began:
            client.warn_once("late-hparams", "training-callbacks: hyperparameters logged after the job began are ignored")
            return
        self._hparams.update(to_plain(values))
        base = client.training_config if isinstance(client.training_config, Mapping) else {}
        client.training_config = {**base, **self._hparams}
        client.params = {**(client.params or {}), **flatten_params(self._hparams)}

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        values = dict(metrics)
        raw_epoch = values.pop("epoch", None)
        numbers = self.callbacks.numeric_metrics(values)
        if raw_epoch is None:
            # Callbacks such as LearningRateMonitor log without an epoch, at the start of an epoch or
            # batch: the values belong to the epoch of the next metrics that carry one.
            self._unattributed.append((step, numbers))
            return
        self._record(int(raw_epoch), step, numbers)

    def _record(self, epoch: int, step: int | None, numbers: dict[str, float]) -> None:
        client = self.callbacks
        if self._epoch is None:
            client.on_train_begin()
        elif epoch != self._epoch:
            self._send_epoch()
        if self._epoch != epoch:
            self._epoch = epoch
            client.on_epoch_begin(epoch)
        pending, self._unattributed = self._unattributed, []
        for pending_step, pending_numbers in [*pending, (step, numbers)]:
            self._epoch_metrics.update(pending_numbers)
            if self.batch_metrics and pending_step is not None and pending_numbers:
                client.on_batch_end(int(pending_step), pending_numbers, epoch=epoch)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        client = self.callbacks
        if client.ended:
            return
        if self._unattributed:
            self._record(self._epoch if self._epoch is not None else 0, None, {})
        self._send_epoch()
        outcome = _STATUS.get(status, "completed")
        error: BaseException | str | None = None
        if outcome == "failed":
            error = sys.exc_info()[1] or f"Lightning finalized the run with status {status!r}"
            if isinstance(error, KeyboardInterrupt):
                outcome = "cancelled"
            elif isinstance(error, SIGTERMException):  # Lightning stops the fit when it gets SIGTERM
                outcome, error = "cancelled", "terminated by SIGTERM (Lightning stopped the fit)"
        client.on_train_end(outcome=outcome, error=error)  # type: ignore[arg-type]

    def _send_epoch(self) -> None:
        if self._epoch is not None and self._epoch_metrics:
            self.callbacks.on_epoch_end(self._epoch, self._epoch_metrics)
        self._epoch_metrics = {}
