"""The plain-loop example (timm style) runs as a script against the real sidecar (its size, in lines of
reporting code, is measured in tests/test_example_size.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from training_callbacks import SidecarClient, pb  # noqa: E402

pytestmark = pytest.mark.frameworks

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plain_loop.py"


def test_plain_loop_example(address: str, reader: SidecarClient, job_id: str, tmp_path: Path) -> None:
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "TRAINING_CALLBACKS_ADDRESS": address, "PYTHONPATH": src, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(EXAMPLE), "--job-id", job_id], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    job = reader.get_job(job_id)
    assert job.status == pb.JOB_STATUS_COMPLETED
    assert (job.framework, job.model_name) == ("timm", "mlp")
    epochs = reader.list_epochs(job_id)
    assert [e.epoch for e in epochs] == [0, 1, 2]
    for epoch in epochs:
        # eval_top1 (percent) → accuracy (fraction); eval_loss → val_loss; lr → learning_rate
        assert {"accuracy", "val_loss", "train_loss", "learning_rate"} == set(epoch.metrics)
        assert 0.0 < epoch.metrics["accuracy"] <= 1.0
        assert epoch.metrics["accuracy"] * 128 == pytest.approx(round(epoch.metrics["accuracy"] * 128))  # k/128 of val
    assert epochs[-1].metrics["accuracy"] > 0.8
    assert job.final_metrics["accuracy"] == pytest.approx(epochs[-1].metrics["accuracy"])
    assert {a.artifact_path for a in reader.list_artifacts(job_id)} == {"checkpoints/" + f"{job_id}-last.pt"}
    points = reader.batch_points(job_id)
    assert len(points) == 3 * 12 * 2  # 384/32 steps x 3 epochs x (loss, lr)
    assert {p[2] for p in points} == {"train_loss", "learning_rate"}
