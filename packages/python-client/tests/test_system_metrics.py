"""System and GPU metrics from the client's background thread, against the real sidecar: real trainer
processes, a fake NVML (tests/fake_nvml, there is no GPU here) put on the trainer's PYTHONPATH by
these tests only; what the sidecar stored is read back."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training_callbacks import SidecarClient, TrainingCallbacks, pb
from training_callbacks._system_metrics import GPU_METRICS, HOST_METRICS, SYSTEM_METRIC_PREFIX

HERE = Path(__file__).resolve().parent
SRC = str(HERE.parent / "src")
TRAINER = HERE / "system_metrics_trainer.py"

HOST = {SYSTEM_METRIC_PREFIX + name for name in HOST_METRICS}
#: The fake's two GPUs, in MLflow's names and units (bytes → MB of 10^6 bytes, mW → W); GPU 1 has no
#: power reading.
GPUS = {
    "system/gpu_0_utilization_percentage": 37.0,
    "system/gpu_0_memory_usage_megabytes": 4000.0,
    "system/gpu_0_memory_usage_percentage": 25.0,
    "system/gpu_0_temperature_celsius": 61.0,
    "system/gpu_0_power_usage_watts": 150.0,
    "system/gpu_0_power_usage_percentage": 50.0,
    "system/gpu_1_utilization_percentage": 38.0,
    "system/gpu_1_memory_usage_megabytes": 5000.0,
    "system/gpu_1_memory_usage_percentage": 31.2,
    "system/gpu_1_temperature_celsius": 62.0,
}


def train(address: str, job_id: str, interval: str, seconds: float, *, nvml: bool) -> None:
    path = [str(HERE / "fake_nvml"), SRC] if nvml else [SRC]
    done = subprocess.run(
        [sys.executable, str(TRAINER), address, job_id, interval, str(seconds)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def series(reader: SidecarClient, job_id: str) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for _epoch, step, name, value in reader.batch_points(job_id):
        out.setdefault(name, []).append((step, value))
    return {name: sorted(points) for name, points in out.items()}


def test_system_and_gpu_metrics_under_mlflows_names(address: str, reader: SidecarClient, job_id: str) -> None:
    interval = 2
    train(address, job_id, str(interval), 11, nvml=True)
    stored = series(reader, job_id)
    system = {name: points for name, points in stored.items() if name.startswith(SYSTEM_METRIC_PREFIX)}
    assert set(system) == HOST | set(GPUS)  # names as MLflow's System metrics tab knows them
    # Every GPU metric of proto/system-metrics.json (GPU 1 has no power reading).
    assert {n.removeprefix(f"{SYSTEM_METRIC_PREFIX}gpu_0_") for n in GPUS if "gpu_0_" in n} == set(GPU_METRICS)
    assert "train_loss" in stored  # the training rows go on beside them

    for name, value in GPUS.items():
        assert [v for _, v in system[name]] == pytest.approx([value] * len(system[name])), name
    for _, cpu in system["system/cpu_utilization_percentage"]:
        assert 0.0 <= cpu <= 100.0
    for _, pct in system["system/system_memory_usage_percentage"]:
        assert 0.0 < pct <= 100.0
    for _, mb in system["system/system_memory_usage_megabytes"]:
        assert mb > 1.0  # megabytes, not bytes nor gigabytes: any machine uses more than 1 MB
        assert mb < 1e8

    # One sample every `interval` seconds; step = whole seconds since the job was created.
    steps = [step for step, _ in system["system/gpu_0_utilization_percentage"]]
    assert len(steps) >= 3, steps
    assert steps == sorted(set(steps))
    # On time on average (a loaded machine may run one sample late, never a burst to catch up).
    mean_gap = (steps[-1] - steps[0]) / (len(steps) - 1)
    assert interval - 0.5 <= mean_gap <= interval + 1, steps
    assert all(s == steps for s in ([p for p, _ in points] for points in system.values()))  # one row per sample


def test_without_nvml_there_are_no_gpu_metrics_and_nothing_else_changes(address: str, reader: SidecarClient, job_id: str) -> None:
    assert importlib.util.find_spec("pynvml") is None, "the client's test environment must not have nvidia-ml-py"
    train(address, job_id, "1", 4, nvml=False)
    stored = series(reader, job_id)
    assert {name for name in stored if name.startswith(SYSTEM_METRIC_PREFIX)} == HOST
    assert reader.get_job(job_id).status == pb.JOB_STATUS_COMPLETED
    assert [e.epoch for e in reader.list_epochs(job_id)] == [0]


def test_system_metrics_can_be_turned_off(address: str, reader: SidecarClient, job_id: str) -> None:
    train(address, job_id, "off", 3, nvml=True)
    stored = series(reader, job_id)
    assert set(stored) == {"train_loss"}


def test_an_interval_outside_its_range_is_refused_with_what_to_use() -> None:
    with pytest.raises(ValueError, match="use 1 to 3600"):
        TrainingCallbacks("job", "pose", system_metrics_interval=0.1)
