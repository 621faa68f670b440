"""Ultralytics (YOLO) adapter: live per-epoch reporting through Ultralytics' callback events, and an
importer for an existing ``results.csv``.

One line::

    results = training_callbacks.ultralytics.train(YOLO("yolo11n.yaml"), job_id="job-1", data="coco8.yaml", epochs=10)

or, to keep calling ``model.train`` yourself::

    reporter = UltralyticsCallbacks(job_id="job-1").attach(model)
    with reporter.reporting_failures():     # Ultralytics calls no hook when training raises
        model.train(data=..., epochs=...)

What is reported, with names as Ultralytics writes them (the sidecar normalises them):

- every epoch (``on_fit_epoch_end``): ``train/*_loss`` (the epoch means), the validation metrics
  (``metrics/mAP50(B)``, ``val/box_loss``, ...; left out in epochs where validation did not run),
  and the learning rates ``lr/pg0``...; the same row as ``results.csv``, with 0-based epochs;
- every batch (``on_train_batch_end``): the batch's ``train/*_loss``;
- at the end: the validation metrics of ``best.pt`` (Ultralytics' final evaluation) as final
  metrics, and ``best.pt`` / ``last.pt`` as artifacts under ``weights/``.

The event handlers are methods of an importable class (no closures), and the object pickles.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import _results_csv
from ._adapter import AdapterBase
from ._config import to_plain
from .callbacks import TrainingCallbacks

__all__ = ["UltralyticsCallbacks", "import_results_csv", "train"]

#: Ultralytics events this adapter handles.
EVENTS = (
    "on_pretrain_routine_start",
    "on_train_start",
    "on_train_epoch_start",
    "on_train_batch_end",
    "on_fit_epoch_end",
    "on_train_end",
)


class UltralyticsCallbacks(AdapterBase):
    """Reports an Ultralytics training run.

    Args:
        callbacks: An existing client, or None to build one from ``job_id`` and ``client_kwargs``.
        job_id: The job's id.
        task_type: Defaults to the model's task (``detect`` → object_detection, ``segment`` →
            instance_segmentation, ``classify`` → image_classification, ``pose`` → pose_estimation).
        batch_metrics: Report every batch's losses.
        log_weights: Log ``best.pt`` and ``last.pt`` at the end of training.
        **client_kwargs: Other :class:`~training_callbacks.TrainingCallbacks` arguments.
    """

    framework = "ultralytics"

    def __init__(
        self,
        callbacks: TrainingCallbacks | None = None,
        *,
        job_id: str | None = None,
        task_type: Any = None,
        batch_metrics: bool = True,
        log_weights: bool = True,
        **client_kwargs: Any,
    ) -> None:
        super().__init__(callbacks, job_id=job_id, task_type=task_type, **client_kwargs)
        self.batch_metrics = batch_metrics
        self.log_weights = log_weights
        self._epoch_started: int | None = None
        self._batch_in_epoch = 0
        self._metrics_seen: int | None = None  # id() of trainer.metrics when last reported
        self._final: dict[str, float] = {}

    def attach(self, model: Any) -> UltralyticsCallbacks:
        """Registers the handlers on a ``YOLO`` model (or a trainer) and returns self."""
        task = getattr(model, "task", None) or getattr(getattr(model, "args", None), "task", None)
        self._fill_in(task_type=task)
        for event in EVENTS:
            model.add_callback(event, getattr(self, event))
        return self

    # -- events ---------------------------------------------------------------------------------

    def on_pretrain_routine_start(self, trainer: Any) -> None:
        args = trainer.args
        model = str(getattr(args, "model", "") or "")
        self._fill_in(task_type=getattr(args, "task", None), model_name=Path(model).stem if model else "")

    def on_train_start(self, trainer: Any) -> None:
        client = self.callbacks
        client.set_start_epoch(int(getattr(trainer, "start_epoch", 0) or 0))  # (no-op once the job has begun)
        client.on_train_begin(to_plain(vars(trainer.args)))
        # trainer.metrics starts as a dict of zeros: never report it as validation results.
        self._metrics_seen = id(trainer.metrics)

    def on_train_epoch_start(self, trainer: Any) -> None:
        self._epoch_started = int(trainer.epoch)
        self._batch_in_epoch = 0
        self.callbacks.on_epoch_begin(self._epoch_started)

    def on_train_batch_end(self, trainer: Any) -> None:
        if not self.batch_metrics or trainer.loss_items is None:
            return
        steps_per_epoch = len(trainer.train_loader) if trainer.train_loader is not None else 0
        step = int(trainer.epoch) * steps_per_epoch + self._batch_in_epoch
        self._batch_in_epoch += 1
        self.callbacks.on_batch_end(step, trainer.label_loss_items(trainer.loss_items, prefix="train"), epoch=int(trainer.epoch))

    def on_fit_epoch_end(self, trainer: Any) -> None:
        metrics = dict(trainer.metrics or {})
        if self._epoch_started is None or int(trainer.epoch) != self._epoch_started:
            # Ultralytics' final evaluation of best.pt fires this event again with epoch + 1: those are
            # final metrics, not an epoch.
            self._final = _numbers(metrics)
            return
        row: dict[str, Any] = {}
        if trainer.tloss is not None:
            row.update(trainer.label_loss_items(trainer.tloss, prefix="train"))
        if id(trainer.metrics) != self._metrics_seen:  # validation ran this epoch
            row.update(metrics)
            self._metrics_seen = id(trainer.metrics)
        row.update(getattr(trainer, "lr", None) or {})
        self.callbacks.on_epoch_end(int(trainer.epoch), _numbers(row))

    def on_train_end(self, trainer: Any) -> None:
        client = self.callbacks
        if self.log_weights:
            for weights in (getattr(trainer, "best", None), getattr(trainer, "last", None)):
                if weights is not None and Path(weights).is_file():
                    client.log_artifact(weights, "weights")
        client.on_train_end(self._final or None)


def train(model: Any, *, job_id: str | None = None, callbacks: TrainingCallbacks | None = None, reporter: dict[str, Any] | None = None, **train_args: Any) -> Any:
    """Trains ``model`` (a ``YOLO``) with ``model.train(**train_args)``, reporting to the sidecar.

    The job ends as failed (and the exception propagates) when training raises.

    Args:
        model: An ``ultralytics.YOLO`` model.
        job_id: The job's id (or give ``callbacks``).
        callbacks: An existing client.
        reporter: Keyword arguments for :class:`UltralyticsCallbacks` (``address``, ``strict``, ...).
        **train_args: Passed to ``model.train``.

    Returns:
        What ``model.train`` returns.
    """
    adapter = UltralyticsCallbacks(callbacks, job_id=job_id, **(reporter or {})).attach(model)
    with adapter.reporting_failures():
        return model.train(**train_args)


def import_results_csv(
    path: str | os.PathLike[str],
    callbacks: TrainingCallbacks | None = None,
    *,
    job_id: str | None = None,
    task_type: Any = _results_csv.DEFAULT_TASK_TYPE,
    end: bool = True,
    **client_kwargs: Any,
) -> int:
    """Reports the epochs of an existing Ultralytics ``results.csv``.

    The CSV's 1-based ``epoch`` becomes the contract's 0-based epoch; ``time`` (elapsed seconds) is
    not a metric and is skipped; an empty cell or a missing column stays missing (never 0). These
    rules come from ``proto/results-csv.json`` (``_results_csv``), shared with the CLI's
    ``training-callbacks import-csv``.

    Args:
        path: The ``results.csv`` file.
        callbacks: A client to report through; or None to build one from ``job_id``, ``task_type``
            and ``client_kwargs``.
        end: End the job (completed) afterwards, waiting for the sidecar's acknowledgement.

    Returns:
        The number of epochs reported.

    Raises:
        ValueError: The file has no ``epoch`` column or an epoch that is no number (nothing is sent).
    """
    client = callbacks or TrainingCallbacks(
        job_id or "", task_type, framework=_results_csv.FRAMEWORK, **client_kwargs
    )
    rows = read_results_csv(path)
    client.on_train_begin()
    for epoch, metrics in rows:
        client.on_epoch_end(epoch, metrics)
    if end:
        client.on_train_end()
    else:
        client.flush()
    return len(rows)


def read_results_csv(path: str | os.PathLike[str]) -> list[tuple[int, dict[str, float]]]:
    """Parses ``results.csv`` into ``(0-based epoch, metrics)`` pairs (see :func:`import_results_csv`)."""
    out: list[tuple[int, dict[str, float]]] = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        names = [(name or "").strip() for name in reader.fieldnames or []]
        if _results_csv.EPOCH_COLUMN not in names:
            # Without it every row would be skipped: an import of nothing, said as an error instead.
            raise ValueError(
                f'{os.fspath(path)}: the first line has no "{_results_csv.EPOCH_COLUMN}" column (it has '
                f"{', '.join(repr(n) for n in names) or 'nothing'}); give the results.csv Ultralytics writes "
                "into its run directory"
            )
        for raw in reader:
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            epoch_text = row.pop(_results_csv.EPOCH_COLUMN, "")
            if not epoch_text:
                continue
            try:
                epoch_number = float(epoch_text)
            except ValueError:
                epoch_number = math.nan
            if not math.isfinite(epoch_number):
                raise ValueError(f'{os.fspath(path)}: line {reader.line_num}: the epoch "{epoch_text}" is not a number')
            metrics: dict[str, float] = {}
            for name, text in row.items():
                if not name or not text or name in _results_csv.SKIPPED_COLUMNS:
                    continue
                try:
                    metrics[name] = float(text)
                except ValueError:
                    continue
            out.append((int(epoch_number) - _results_csv.EPOCH_BASE, metrics))
    return out


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in values.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        out[str(name)] = number
    return out
