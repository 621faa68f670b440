"""Hugging Face: a real Trainer trains a BERT built from a config (no hub) on synthetic tokens."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainerCallback, TrainingArguments  # noqa: E402

from training_callbacks import SidecarClient, pb  # noqa: E402
from training_callbacks.huggingface import TrainingCallbacksCallback  # noqa: E402

pytestmark = pytest.mark.frameworks


class Tokens(torch.utils.data.Dataset):
    """Sequences whose label is whether token 7 appears."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 20, (n, 12), generator=g)
        self.labels = (self.ids == 7).any(dim=1).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(12, dtype=torch.long), "labels": self.labels[i]}


def accuracy(prediction) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {"accuracy": float((np.argmax(prediction.predictions, axis=1) == prediction.label_ids).mean())}


class FailAtStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if state.global_step == 5:
            raise RuntimeError("NaN loss at step 5")


def make_trainer(callback: TrainingCallbacksCallback, tmp_path, extra: list | None = None) -> Trainer:  # type: ignore[no-untyped-def]
    config = BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_position_embeddings=16, num_labels=2)
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=2,
        per_device_train_batch_size=8,
        per_device_eval_batch_size=16,
        learning_rate=1e-3,
        eval_strategy="epoch",
        logging_strategy="steps",
        logging_steps=2,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    return Trainer(
        model=model,
        args=args,
        train_dataset=Tokens(64, 0),
        eval_dataset=Tokens(32, 1),
        compute_metrics=accuracy,
        callbacks=[callback, *(extra or [])],
    )


def test_training_is_reported(address: str, reader: SidecarClient, job_id: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    callback = TrainingCallbacksCallback(job_id, "image_classification", address=address, strict=True)
    make_trainer(callback, tmp_path).train()

    job = reader.get_job(job_id)
    assert job.status == pb.JOB_STATUS_COMPLETED
    assert (job.framework, job.model_name) == ("transformers", "bert")
    assert job.training_config["num_train_epochs"] == 2
    assert job.model_config["hidden_size"] == 16
    epochs = reader.list_epochs(job_id)
    assert [e.epoch for e in epochs] == [0, 1]
    for epoch in epochs:
        m = epoch.metrics
        # eval_loss → val_loss, eval_accuracy → accuracy, loss → train_loss (sidecar aliases)
        assert {"val_loss", "accuracy", "train_loss", "learning_rate", "grad_norm", "eval_runtime"} <= set(m), set(m)
        assert 0.0 <= m["accuracy"] <= 1.0
    assert {"accuracy", "train_loss", "train_runtime"} <= set(job.final_metrics)
    assert job.final_metrics["accuracy"] == pytest.approx(epochs[-1].metrics["accuracy"])
    points = reader.batch_points(job_id)
    # logging_steps=2, 8 steps/epoch; the system-metric sampler's points are stepped by seconds instead.
    assert sorted({p[1] for p in points if not p[2].startswith("system/")}) == [2, 4, 6, 8, 10, 12, 14, 16]
    assert {p[2] for p in points} >= {"train_loss", "learning_rate"}
    assert {p[0] for p in points} == {0, 1}


def test_failure_is_reported(address: str, reader: SidecarClient, job_id: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    callback = TrainingCallbacksCallback(job_id, "image_classification", address=address)
    trainer = make_trainer(callback, tmp_path, [FailAtStep()])
    with pytest.raises(RuntimeError, match="NaN loss"):
        with callback.reporting_failures():  # the Trainer calls no hook when training raises
            trainer.train()
    job = reader.get_job(job_id)
    assert job.status == pb.JOB_STATUS_FAILED
    assert "NaN loss at step 5" in job.error_message
    assert reader.batch_points(job_id)  # steps 2 and 4 were reported


def test_only_world_process_zero_reports(address: str, reader: SidecarClient, job_id: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from transformers import TrainerControl, TrainerState

    callback = TrainingCallbacksCallback(job_id, "image_classification", address=address)
    state = TrainerState(is_world_process_zero=False)
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    for event in ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end"):
        getattr(callback, event)(args, state, TrainerControl())
    callback.on_log(args, state, TrainerControl(), logs={"loss": 1.0})
    callback.callbacks.flush(5)
    assert not list(reader.iter_jobs()) or job_id not in {j.job_id for j in reader.iter_jobs()}


def test_callback_pickles(job_id: str) -> None:
    import pickle

    callback = TrainingCallbacksCallback(job_id, "image_classification", address="127.0.0.1:1")
    clone = pickle.loads(pickle.dumps(callback))
    assert clone.callbacks.job_id == job_id and clone.callbacks.framework == "transformers"
