"""Hugging Face ``transformers.Trainer`` adapter: a ``TrainerCallback`` that reports to the sidecar.

One line::

    trainer = Trainer(..., callbacks=[TrainingCallbacksCallback(job_id="job-1", task_type="image_classification")])

- ``on_train_begin`` → BeginTraining with the ``TrainingArguments`` and the model's config;
- ``on_epoch_begin`` → BeginEpoch;
- ``on_log`` → training logs (``loss``, ``learning_rate``, ``grad_norm``) become batch rows at
  ``state.global_step``; every log and evaluation joins the current epoch's record;
- ``on_evaluate`` → ``eval_*`` metrics join the epoch (sent as is: the sidecar maps ``eval_loss`` →
  ``val_loss``, ``eval_accuracy`` → ``accuracy``, ...);
- ``on_epoch_end`` → closes the epoch; it is reported right after its evaluation (the Trainer
  evaluates after ``on_epoch_end``), or at the next epoch / the end when there is none;
- ``on_train_end`` → the Trainer's summary (``train_loss``, ``train_runtime``, ...) and the last
  evaluation as final metrics, and the job ends completed.

Only the world's process zero reports (``state.is_world_process_zero``). The Trainer calls no hook
when training raises; wrap ``trainer.train()`` in ``callback.reporting_failures()`` to record it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ._adapter import HookAdapter
from ._config import to_plain

__all__ = ["TrainingCallbacksCallback"]

_TRAIN_LOG_KEYS = ("loss", "learning_rate", "grad_norm")


class TrainingCallbacksCallback(HookAdapter, TrainerCallback):
    """Reports a ``transformers.Trainer`` run to the TrainingCallbacks sidecar.

    Args:
        job_id: The job's id.
        task_type: The task type (required unless ``callbacks`` has one).
        callbacks: An existing client instead of ``job_id``/``task_type``/``client_kwargs``.
        batch_metrics: Send training logs as batch rows.
        **client_kwargs: Other :class:`~training_callbacks.TrainingCallbacks` arguments.
    """

    framework = "transformers"

    def _start(self) -> None:
        self._epoch = 0
        self._epoch_metrics: dict[str, float] = {}
        self._closed = False  # on_epoch_end seen, epoch not yet reported
        self._dirty = False
        self._last_eval: dict[str, float] = {}
        self._summary: dict[str, float] = {}

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        config = getattr(model, "config", None)
        name = ""
        if config is not None:
            name = getattr(config, "_name_or_path", "") or getattr(config, "model_type", "") or ""
        client = self._fill_in(model_name=name or (type(model).__name__ if model is not None else ""))
        if client.model_config is None and config is not None:
            client.model_config = to_plain(config)
        self._epoch = int(state.epoch or 0)
        client.set_start_epoch(self._epoch)  # (no-op once the job has begun)
        client.on_train_begin(to_plain(args))

    def on_epoch_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self._send_epoch()
        self._epoch = int(round(state.epoch or 0))
        self._closed = False
        self.callbacks.on_epoch_begin(self._epoch)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, logs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        client = self.callbacks
        values = client.numeric_metrics({k: v for k, v in logs.items() if k != "epoch"})
        if "train_runtime" in values:  # the Trainer's end-of-training summary
            self._summary = values
            return
        self._add(values)
        if self.batch_metrics and any(k in values for k in _TRAIN_LOG_KEYS):
            train = {k: v for k, v in values.items() if not k.startswith("eval_")}
            client.on_batch_end(int(state.global_step), train, epoch=self._epoch)

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, metrics: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not metrics:
            return
        values = self.callbacks.numeric_metrics({k: v for k, v in metrics.items() if k != "epoch"})
        self._last_eval = values
        self._add(values)
        if self._closed:
            self._send_epoch()

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self._closed = True
        # Report now; the evaluation that follows (eval_strategy="epoch") re-reports the epoch with
        # its eval_ metrics added (a re-report replaces the epoch).
        self._send_epoch()

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self._send_epoch()
        self.callbacks.on_train_end({**self._last_eval, **self._summary})

    def _add(self, values: Mapping[str, float]) -> None:
        if values:
            self._epoch_metrics.update(values)
            self._dirty = True

    def _send_epoch(self) -> None:
        if self._dirty and self._epoch_metrics:
            self.callbacks.on_epoch_end(self._epoch, self._epoch_metrics)
            # on_epoch_end advanced the client's default epoch; batch rows keep using self._epoch.
        self._dirty = False
