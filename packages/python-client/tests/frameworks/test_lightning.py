"""PyTorch Lightning: a real Trainer fits a tiny module on synthetic data with the logger attached."""

from __future__ import annotations

import os
import signal

import pytest

pytest.importorskip("lightning")

import lightning as L  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.callbacks import LearningRateMonitor  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from training_callbacks import SidecarClient, SidecarRejectedError, pb  # noqa: E402
from training_callbacks.lightning import TrainingCallbacksLogger  # noqa: E402

pytestmark = pytest.mark.frameworks


def data(n: int, seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=16)


class Classifier(L.LightningModule):
    def __init__(self, hidden: int = 16, lr: float = 0.05, fail_at_epoch: int = -1, sigterm_at_epoch: int = -1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        if self.current_epoch == self.hparams.fail_at_epoch:
            raise ValueError("diverged at epoch %d" % self.current_epoch)
        if self.current_epoch == self.hparams.sigterm_at_epoch and batch_idx == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # as Kubernetes stops a pod
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def fit(logger: TrainingCallbacksLogger, module: Classifier, tmp_path) -> L.Trainer:  # type: ignore[no-untyped-def]
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=logger,
        callbacks=[LearningRateMonitor(logging_interval="epoch")],
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, data(128, 0), data(64, 1))
    return trainer


def test_fit_is_reported(address: str, reader: SidecarClient, job_id: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fit(TrainingCallbacksLogger(job_id, "image_classification", address=address, strict=True), Classifier(), tmp_path)
    job = reader.get_job(job_id)
    assert job.status == pb.JOB_STATUS_COMPLETED
    assert job.framework == "lightning"
    assert job.params["hidden"] == "16" and job.params["lr"] == "0.05"  # log_hyperparams
    epochs = reader.list_epochs(job_id)
    assert [e.epoch for e in epochs] == [0, 1, 2]
    for epoch in epochs:
        m = epoch.metrics
        # val_acc → accuracy, train_loss_epoch → train_loss, lr-Adam → learning_rate (sidecar aliases)
        assert {"accuracy", "val_loss", "train_loss", "learning_rate"} <= set(m), set(m)
        assert 0.0 <= m["accuracy"] <= 1.0
        assert m["learning_rate"] == pytest.approx(0.05)
    assert epochs[-1].metrics["accuracy"] > 0.7  # it learnt the rule
    assert job.best_epoch in (0, 1, 2)
    points = reader.batch_points(job_id)
    steps = {p[1] for p in points if p[2] == "train_loss_step"}
    assert len(steps) == 3 * 8  # 128 samples / 16 per batch x 3 epochs, logged every step


def test_failure_is_reported(address: str, reader: SidecarClient, job_id: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="diverged"):
        fit(TrainingCallbacksLogger(job_id, "image_classification", address=address), Classifier(fail_at_epoch=1), tmp_path)
    job = reader.get_job(job_id)
    assert job.status == pb.JOB_STATUS_FAILED  # finalize("failed")
    assert "diverged at epoch 1" in job.error_message
    assert [e.epoch for e in reader.list_epochs(job_id)] == [0]


def test_only_rank_zero_reports(address: str, reader: SidecarClient, job_id: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from lightning.pytorch.utilities import rank_zero_only

    monkeypatch.setattr(rank_zero_only, "rank", 1)
    logger = TrainingCallbacksLogger(job_id, "image_classification", address=address)
    logger.log_hyperparams({"a": 1})
    logger.log_metrics({"val_acc": 0.5, "epoch": 0}, step=1)
    logger.finalize("success")
    with pytest.raises(SidecarRejectedError):
        reader.get_job(job_id)


def test_logger_pickles_for_spawned_workers(job_id: str) -> None:
    import pickle

    logger = TrainingCallbacksLogger(job_id, "image_classification", address="127.0.0.1:1")
    logger.log_hyperparams({"hidden": 16})
    clone = pickle.loads(pickle.dumps(logger))
    assert clone.version == job_id and clone.callbacks.params == {"hidden": "16"}
    logger.callbacks.close()
    clone.callbacks.close()


def test_sigterm_during_fit_cancels(address: str, reader: SidecarClient, job_id: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Lightning's SIGTERM handler stops the fit (SIGTERMException) and finalizes "failed": the job
    ends cancelled, named so; the process is not killed under Lightning by the client's handler."""
    import training_callbacks._exit as exit_hooks

    monkeypatch.setattr(exit_hooks, "_signal_received", None)  # this process goes on after the signal
    with pytest.raises(SystemExit):  # Lightning's SIGTERMException
        fit(TrainingCallbacksLogger(job_id, "image_classification", address=address), Classifier(sigterm_at_epoch=1), tmp_path)
    job = reader.get_job(job_id)
    assert (job.status, job.error_message) == (pb.JOB_STATUS_CANCELLED, "terminated by SIGTERM (Lightning stopped the fit)")
    assert [e.epoch for e in reader.list_epochs(job_id)] == [0, 1]  # the stopped epoch with what it logged
