"""Ultralytics: a YOLO model built from its yaml trains 2 epochs on CPU on a dataset made here."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

pytest.importorskip("ultralytics")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from ultralytics import YOLO  # noqa: E402

import training_callbacks.ultralytics as tc_yolo  # noqa: E402
from training_callbacks import SidecarClient, TrainingCallbacks, pb  # noqa: E402

pytestmark = pytest.mark.frameworks


def make_dataset(root: Path, n_train: int = 8, n_val: int = 4, size: int = 64) -> Path:
    """Coloured squares on noise, one class, YOLO txt labels; returns the data yaml."""
    rng = random.Random(0)
    for split, count in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(count):
            pixels = np.random.default_rng(i).integers(0, 60, (size, size, 3), dtype=np.uint8)
            w = rng.randint(size // 4, size // 2)
            x0, y0 = rng.randint(0, size - w), rng.randint(0, size - w)
            pixels[y0 : y0 + w, x0 : x0 + w] = (230, 40, 40)
            Image.fromarray(pixels).save(root / "images" / split / f"{i}.jpg")
            cx, cy = (x0 + w / 2) / size, (y0 + w / 2) / size
            (root / "labels" / split / f"{i}.txt").write_text(f"0 {cx:.6f} {cy:.6f} {w / size:.6f} {w / size:.6f}\n")
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: square\n")
    return data


TRAIN_ARGS = dict(epochs=2, imgsz=64, batch=4, device="cpu", workers=0, amp=False, plots=False, verbose=False, exist_ok=True, seed=0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("squares"))


def test_live_reporting(address: str, reader: SidecarClient, job_id: str, dataset: Path, tmp_path: Path) -> None:
    model = YOLO("yolov8n.yaml")  # built from the yaml shipped in the package: no weights download
    tc_yolo.train(model, job_id=job_id, reporter={"address": address, "strict": True}, data=str(dataset), project=str(tmp_path), name="run", **TRAIN_ARGS)

    job = reader.get_job(job_id)
    assert job.status == pb.JOB_STATUS_COMPLETED
    assert (job.task_type, job.framework, job.model_name) == (pb.TASK_TYPE_OBJECT_DETECTION, "ultralytics", "yolov8n")
    assert job.training_config["epochs"] == 2 and job.training_config["imgsz"] == 64

    epochs = reader.list_epochs(job_id)
    assert [e.epoch for e in epochs] == [0, 1]
    for epoch in epochs:
        names = set(epoch.metrics)
        # Ultralytics names, normalised by the sidecar
        assert {"mAP50", "mAP50-95", "precision", "recall", "train_box_loss", "train_cls_loss", "train_dfl_loss", "val_box_loss", "learning_rate"} <= names, names
        assert not any("(" in n or "/" in n and not n.startswith("lr/") for n in names), names
        for name in ("mAP50", "mAP50-95", "precision", "recall"):
            assert 0.0 <= epoch.metrics[name] <= 1.0  # fractions
        assert epoch.metrics["train_box_loss"] > 0
    assert "mAP50" in job.final_metrics  # best.pt's final evaluation
    assert job.HasField("final_primary_value")

    artifacts = {a.artifact_path for a in reader.list_artifacts(job_id)}
    assert artifacts == {"weights/best.pt", "weights/last.pt"}

    points = reader.batch_points(job_id)
    assert {p[2] for p in points} >= {"train_box_loss", "train_cls_loss", "train_dfl_loss"}
    # 8 images / batch 4 = 2 steps x 2 epochs. The system-metric sampler's points (system/…) are stepped
    # by seconds since the job began, so a run slower than its interval adds one: not a training step.
    training = [p for p in points if not p[2].startswith("system/")]
    assert sorted({p[1] for p in training}) == [0, 1, 2, 3]

    # The same run's results.csv, imported: the same epochs and values (CSV rounds to 6 digits).
    csv_job = job_id + "-csv"
    results = tmp_path / "run" / "results.csv"
    assert tc_yolo.import_results_csv(results, job_id=csv_job, address=address, strict=True) == 2
    imported = reader.list_epochs(csv_job)
    assert [e.epoch for e in imported] == [0, 1]
    for live, csv_epoch in zip(epochs, imported):
        assert set(csv_epoch.metrics) == set(live.metrics)
        for name, value in live.metrics.items():
            assert csv_epoch.metrics[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name
    assert reader.get_job(csv_job).status == pb.JOB_STATUS_COMPLETED


def test_results_csv_missing_values_stay_missing(address: str, reader: SidecarClient, job_id: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "results.csv"
    # Old Ultralytics versions pad the header with spaces; an empty cell is a missing value.
    csv_path.write_text(
        "                  epoch,      train/box_loss,   metrics/mAP50(B),  val/box_loss,  lr/pg0\n"
        "                      1,              1.5,              0.25,           ,   0.01\n"
        "                      2,              1.2,                  ,        1.1,   0.009\n"
    )
    client = TrainingCallbacks(job_id, "object_detection", address=address, strict=True)
    assert tc_yolo.import_results_csv(csv_path, client) == 2
    first, second = reader.list_epochs(job_id)
    assert (first.epoch, second.epoch) == (0, 1)  # 1-indexed → 0-indexed
    assert dict(first.metrics) == pytest.approx({"train_box_loss": 1.5, "mAP50": 0.25, "learning_rate": 0.01})
    assert dict(second.metrics) == pytest.approx({"train_box_loss": 1.2, "val_box_loss": 1.1, "learning_rate": 0.009})
    assert "mAP50" not in second.metrics  # missing, not 0
    assert reader.get_job(job_id).best_epoch == 0


class Boom(RuntimeError):
    pass


def explode_in_second_epoch(trainer: object) -> None:
    if trainer.epoch == 1:  # type: ignore[attr-defined]
        raise Boom("synthetic failure in epoch 1")


def test_failure_is_reported(address: str, reader: SidecarClient, job_id: str, dataset: Path, tmp_path: Path) -> None:
    model = YOLO("yolov8n.yaml")
    model.add_callback("on_train_epoch_end", explode_in_second_epoch)
    with pytest.raises(Boom):
        tc_yolo.train(model, job_id=job_id, reporter={"address": address}, data=str(dataset), project=str(tmp_path), name="run", **TRAIN_ARGS)
    job = reader.get_job(job_id)
    assert job.status == pb.JOB_STATUS_FAILED
    assert "synthetic failure in epoch 1" in job.error_message
    assert [e.epoch for e in reader.list_epochs(job_id)] == [0]
    assert not math.isnan(reader.list_epochs(job_id)[0].metrics["train_box_loss"])


def test_adapter_pickles(job_id: str) -> None:
    import pickle

    adapter = tc_yolo.UltralyticsCallbacks(job_id=job_id, address="127.0.0.1:1")
    adapter.callbacks.task_type = pb.TASK_TYPE_OBJECT_DETECTION
    clone = pickle.loads(pickle.dumps(adapter))
    assert clone.callbacks.job_id == job_id and clone.callbacks.task_type == pb.TASK_TYPE_OBJECT_DETECTION
    adapter.callbacks.close()
    clone.callbacks.close()


def make_classification_dataset(root: Path, size: int = 32) -> Path:
    """Two classes (red / blue images), 8 train and 4 val images each."""
    for split, count in (("train", 8), ("val", 4)):
        for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.random.default_rng(i).integers(0, 40, (size, size, 3), dtype=np.uint8)
                pixels[4:-4, 4:-4] = colour
                Image.fromarray(pixels).save(folder / f"{i}.jpg")
    return root


def test_classification(address: str, reader: SidecarClient, job_id: str, tmp_path: Path) -> None:
    data = make_classification_dataset(tmp_path / "colours")
    model = YOLO("yolov8n-cls.yaml")
    args = {**TRAIN_ARGS, "imgsz": 32}
    tc_yolo.train(model, job_id=job_id, reporter={"address": address, "strict": True}, data=str(data), project=str(tmp_path), name="cls", **args)
    job = reader.get_job(job_id)
    assert job.status == pb.JOB_STATUS_COMPLETED
    assert job.task_type == pb.TASK_TYPE_IMAGE_CLASSIFICATION and job.primary_metric == "accuracy"
    epochs = reader.list_epochs(job_id)
    assert [e.epoch for e in epochs] == [0, 1]
    for epoch in epochs:
        # metrics/accuracy_top1 → accuracy, metrics/accuracy_top5 → top5_accuracy, train/loss → train_loss
        assert {"accuracy", "top5_accuracy", "train_loss", "val_loss", "learning_rate"} <= set(epoch.metrics), set(epoch.metrics)
        assert 0.0 <= epoch.metrics["accuracy"] <= 1.0
    assert job.HasField("best_epoch")
